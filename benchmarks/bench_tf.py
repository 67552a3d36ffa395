"""Throughput of roformer_tf vs the reference TF model (transformers 4.57.6 + tf-keras): forward under XLA, a
training step under ``fit``, and inference at each model's best execution mode.

Usage::

    python benchmarks/bench_tf.py                   # forward under XLA, both shapes
    python benchmarks/bench_tf.py --shapes 4x512 --repeats 15
    python benchmarks/bench_tf.py --task train      # one training step, 8x128 and 2x512
    python benchmarks/bench_tf.py --task infer      # inference at the best of eager / tf.function / XLA, 4x512

``--task train``: the base config with a sequence-classification head (labels ``[B]``), one optimizer step of
``fit`` (forward, backward, AdamW update with weight decay 0.01 on every weight in both, learning rate 1e-5) on
``input_ids`` / ``attention_mask`` / ``labels`` from a repeated ``tf.data`` batch, each model compiled by its own
Keras with ``jit_compile=True`` (ours Keras 3, the reference Keras 2); a timed run is one ``fit`` of
``--train_steps`` + 1 steps, timed from the end of its first step to the end of its last (so ``fit``'s set-up is
left out), reported per step. ``--task infer``: the bare model's forward at 4x512 in each
of three modes, eagerly, as ``tf.function`` (TensorFlow's graph executor, whose matmuls run on oneDNN) and as
``tf.function(jit_compile=True)`` (XLA); ``ratio`` compares each model's fastest mode in each turn, and the table
also shows every mode. No process-wide setting is changed for either model.

Every task: the base config (12 layers, hidden 768, 12 heads, vocab 50000; ``max_position_embeddings`` raised to
cover the longest sequence, since the reference cannot run past its table; ``--layers`` changes the depth), random
weights, fp32, inputs ``input_ids`` and an all-ones ``attention_mask``. ``--task forward`` (the default): the bare
model, a forward is ``tf.function(jit_compile=True)``.

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
from collections.abc import Callable

BASE = {"vocab_size": 50000, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}


def _worker(which: str, batch: int, length: int, layers: int, train_steps: int) -> None:
    """Build one model, compile and warm up its forward or training step, then time one per ``run`` line on stdin.

    ``which`` is ``floor``, or ``<model>`` (forward under XLA), ``<model>:train`` or ``<model>:<mode>`` with model
    ``ours`` / ``reference`` and mode ``eager`` / ``graph`` / ``xla``.
    """
    import numpy as np
    import tensorflow as tf

    config = {**BASE, "num_hidden_layers": layers, "max_position_embeddings": max(1536, length)}
    if which == "floor":
        _serve(_timed(*_matmul_floor(batch, length, layers)))
        return
    model_name, _, mode = which.partition(":")
    ids = tf.constant(np.random.default_rng(0).integers(1, BASE["vocab_size"], size=(batch, length)), tf.int32)
    mask = tf.ones((batch, length), tf.int32)
    if mode == "train":
        _serve(_training_step(model_name, config, ids, mask, train_steps))
        return
    if model_name == "ours":
        from roformer_tf import RoFormerConfig, TFRoFormerModel

        model = TFRoFormerModel(RoFormerConfig(**config))
    else:
        from transformers import RoFormerConfig, TFRoFormerModel

        model = TFRoFormerModel(RoFormerConfig(**config))

    def forward(ids, mask):
        return model(input_ids=ids, attention_mask=mask, training=False).last_hidden_state

    if mode != "eager":
        forward = tf.function(forward, jit_compile=mode in ("", "xla"))
    _serve(_timed(forward, (ids, mask)))


def _training_step(model_name: str, config: dict, ids, mask, steps: int) -> Callable[[], float]:
    """A function running ``fit`` on a sequence classifier for ``steps + 1`` steps and returning the seconds per
    step after the first (from the end of the first step to the end of the last: no ``fit`` set-up in it)."""
    import tensorflow as tf

    if model_name == "ours":
        import keras

        from roformer_tf import RoFormerConfig, TFRoFormerForSequenceClassification
    else:
        keras = tf.keras  # tf-keras (Keras 2) under TF_USE_LEGACY_KERAS=1, as transformers' TF models need
        from transformers import RoFormerConfig, TFRoFormerForSequenceClassification
    model = TFRoFormerForSequenceClassification(RoFormerConfig(**config, num_labels=2))
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-5, weight_decay=0.01), jit_compile=True)
    labels = tf.zeros((ids.shape[0],), tf.int32)
    data = tf.data.Dataset.from_tensors({"input_ids": ids, "attention_mask": mask, "labels": labels}).repeat()

    class StepEnds(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for the step
            self.ends.append(time.perf_counter())

    ends = StepEnds()

    def run() -> float:
        model.fit(data, steps_per_epoch=steps + 1, epochs=1, verbose=0, callbacks=[ends])
        return (ends.ends[-1] - ends.ends[0]) / steps

    return run


def _matmul_floor(batch: int, length: int, layers: int):
    """An XLA function doing only the base model's matrix products for ``[batch, length]``, and its input."""
    import numpy as np
    import tensorflow as tf

    hidden, heads, inner = BASE["hidden_size"], BASE["num_attention_heads"], 3072
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


def _timed(forward: Callable, args: tuple) -> Callable[[], float]:
    """A function calling ``forward(*args)``, waiting for its result and returning the seconds it took."""

    def run() -> float:
        start = time.perf_counter()
        forward(*args).numpy()
        return time.perf_counter() - start

    return run


