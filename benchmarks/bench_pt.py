"""PyTorch forward throughput and peak memory: ours vs the reference (transformers 4.57.6), in one run.

Base config (12 layers, hidden 768, 12 heads, vocab 50000), fp32 on CPU, no padding mask, eval mode, no grad.
Each (implementation, shape) runs in its own subprocess so peak memory is measured cleanly: "peak MiB" is the
peak resident set during one extra forward after the timed ones (sampled every millisecond by a thread that
does not run during the timed forwards) minus the resident set just before it: activations and workspace, not
the weights. glibc is told to serve large blocks with mmap so freed activations leave the resident set instead
of lingering in the heap. tok/s is the best of the timed forwards.

Usage::

    python benchmarks/bench_pt.py [--repeats 3] [--shapes 4x512,1x2048]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

SHAPES = ((4, 512), (1, 2048))
# The config defaults (ours and the reference's) are the base model; 2048 positions so the reference can run 2048.
BASE = {"max_position_embeddings": 2048}


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _worker(impl: str, batch: int, length: int, repeats: int) -> dict:
    import torch

    torch.manual_seed(0)
    if impl == "ours":
        from roformer_pt import RoFormerConfig, RoFormerModel

        model = RoFormerModel(RoFormerConfig(**BASE))
    else:
        import transformers

        model = transformers.RoFormerModel(transformers.RoFormerConfig(**BASE))
    model.eval()
    ids = torch.randint(1, model.config.vocab_size, (batch, length))
    with torch.no_grad():
        model(ids)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(ids)
            times.append(time.perf_counter() - start)
        # one more forward for memory, sampled by a thread (kept out of the timed runs)
        before = _rss_mib()
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_mib())
                time.sleep(0.001)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        model(ids)
        done.set()
        sampler.join()
    best = min(times)
    peak = peak[0] - before
    return {"impl": impl, "batch": batch, "length": length, "tok_s": batch * length / best, "peak_mib": peak}


def _run(impl: str, batch: int, length: int, repeats: int) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", impl, str(batch), str(length), str(repeats)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode:
        print(f"{impl} {batch}x{length} failed:\n{result.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per shape (best is reported)")
    parser.add_argument("--shapes", default="4x512,1x2048", help="comma-separated BATCHxLENGTH list")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, batch, length, repeats = args.worker
        print(json.dumps(_worker(impl, int(batch), int(length), int(repeats))))
        return
    try:
        import transformers  # noqa: F401

        impls = ("ours", "reference")
    except ImportError:
        impls = ("ours",)
        print("transformers not installed: measuring ours only")
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, base config fp32 CPU")
    print(f"{'shape':>8} {'impl':>10} {'tok/s':>9} {'peak MiB':>9} {'speed x':>8} {'memory x':>9}")
    for item in args.shapes.split(","):
        batch, length = (int(v) for v in item.lower().split("x"))
        rows = {impl: _run(impl, batch, length, args.repeats) for impl in impls}
        ref = rows.get("reference")
        for impl, row in rows.items():
            if row is None:
                continue
            speed = f"{row['tok_s'] / ref['tok_s']:.2f}" if ref else "-"
            memory = f"{row['peak_mib'] / ref['peak_mib']:.2f}" if ref and ref["peak_mib"] > 0 else "-"
            print(f"{item:>8} {impl:>10} {row['tok_s']:9.1f} {row['peak_mib']:9.0f} {speed:>8} {memory:>9}")


if __name__ == "__main__":
    main()
