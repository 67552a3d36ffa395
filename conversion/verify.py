"""``roformer verify``: one checkpoint, every installed framework, every head, one table of differences."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roformer_core import HEADS, RoFormerConfig, load_checkpoint, numpy_model
from roformer_core.heads import HeadSpec
from roformer_core.schema import resolve_checkpoint
from roformer_core.tokenization import VOCAB_FILE

SAMPLE_CHECKPOINT = Path(__file__).resolve().parent / "sample"
TOLERANCE = 1e-5
SENTENCES = (
    "今天天气非常好。",
    "永和服装饰品有限公司",
    "我们去公园散步吧！",
    "RoFormer uses rotary position embeddings.",
)
FRAMEWORKS = {"pt": ("roformer_pt", ""), "tf": ("roformer_tf", "TF"), "flax": ("roformer_flax", "Flax")}


@dataclass
class Row:
    head: str
    framework: str
    max_abs_diff: float | None
    seconds: float | None
    error: str | None = None


def sample_inputs(directory: Path, config: RoFormerConfig, head: HeadSpec) -> dict[str, np.ndarray]:
    """Inputs made with our tokenizer from the checkpoint's vocab (random ids when it has none)."""
    if (directory / VOCAB_FILE).is_file():
        from roformer_core import RoFormerTokenizerFast

        tokenizer = RoFormerTokenizerFast.from_pretrained(directory)
        if head.name == "multiple_choice":
            pairs = [(SENTENCES[0], s) for s in SENTENCES[1:]]
            enc = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], padding=True, return_tensors="np")
            return {k: np.asarray(v)[None].repeat(2, axis=0) for k, v in enc.items()}  # [2, 3, L]
        enc = tokenizer(list(SENTENCES), padding=True, return_tensors="np")
        return {k: np.asarray(v) for k, v in enc.items()}
    rng = np.random.default_rng(0)
    shape = (2, 3, 12) if head.name == "multiple_choice" else (4, 12)
    return {"input_ids": rng.integers(1, config.vocab_size, size=shape)}


def head_state(config: RoFormerConfig, head: HeadSpec, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The checkpoint's weights for ``head``; a head the checkpoint lacks gets seeded random weights."""
    plan = resolve_checkpoint(config, head, state)
    if plan.newly_initialized:
        fresh = numpy_model.init_params(config, head, seed=0)
        plan.arrays.update({name: fresh[name] for name in plan.newly_initialized})
    return plan.arrays


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence file descriptor 2 (native libraries' stderr) for the duration; Python errors still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _runner(framework: str, head: HeadSpec) -> Callable[[RoFormerConfig, dict, dict], np.ndarray] | str:
    module_name, prefix = FRAMEWORKS[framework]
    try:
        with _quiet_native_stderr():  # TensorFlow's C++ start-up chatter, printed before its log level applies
            module = importlib.import_module(module_name)
    except ImportError as err:
        return f"not installed ({err})"
    cls = getattr(module, prefix + head.class_name)
    key = head.main_outputs[0]

    def run(config: RoFormerConfig, state: dict, inputs: dict) -> tuple[np.ndarray, float]:
        model = cls.from_state_dict(config, state)
        if framework == "pt":
            import torch

            model.eval()
            with torch.no_grad():
                call = lambda: model(**{k: torch.from_numpy(v) for k, v in inputs.items()})  # noqa: E731
                call()
                start = time.perf_counter()
                out = call()
        else:
            call = lambda: model(**inputs)  # noqa: E731
            call()
            start = time.perf_counter()
            out = call()
        seconds = time.perf_counter() - start
        return np.asarray(out[key], dtype=np.float64), seconds

    return run


def verify(directory: str | os.PathLike | None = None, frameworks: tuple[str, ...] = tuple(FRAMEWORKS)) -> list[Row]:
    """Run every head of ``directory`` (default: the shipped sample) in every framework against the float64 numpy
    oracle; return one row per (head, framework)."""
    directory = Path(directory) if directory is not None else SAMPLE_CHECKPOINT
    config, state = load_checkpoint(directory)
    heads = [h for h in HEADS if h.name != "causal_lm" or config.is_decoder]
    if config.is_decoder:
        heads = [h for h in heads if h.name in ("model", "causal_lm")]
    rows: list[Row] = []
    for head in heads:
        head_config = config.copy()
        head.adapt_config(head_config)
        weights = head_state(head_config, head, state)
        inputs = sample_inputs(directory, head_config, head)
        expected = np.asarray(numpy_model.forward(head_config, weights, head, **inputs)[head.main_outputs[0]])
        for framework in frameworks:
            runner = _runner(framework, head)
            if isinstance(runner, str):
                rows.append(Row(head.name, framework, None, None, runner))
                continue
            try:
                got, seconds = runner(head_config.copy(), weights, inputs)
            except Exception as err:  # a failing framework is reported in the table, not a crash
                rows.append(Row(head.name, framework, None, None, f"{type(err).__name__}: {err}".splitlines()[0]))
                continue
            rows.append(Row(head.name, framework, float(np.max(np.abs(got - expected))), seconds))
    return rows


def format_table(rows: list[Row]) -> str:
    frameworks = list(dict.fromkeys(r.framework for r in rows))
    heads = list(dict.fromkeys(r.head for r in rows))
    cell = {(r.head, r.framework): r for r in rows}
    width = 24
    lines = ["max |difference| vs the float64 numpy oracle (forward time)", ""]
    lines.append(f"{'head':<26}" + "".join(f"{f:>{width}}" for f in frameworks))
    for head in heads:
        parts = []
        for framework in frameworks:
            row = cell[(head, framework)]
            if row.error is not None:
                text = "skipped" if row.error.startswith("not installed") else "ERROR"
            else:
                flag = "" if row.max_abs_diff <= TOLERANCE else " FAIL"
                text = f"{row.max_abs_diff:.1e} ({row.seconds * 1000:.0f} ms){flag}"
            parts.append(f"{text:>{width}}")
        lines.append(f"{head:<26}" + "".join(parts))
    notes = sorted({f"{r.framework}: {r.error}" for r in rows if r.error})
    return "\n".join(lines + ([""] + notes if notes else []))


def passed(rows: list[Row]) -> bool:
    """True when every framework that ran stayed within the tolerance and none failed to run."""
    ran = [r for r in rows if r.error is None]
    failed = [r for r in rows if r.error is not None and not r.error.startswith("not installed")]
    return bool(ran) and not failed and all(r.max_abs_diff <= TOLERANCE for r in ran)
