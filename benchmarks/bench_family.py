"""RoFormer-V2 (or Sim) forward throughput in every framework vs JunnYu's PyTorch ``roformer`` 0.4.3, in one run.

Issue 11's target: ours >= 1.5x JunnYu's PyTorch V2 at batch 4 x 512 and 1 x 2048. Usage::

    python benchmarks/bench_family.py                                   # V2 base, pt,tf,flax, both shapes
    python benchmarks/bench_family.py --variant sim --frameworks pt,flax
    python benchmarks/bench_family.py --shapes 1x64 --layers 2 --repeats 2   # a quick check of the harness
    python benchmarks/bench_family.py --setup                           # create JunnYu's environment

The model is the base size of the released checkpoints (12 layers, hidden 768, 12 heads, intermediate 3072, the
char vocabulary of 12000; V2: relu, RMS norm, no biases; Sim: gelu, LayerNorm, linear pooler, UniLM mask),
``max_position_embeddings`` raised to the longest shape. Its seeded random weights
(``roformer_core.numpy_model.init_params``) are written once, as a checkpoint in JunnYu's layout (his names are our
canonical ones; ``config.json`` carries ``norm_type`` / ``use_bias`` / ``pooler_activation``), to a temporary
directory, and every implementation loads that directory with its own ``from_pretrained``.

Inputs: random ids, an all-ones ``attention_mask [B, L]``; token types all 0 for V2, and for Sim 0 on the first half
and 1 on the second (the seq2seq UniLM mask). Ours compute the UniLM mask themselves from the token types; JunnYu's
package has no UniLM rule, so it gets ``roformer_core.masks.unilm_mask`` as an explicit 3-D mask, built before the
timing. fp32 on CPU, inference, the bare model (``last_hidden_state``, plus Sim's ``pooler_output``), no cache. A
forward is: PyTorch eager under ``no_grad`` (ours takes its SDPA path), TensorFlow ``tf.function(jit_compile=True)``,
Flax the model's own jitted call.

Each implementation lives in a worker process of its own (JunnYu's in its own virtual environment, see
``--setup``). All workers load and warm up (compile) first, then take turns, one forward each, ``--repeats`` times,
so that background load hits all alike. ``tok/s`` is the median over turns; ``speed x`` the median over turns of
JunnYu's time over ours (>= 1.5 is the target). ``max |diff|`` is the largest difference of the outputs from
JunnYu's (from the first of ours that ran when JunnYu's environment is missing). ``peak MiB`` (PyTorch workers, as
in bench_pt.py) is the resident set's peak during one extra forward minus the resident set before it: activations
and workspace, not the weights. A worker that dies is reported as "failed" with its last error line, and the others
still run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("pt", "tf", "flax")
REFERENCE = "junnyu"
# The base size of the released V2 and Sim char checkpoints.
BASE = {
    "vocab_size": 12000,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
}
ACTIVATION = {"v2": "relu", "sim": "gelu"}
SEED = 0
Forward = Callable[[], dict[str, np.ndarray]]  # one forward pass; its outputs by name, as numpy
MARK = "@bench"  # prefix of the protocol lines a worker writes to stdout (libraries may print there too)


# ---- workers: one implementation each, serving "run" / "peak" commands on stdin ------------------------------------


def _reply(*words: object) -> None:
    print(MARK, *words, flush=True)


def _peak_mib(forward: Forward) -> float:
    """The resident set's peak during one call of ``forward`` minus the resident set before it, in MiB."""

    def rss() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    before = rss()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    forward()
    done.set()
    sampler.join()
    return peak[0] - before


