"""Forward-pass throughput of roformer_tf vs the reference TF model (transformers 4.57.6 + tf-keras), both under XLA.

Usage::

    python benchmarks/bench_tf.py                   # both shapes
    python benchmarks/bench_tf.py --shapes 4x512 --repeats 15

The base config (12 layers, hidden 768, 12 heads, vocab 50000; ``max_position_embeddings`` raised to cover the
longest sequence, since the reference cannot run past its table), random weights, fp32, the bare model, inputs
``input_ids`` and an all-ones ``attention_mask``; a forward is ``tf.function(jit_compile=True)``.

Each model lives in worker processes of its own (the reference needs ``TF_USE_LEGACY_KERAS=1``, i.e. Keras 2, which
cannot share a process with Keras 3), ``--processes`` of them per model: on the 2-core development machine the
same program ran 935-1066 ms per 4 x 512 forward in four processes started one after another (three copies of the
model inside one process agree within 1%), so one process per model can land on a fast or a slow spell or
placement by chance. After all workers have compiled and warmed up, every worker runs one
forward in turn, ``--repeats`` times, so that all see the same background load; the table shows the median tokens
per second of each model over all its workers' forwards and the median over turns of the per-turn ratio of total
times.

A third kind of worker times the *matmul floor*: only the matrix products of the same forward (the fused
query/key/value, output and feed-forward projections, the two attention products and the head transposes between
them), under XLA, with nothing else. ``ceiling`` is the reference's time over the floor's: the most any XLA
implementation doing the same matmuls could gain over the reference, with layer norms, softmax, GELU and rotary
positions costing nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

BASE = {"vocab_size": 50000, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}


def _worker(which: str, batch: int, length: int) -> None:
    """Build one model, compile and warm up its forward, then time one forward per ``run`` line on stdin."""
    import numpy as np
    import tensorflow as tf

    config = {**BASE, "max_position_embeddings": max(1536, length)}
    if which == "floor":
        forward, args = _matmul_floor(batch, length)
        _serve(forward, args)
        return
    if which == "ours":
        from roformer_tf import RoFormerConfig, TFRoFormerModel

        model = TFRoFormerModel(RoFormerConfig(**config))
    else:
        from transformers import RoFormerConfig, TFRoFormerModel

        model = TFRoFormerModel(RoFormerConfig(**config))

    @tf.function(jit_compile=True)
    def forward(ids, mask):
        return model(input_ids=ids, attention_mask=mask, training=False).last_hidden_state

    ids = tf.constant(np.random.default_rng(0).integers(1, BASE["vocab_size"], size=(batch, length)), tf.int32)
    mask = tf.ones((batch, length), tf.int32)
    _serve(forward, (ids, mask))


def _matmul_floor(batch: int, length: int):
    """An XLA function doing only the base model's matrix products for ``[batch, length]``, and its input."""
    import numpy as np
    import tensorflow as tf

    hidden, heads, layers, inner = BASE["hidden_size"], BASE["num_attention_heads"], BASE["num_hidden_layers"], 3072
    head_dim, tokens = hidden // heads, batch * length
    rng = np.random.default_rng(0)

    def weight(*shape):
        return tf.constant(rng.standard_normal(shape) * 0.02, tf.float32)

    qkv, out = weight(hidden, 3 * hidden), weight(hidden, hidden)
    up, down = weight(hidden, inner), weight(inner, hidden)

    def split(x):  # [T, hidden] -> [B, H, L, D]
        return tf.transpose(tf.reshape(x, [batch, length, heads, head_dim]), [0, 2, 1, 3])

    @tf.function(jit_compile=True)
    def forward(x):
        for _ in range(layers):
            q, k, v = (split(t) for t in tf.split(tf.matmul(x, qkv), 3, axis=1))
            context = tf.matmul(tf.matmul(q, k, transpose_b=True) * 1e-3, v)
            context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [tokens, hidden])
            x = x + tf.matmul(context, out)
            x = x + tf.matmul(tf.matmul(x, up), down) * 1e-3
        return x

    return forward, (tf.constant(rng.standard_normal((tokens, hidden)), tf.float32),)


def _serve(forward, args) -> None:
    """Warm ``forward`` up, then time one call per ``run`` line on stdin."""
    for _ in range(2):
        forward(*args).numpy()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        forward(*args).numpy()
        print(time.perf_counter() - start, flush=True)


def _start(which: str, batch: int, length: int) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if which == "reference":
        env["TF_USE_LEGACY_KERAS"] = "1"
    cmd = [sys.executable, __file__, "--worker", which, "--shapes", f"{batch}x{length}"]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the {which} worker failed for {batch}x{length}")
    return proc


def _time_one(proc: subprocess.Popen) -> float:
    proc.stdin.write("run\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="4x512,1x2048", help="comma-separated BATCHxLENGTH")
    parser.add_argument("--repeats", type=int, default=9, help="timed turns per shape (default 9)")
    parser.add_argument("--processes", type=int, default=3, help="worker processes per model (default 3)")
    parser.add_argument("--worker", choices=("ours", "reference", "floor"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    if args.worker:
        _worker(args.worker, *shapes[0])
        return
    header = f"{'shape':>8} {'ours tok/s':>11} {'ref tok/s':>10} {'ratio':>6} {'floor tok/s':>12} {'ceiling':>8}"
    print(header, flush=True)
    names = ("reference", "ours", "floor")
    for batch, length in shapes:
        workers = {name: [] for name in names}
        try:
            for _ in range(args.processes):
                for name in names:
                    workers[name].append(_start(name, batch, length))
            times = {name: [] for name in names}  # per turn: one time per worker
            for _ in range(args.repeats):
                turn = {name: [_time_one(proc) for proc in procs] for name, procs in workers.items()}
                for name in names:
                    times[name].append(turn[name])
        finally:
            for procs in workers.values():
                for proc in procs:
                    proc.stdin.close()
                    proc.wait()
        tokens = batch * length
        ours, ref, floor = (tokens / statistics.median(sum(times[name], [])) for name in ("ours", "reference", "floor"))
        ratio = statistics.median(sum(r) / sum(o) for o, r in zip(times["ours"], times["reference"]))
        ceiling = statistics.median(sum(r) / sum(f) for f, r in zip(times["floor"], times["reference"]))
        print(f"{batch}x{length:<6} {ours:11.1f} {ref:10.1f} {ratio:6.2f} {floor:12.1f} {ceiling:8.2f}", flush=True)


if __name__ == "__main__":
    main()
