"""PyTorch throughput and peak memory: ours vs the reference (transformers 4.57.6), in one run.

Base config (12 layers, hidden 768, 12 heads, vocab 50000), fp32 on CPU, no padding mask.

- Inference (default): ``RoFormerModel`` forward in eval mode, no grad.
- ``--train``: one training step of ``RoFormerForMaskedLM`` in train mode (dropout on): forward with labels (15% of
  the positions, the rest -100), ``loss.backward()``, ``torch.optim.AdamW`` step (default settings), gradients
  freed (``zero_grad(set_to_none=True)``). One untimed step first allocates the optimizer state.

Each (implementation, shape) runs in its own subprocess so peak memory is measured cleanly: "peak MiB" is the
peak resident set during one extra forward (or step) after the timed ones (sampled every millisecond by a thread
that does not run during the timed ones) minus the resident set just before it: activations, gradients and
workspace, not the weights or the optimizer state. glibc is told to serve large blocks with mmap so freed
activations leave the resident set instead of lingering in the heap. tok/s is the best of the timed runs.

Usage::

    python benchmarks/bench_pt.py [--repeats 3] [--shapes 4x512,1x2048]
    python benchmarks/bench_pt.py --train [--repeats 3] [--shapes 8x128,2x512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

SHAPES = "4x512,1x2048"
TRAIN_SHAPES = "8x128,2x512"
# The config defaults (ours and the reference's) are the base model; 2048 positions so the reference can run 2048.
BASE = {"max_position_embeddings": 2048}


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _build(impl: str, train: bool):
    """The base model (``RoFormerModel``, or ``RoFormerForMaskedLM`` for training), ours or the reference's."""
    if impl == "ours":
        import roformer_pt as module
    else:
        import transformers as module
    cls = module.RoFormerForMaskedLM if train else module.RoFormerModel
    return cls(module.RoFormerConfig(**BASE)).train(train)


def _worker(impl: str, batch: int, length: int, repeats: int, train: bool) -> dict:
    import torch

    torch.manual_seed(0)
    model = _build(impl, train)
    ids = torch.randint(1, model.config.vocab_size, (batch, length))
    if train:
        labels = torch.where(torch.rand(ids.shape) < 0.15, ids, -100)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def run() -> None:
            model(input_ids=ids, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    else:

        def run() -> None:
            with torch.no_grad():
                model(ids)

    run()  # warm-up (and the optimizer state)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    # one more run for memory, sampled by a thread (kept out of the timed runs)
    before = _rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run()
    done.set()
    sampler.join()
    best = min(times)
    peak = peak[0] - before
    return {"impl": impl, "batch": batch, "length": length, "tok_s": batch * length / best, "peak_mib": peak}


def _run(impl: str, batch: int, length: int, repeats: int, train: bool) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", impl, str(batch), str(length), str(repeats)]
    cmd += ["--train"] if train else []
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode:
        print(f"{impl} {batch}x{length} failed:\n{result.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards (or steps) per shape (best is reported)")
    parser.add_argument("--shapes", help=f"comma-separated BATCHxLENGTH list ({SHAPES}; {TRAIN_SHAPES} with --train)")
    parser.add_argument("--train", action="store_true", help="time a training step (masked LM, AdamW)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, batch, length, repeats = args.worker
        print(json.dumps(_worker(impl, int(batch), int(length), int(repeats), args.train)))
        return
    try:
        import transformers  # noqa: F401

        impls = ("ours", "reference")
    except ImportError:
        impls = ("ours",)
        print("transformers not installed: measuring ours only")
    import torch

    what = "training step (masked LM, AdamW)" if args.train else "inference forward"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, base config fp32 CPU, {what}")
    print(f"{'shape':>8} {'impl':>10} {'tok/s':>9} {'peak MiB':>9} {'speed x':>8} {'memory x':>9}")
    shapes = args.shapes or (TRAIN_SHAPES if args.train else SHAPES)
    for item in shapes.split(","):
        batch, length = (int(v) for v in item.lower().split("x"))
        rows = {impl: _run(impl, batch, length, args.repeats, args.train) for impl in impls}
        ref = rows.get("reference")
        for impl, row in rows.items():
            if row is None:
                continue
            speed = f"{row['tok_s'] / ref['tok_s']:.2f}" if ref else "-"
            memory = f"{row['peak_mib'] / ref['peak_mib']:.2f}" if ref and ref["peak_mib"] > 0 else "-"
            print(f"{item:>8} {impl:>10} {row['tok_s']:9.1f} {row['peak_mib']:9.0f} {speed:>8} {memory:>9}")


if __name__ == "__main__":
    main()