def _torch_forward(impl: str, checkpoint: str, inputs: dict[str, np.ndarray]) -> Forward:
    """Ours (``impl="pt"``) or JunnYu's PyTorch model from ``checkpoint``, eager, under ``no_grad``."""
    import torch

    if impl == REFERENCE:
        import roformer
        from roformer.modeling_roformer import RoFormerSinusoidalPositionalEmbedding

        config = roformer.RoFormerConfig.from_pretrained(checkpoint)
        model = roformer.RoFormerModel.from_pretrained(checkpoint, add_pooling_layer=config.add_pooling_layer)
        # transformers 4.51+ leaves the sinusoidal table uninitialized in from_pretrained; harmless on older ones
        for module in model.modules():
            if isinstance(module, RoFormerSinusoidalPositionalEmbedding):
                module._init_weight(module.weight)
        mask = inputs["reference_mask"]
    else:
        from roformer_pt import RoFormerModel

        model = RoFormerModel.from_pretrained(checkpoint)
        mask = inputs["attention_mask"]
    model.eval()
    args = {
        "input_ids": torch.from_numpy(inputs["input_ids"]),
        "token_type_ids": torch.from_numpy(inputs["token_type_ids"]),
        "attention_mask": torch.from_numpy(mask),
    }

    def forward() -> dict[str, np.ndarray]:
        with torch.no_grad():
            out = model(**args, use_cache=False, return_dict=True)
        return {k: out[k].numpy() for k in ("last_hidden_state", "pooler_output") if out.get(k) is not None}

    return forward


def _tf_forward(checkpoint: str, inputs: dict[str, np.ndarray]) -> Forward:
    """Our TensorFlow model from ``checkpoint``, under ``tf.function(jit_compile=True)``."""
    import tensorflow as tf

    from roformer_tf import TFRoFormerModel

    model = TFRoFormerModel.from_pretrained(checkpoint)
    args = {k: tf.constant(inputs[k], tf.int32) for k in ("input_ids", "token_type_ids", "attention_mask")}

    @tf.function(jit_compile=True)
    def compiled(args):
        out = model(**args, use_cache=False, return_dict=True, training=False)
        return {k: out[k] for k in ("last_hidden_state", "pooler_output") if out.get(k) is not None}

    def forward() -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in compiled(args).items()}

    return forward


def _flax_forward(checkpoint: str, inputs: dict[str, np.ndarray]) -> Forward:
    """Our Flax model from ``checkpoint`` (its call is jit-compiled)."""
    import jax.numpy as jnp

    from roformer_flax import FlaxRoFormerModel

    model = FlaxRoFormerModel.from_pretrained(checkpoint)
    args = {k: jnp.asarray(inputs[k], jnp.int32) for k in ("input_ids", "token_type_ids", "attention_mask")}

    def forward() -> dict[str, np.ndarray]:
        out = model(**args, use_cache=False, return_dict=True)  # jitted by the model, per shape
        return {k: np.asarray(out[k]) for k in ("last_hidden_state", "pooler_output") if out.get(k) is not None}

    return forward


def _worker(impl: str, work: Path) -> None:
    """Load the checkpoint in ``impl``, warm up, save the outputs, then serve timing commands from stdin."""
    inputs = dict(np.load(work / "inputs.npz"))
    checkpoint = str(work / "checkpoint")
    if impl in (REFERENCE, "pt"):
        forward = _torch_forward(impl, checkpoint, inputs)
    elif impl == "tf":
        forward = _tf_forward(checkpoint, inputs)
    else:
        forward = _flax_forward(checkpoint, inputs)
    outputs = forward()  # compiles (XLA) and warms up
    np.savez(work / f"out_{impl}.npz", **outputs)
    _reply("ready")
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            start = time.perf_counter()
            forward()
            _reply(time.perf_counter() - start)
        elif command == "peak":
            _reply(_peak_mib(forward))
        else:
            break


# ---- parent ------------------------------------------------------------------------------------------------------


