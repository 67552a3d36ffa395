"""ONNX Runtime running our exported graph vs our PyTorch forward, in one run.

Base V1 config (12 layers, hidden 768, 12 heads, vocab 50000; random weights, seeded), the bare model
(``--task base``) exported with :func:`roformer_conversion.export.export_onnx`, fp32 on CPU, all-ones attention mask,
eval mode, no grad. Both run with their default thread pools on the same cores, one after the other; tok/s is the
best of the timed forwards after one warm-up each. The ratio is ONNX Runtime's tok/s over PyTorch's (> 1: ONNX
Runtime is faster). The export itself (a minute or more for the base model) is not timed.

Usage::

    python benchmarks/bench_onnx.py [--repeats 5] [--shapes 4x128,1x512]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from roformer_conversion.export import export_onnx
from roformer_pt import RoFormerConfig, RoFormerModel

SHAPES = ((4, 128), (1, 512))


def _best_seconds(forward, repeats: int) -> float:
    forward()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per shape and runtime")
    parser.add_argument(
        "--shapes",
        default=",".join(f"{b}x{n}" for b, n in SHAPES),
        help="comma-separated BATCHxLENGTH (default: %(default)s)",
    )
    args = parser.parse_args()
    shapes = [tuple(int(x) for x in shape.split("x")) for shape in args.shapes.split(",")]

    torch.manual_seed(0)
    model = RoFormerModel(RoFormerConfig()).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "roformer_base.onnx", "base")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    threads = torch.get_num_threads()
    print(f"base V1 (12 x 768), fp32, torch {torch.__version__} ({threads} threads), onnxruntime {ort.__version__}")
    print(f"{'shape':>8} {'PyTorch tok/s':>14} {'ORT tok/s':>10} {'ORT / PT':>9} {'max |diff|':>11}")
    rng = np.random.default_rng(0)
    for batch, length in shapes:
        ids = rng.integers(1, model.config.vocab_size, size=(batch, length))
        inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
        with torch.no_grad():
            pt_seconds = _best_seconds(lambda tensors=tensors: model(**tensors), args.repeats)
            expected = model(**tensors).last_hidden_state.numpy()
        ort_seconds = _best_seconds(lambda inputs=inputs: session.run(None, inputs), args.repeats)
        diff = np.abs(session.run(None, inputs)[0] - expected).max()
        tokens = batch * length
        print(
            f"{batch}x{length:<6} {tokens / pt_seconds:14.0f} {tokens / ort_seconds:10.0f} "
            f"{pt_seconds / ort_seconds:9.2f} {diff:11.1e}"
        )


if __name__ == "__main__":
    main()