def _serve(run: Callable[[], float]) -> None:
    """Warm ``run`` up, then print the seconds of one ``run()`` per ``run`` line on stdin."""
    for _ in range(2):
        run()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        print(run(), flush=True)


def _start(which: str, batch: int, length: int, args: argparse.Namespace) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if which.startswith("reference"):
        env["TF_USE_LEGACY_KERAS"] = "1"
    cmd = [sys.executable, __file__, "--worker", which, "--shapes", f"{batch}x{length}"]
    cmd += ["--layers", str(args.layers), "--train_steps", str(args.train_steps)]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the {which} worker failed for {batch}x{length}")
    return proc


def _time_one(proc: subprocess.Popen) -> float:
    proc.stdin.write("run\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def _time_turns(names: list[str], batch: int, length: int, args: argparse.Namespace) -> dict[str, list[list[float]]]:
    """Per worker kind, per turn, one time per worker process: all workers started and warmed up first, then
    every worker runs once per turn, ``args.repeats`` turns."""
    workers: dict[str, list[subprocess.Popen]] = {name: [] for name in names}
    try:
        for _ in range(args.processes):
            for name in names:
                workers[name].append(_start(name, batch, length, args))
        times: dict[str, list[list[float]]] = {name: [] for name in names}
        for _ in range(args.repeats):
            for name, procs in workers.items():
                times[name].append([_time_one(proc) for proc in procs])
        return times
    finally:
        for procs in workers.values():
            for proc in procs:
                proc.stdin.close()
                proc.wait()


def _median_rate(tokens: int, times: list[list[float]]) -> float:
    return tokens / statistics.median(sum(times, []))


def _ratio(ours: list[list[float]], reference: list[list[float]]) -> float:
    """The median over turns of the reference's total time over ours."""
    return statistics.median(sum(r) / sum(o) for o, r in zip(ours, reference))


def _bench_forward(shapes, args) -> None:
    print(f"{'shape':>8} {'ours tok/s':>11} {'ref tok/s':>10} {'ratio':>6} {'floor tok/s':>12} {'ceiling':>8}")
    for batch, length in shapes:
        times = _time_turns(["reference", "ours", "floor"], batch, length, args)
        ours, ref, floor = (_median_rate(batch * length, times[name]) for name in ("ours", "reference", "floor"))
        ratio = _ratio(times["ours"], times["reference"])
        ceiling = _ratio(times["floor"], times["reference"])
        print(f"{batch}x{length:<6} {ours:11.1f} {ref:10.1f} {ratio:6.2f} {floor:12.1f} {ceiling:8.2f}", flush=True)


def _bench_train(shapes, args) -> None:
    print(f"{'shape':>8} {'ours ms/step':>13} {'ref ms/step':>12} {'ratio':>6}")
    for batch, length in shapes:
        times = _time_turns(["reference:train", "ours:train"], batch, length, args)
        ours, ref = (1e3 * statistics.median(sum(times[f"{m}:train"], [])) for m in ("ours", "reference"))
        ratio = _ratio(times["ours:train"], times["reference:train"])
        print(f"{batch}x{length:<6} {ours:13.1f} {ref:12.1f} {ratio:6.2f}", flush=True)


def _bench_infer(shapes, args) -> None:
    modes = ("eager", "graph", "xla")
    print(f"{'shape':>8} {'model':>10} " + " ".join(f"{m + ' tok/s':>12}" for m in modes) + f" {'best ratio':>11}")
    for batch, length in shapes:
        names = [f"{model}:{mode}" for model in ("reference", "ours") for mode in modes]
        times = _time_turns(names, batch, length, args)
        ratio = _ratio(_best_mode(times, "ours", modes), _best_mode(times, "reference", modes))
        for model in ("reference", "ours"):
            rates = " ".join(f"{_median_rate(batch * length, times[f'{model}:{m}']):12.1f}" for m in modes)
            tail = f" {ratio:11.2f}" if model == "ours" else ""
            print(f"{batch}x{length:<6} {model:>10} {rates}{tail}", flush=True)


def _best_mode(times: dict[str, list[list[float]]], model: str, modes: tuple[str, ...]) -> list[list[float]]:
    """Per turn, ``model``'s fastest mode's total time over its worker processes."""
    turns = len(times[f"{model}:{modes[0]}"])
    return [[min(sum(times[f"{model}:{mode}"][turn]) for mode in modes)] for turn in range(turns)]


TASKS = {
    "forward": (_bench_forward, "4x512,1x2048"),
    "train": (_bench_train, "8x128,2x512"),
    "infer": (_bench_infer, "4x512"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=tuple(TASKS), default="forward", help="what to time (default forward)")
    parser.add_argument(
        "--shapes", help="comma-separated BATCHxLENGTH (default: 4x512,1x2048 forward, 8x128,2x512 train, 4x512 infer)"
    )
    parser.add_argument("--repeats", type=int, default=9, help="timed turns per shape (default 9)")
    parser.add_argument("--processes", type=int, default=3, help="worker processes per model and mode (default 3)")
    parser.add_argument("--train_steps", type=int, default=3, help="timed steps per training run (default 3)")
    parser.add_argument("--layers", type=int, default=BASE["num_hidden_layers"], help="encoder layers (default 12)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    bench, default_shapes = TASKS[args.task]
    shapes = [tuple(int(n) for n in s.split("x")) for s in (args.shapes or default_shapes).split(",")]
    if args.worker:
        _worker(args.worker, *shapes[0], args.layers, args.train_steps)
        return
    bench(shapes, args)


if __name__ == "__main__":
    main()