class Worker:
    """A worker process; ``status`` is ``"ready"``, ``"unsupported"`` or ``"failed"``, ``detail`` says why."""

    def __init__(self, impl: str, python: str, work: Path) -> None:
        self.impl = impl
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MALLOC_MMAP_THRESHOLD_="131072")
        if impl == REFERENCE:  # JunnYu's venv must not see the project's environment first
            for name in ("PYTHONPATH", "VIRTUAL_ENV"):
                env.pop(name, None)
        self._stderr = work / f"stderr_{impl}.txt"  # a file: a full pipe would block the worker
        cmd = [python, __file__, "--worker", impl, str(work)]
        with open(self._stderr, "w") as stderr:
            self.proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        words = self._answer()
        self.status, self.detail = (words[0], " ".join(words[1:])) if words else ("failed", self._error())

    def _answer(self) -> list[str]:
        for line in self.proc.stdout:
            if line.startswith(MARK + " "):
                return line.split()[1:]
        return []

    def _error(self) -> str:
        self.proc.wait()
        lines = [line.strip() for line in self._stderr.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.proc.returncode}"

    def ask(self, command: str) -> float | None:
        """Send ``command`` (``run`` or ``peak``); its answer in seconds or MiB, or None when the worker died."""
        if self.status != "ready":
            return None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            words = self._answer()
        except BrokenPipeError:
            words = []
        if not words:
            self.status, self.detail = "failed", self._error()
            return None
        return float(words[0])

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        self.proc.wait()


def _family_golden() -> ModuleType:
    """scripts/make_family_golden.py, which owns the oracle environments (where they live, how to create them)."""
    spec = importlib.util.spec_from_file_location("make_family_golden", ROOT / "scripts" / "make_family_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_model(work: Path, variant: str, layers: int, max_length: int) -> None:
    """Write the seeded random checkpoint (JunnYu's layout) and nothing else."""
    from roformer_core import save_checkpoint, variant_config
    from roformer_core.numpy_model import init_params
    from roformer_core.schema import ROTARY_TABLE_KEY

    config = variant_config(
        variant,
        **{
            **BASE,
            "num_hidden_layers": layers,
            "max_position_embeddings": max(BASE["max_position_embeddings"], max_length),
        },
        hidden_act=ACTIVATION[variant],
    )
    # JunnYu's layout has no rotary table (every reader rebuilds it)
    state = {k: v for k, v in init_params(config, "model", seed=SEED).items() if not k.endswith(ROTARY_TABLE_KEY)}
    save_checkpoint(work / "checkpoint", config, state)


def _write_inputs(work: Path, variant: str, batch: int, length: int) -> None:
    from roformer_core import unilm_mask

    rng = np.random.default_rng(SEED)
    ids = rng.integers(1, BASE["vocab_size"], size=(batch, length))
    types = np.zeros((batch, length), np.int64)
    if variant == "sim":
        types[:, length // 2 :] = 1
    mask = np.ones((batch, length), np.int64)
    reference_mask = unilm_mask(types, mask).astype(np.int64) if variant == "sim" else mask
    np.savez(
        work / "inputs.npz", input_ids=ids, token_type_ids=types, attention_mask=mask, reference_mask=reference_mask
    )


def _max_diff(work: Path, impl: str, against: str) -> str:
    """The largest difference of ``impl``'s outputs from ``against``'s, or which output is missing or mis-shaped."""
    ours, theirs = np.load(work / f"out_{impl}.npz"), np.load(work / f"out_{against}.npz")
    for name in sorted(set(ours.files) ^ set(theirs.files)):
        return f"no {name} in {impl if name in theirs.files else against}"
    for name in theirs.files:
        if ours[name].shape != theirs[name].shape:
            return f"{name} {ours[name].shape} vs {theirs[name].shape}"
    return f"{max(float(np.max(np.abs(ours[k] - theirs[k]))) for k in theirs.files):.1e}"


def _bench_shape(work: Path, impls: dict[str, str], variant: str, batch: int, length: int, repeats: int) -> None:
    _write_inputs(work, variant, batch, length)
    workers: dict[str, Worker] = {}
    try:
        for impl, python in impls.items():
            workers[impl] = Worker(impl, python, work)
        turns = [{impl: w.ask("run") for impl, w in workers.items()} for _ in range(repeats)]
        peaks = {impl: workers[impl].ask("peak") for impl in (REFERENCE, "pt") if impl in workers}
    finally:
        for worker in workers.values():
            worker.close()
    ready = [impl for impl, worker in workers.items() if worker.status == "ready"]
    peaks = {impl: peak for impl, peak in peaks.items() if impl in ready}
    against = REFERENCE if REFERENCE in ready else next(iter(ready), None)
    shape = f"{batch}x{length}"
    for impl, worker in workers.items():
        if worker.status != "ready":
            print(f"{shape:>8} {impl:>7}  failed: {worker.detail}")
            continue
        tok_s = batch * length / statistics.median(turn[impl] for turn in turns)
        speed = memory = "-"
        if REFERENCE in ready:
            speed = f"{statistics.median(turn[REFERENCE] / turn[impl] for turn in turns):.2f}"
            if impl in peaks and peaks[REFERENCE] > 0:
                memory = f"{peaks[impl] / peaks[REFERENCE]:.2f}"
        peak = f"{peaks[impl]:.0f}" if impl in peaks else "-"
        diff = "-" if impl == against else _max_diff(work, impl, against)
        print(f"{shape:>8} {impl:>7} {tok_s:9.1f} {speed:>7} {peak:>8} {memory:>8} {diff:>9}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=tuple(ACTIVATION), default="v2", help="family member (default v2)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset of pt,tf,flax")
    parser.add_argument("--shapes", default="4x512,1x2048", help="comma-separated BATCHxLENGTH (default 4x512,1x2048)")
    parser.add_argument("--repeats", type=int, default=5, help="timed turns per shape (default 5)")
    parser.add_argument("--layers", type=int, default=BASE["num_hidden_layers"], help="encoder layers (default 12)")
    parser.add_argument("--setup", action="store_true", help="create JunnYu's environment (and bert4keras'), then exit")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], Path(args.worker[1]))
        return
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown:
        parser.error(f"unknown framework(s) {', '.join(unknown)}; pass a comma-separated subset of pt,tf,flax")
    try:
        shapes = [tuple(int(n) for n in s.lower().split("x")) for s in args.shapes.split(",")]
        if any(len(s) != 2 or min(s) < 1 for s in shapes):
            raise ValueError
    except ValueError:
        parser.error(
            f"--shapes must be comma-separated BATCHxLENGTH with positive sizes, e.g. 4x512,1x2048; got {args.shapes!r}"
        )
    if args.repeats < 1 or args.layers < 1:
        parser.error("--repeats and --layers must be at least 1")

    oracles = _family_golden()
    if args.setup:
        oracles.ensure_oracles()
        return
    junnyu_python = oracles.JUNNYU_VENV / "bin" / "python"
    impls = dict.fromkeys(frameworks, sys.executable)
    if junnyu_python.exists():
        impls = {REFERENCE: str(junnyu_python), **impls}
    else:
        print(
            f"JunnYu's roformer 0.4.3 environment is missing ({oracles.JUNNYU_VENV}): create it with "
            "`python benchmarks/bench_family.py --setup` (as scripts/make_family_golden.py does; needs PyPI). "
            "Measuring ours only."
        )
    print(
        f"RoFormer-{args.variant.upper()}: {args.layers} layers, hidden {BASE['hidden_size']}, "
        f"{ACTIVATION[args.variant]}, fp32 CPU, {os.cpu_count()} CPUs; median of {args.repeats} turns"
    )
    print(f"{'shape':>8} {'impl':>7} {'tok/s':>9} {'speed x':>7} {'peak MiB':>8} {'memory x':>8} {'max|diff|':>9}")
    with tempfile.TemporaryDirectory(prefix="bench_family_") as tmp:
        work = Path(tmp)
        _write_model(work, args.variant, args.layers, max(length for _, length in shapes))
        for batch, length in shapes:
            _bench_shape(work, impls, args.variant, batch, length, args.repeats)


if __name__ == "__main__":
    main()
