"""``roformer verify``: one checkpoint, every installed framework, every head, one table of differences."""

from __future__ import annotations

import contextlib
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roformer_core import HEADS, RoFormerConfig, load_checkpoint, numpy_model
from roformer_core.checkpoint import find_weights
from roformer_core.heads import HeadSpec
from roformer_core.hub import resolve_checkpoint as resolve_name
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
#: Forward passes before timing (compilation, allocator and thread-pool warm-up), then timed passes (median).
WARMUP_RUNS = 2
TIMED_RUNS = 5


@dataclass
class Row:
    """One head in one framework: the largest difference from the oracle and the median forward time."""

    head: str
    framework: str
    max_abs_diff: float | None
    seconds: float | None
    error: str | None = None


@dataclass
class Report:
    """What ``roformer verify`` ran.

    Attributes:
        checkpoint: the directory loaded.
        weights_file: the weights file read in it (``model.safetensors``, ``pytorch_model.bin``, ``tf_model.h5``...).
        rows: one per (head that ran, framework).
        new_head_weights: heads that ran on seeded random head weights the checkpoint lacks -> how many tensors.
        skipped: heads that did not run -> why.
    """

    checkpoint: Path
    weights_file: str
    rows: list[Row]
    new_head_weights: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _skipped(row: Row) -> bool:
    """Whether a row did not run for a reason that is no failure: the framework is not installed."""
    return row.error is not None and row.error.startswith("not installed")


def check_frameworks(names: str | tuple[str, ...]) -> tuple[str, ...]:
    """``"pt,flax"`` or ``("pt", "flax")`` -> the names, checked against :data:`FRAMEWORKS`.

    Raises:
        ValueError: an unknown or empty name, naming the valid ones.
    """
    parts = tuple(n.strip() for n in names.split(",")) if isinstance(names, str) else tuple(names)
    unknown = [n for n in parts if n not in FRAMEWORKS]
    if unknown:
        raise ValueError(
            f"unknown framework {', '.join(map(repr, unknown))} in --frameworks: choose from {','.join(FRAMEWORKS)}"
        )
    if not parts:
        raise ValueError(f"no framework given: choose from {','.join(FRAMEWORKS)}")
    return parts


def skip_reason(config: RoFormerConfig, head: HeadSpec) -> str | None:
    """Why verify does not run ``head`` on a checkpoint with ``config`` (None: it runs)."""
    if head.name == "causal_lm" and not config.is_decoder:
        return "config.is_decoder is false"
    if config.is_decoder and head.name not in ("model", "causal_lm"):
        return "config.is_decoder is true (a decoder checkpoint runs the model and causal_lm heads)"
    return None


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


def head_state(
    config: RoFormerConfig, head: HeadSpec, state: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The checkpoint's weights for ``head``; a head the checkpoint lacks gets seeded random weights.

    Returns:
        the weights and the names of those drawn afresh.
    """
    plan = resolve_checkpoint(config, head, state)
    if plan.newly_initialized:
        fresh = numpy_model.init_params(config, head, seed=0)
        plan.arrays.update({name: fresh[name] for name in plan.newly_initialized})
    return plan.arrays, plan.newly_initialized


def median_seconds(call: Callable[[], object]) -> float:
    """Median wall time of :data:`TIMED_RUNS` calls after :data:`WARMUP_RUNS` untimed ones."""
    for _ in range(WARMUP_RUNS):
        call()
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
            tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}

            def call():
                with torch.no_grad():
                    return model(**tensors)
        else:

            def call():
                return model(**inputs)

        out = call()
        # the result of the first call is compared, then timings are taken warm (see median_seconds)
        return np.asarray(out[key], dtype=np.float64), median_seconds(call)

    return run


def verify(directory: str | os.PathLike | None = None, frameworks: str | tuple[str, ...] = tuple(FRAMEWORKS)) -> Report:
    """Run every head of ``directory`` (default: the shipped sample; or a hub id, downloaded with its tokenizer) in
    every framework against the float64 numpy oracle.

    Raises:
        ValueError: an unknown framework name (before anything is loaded).
        OSError / ValueError: the checkpoint cannot be read.
    """
    frameworks = check_frameworks(frameworks)
    directory = resolve_name(directory, files="all") if directory is not None else SAMPLE_CHECKPOINT
    config, state = load_checkpoint(directory)
    report = Report(checkpoint=directory, weights_file=find_weights(directory).name, rows=[])
    for head in HEADS:
        reason = skip_reason(config, head)
        if reason is not None:
            report.skipped[head.name] = reason
            continue
        head_config = config.copy()
        head.adapt_config(head_config)
        weights, fresh = head_state(head_config, head, state)
        if fresh:
            report.new_head_weights[head.name] = len(fresh)
        inputs = sample_inputs(directory, head_config, head)
        expected = np.asarray(numpy_model.forward(head_config, weights, head, **inputs)[head.main_outputs[0]])
        for framework in frameworks:
            runner = _runner(framework, head)
            if isinstance(runner, str):
                report.rows.append(Row(head.name, framework, None, None, runner))
                continue
            try:
                got, seconds = runner(head_config.copy(), weights, inputs)
            except Exception as err:  # a failing framework is reported in the table, not a crash
                error = f"{type(err).__name__}: {err}".splitlines()[0]
                report.rows.append(Row(head.name, framework, None, None, error))
                continue
            report.rows.append(Row(head.name, framework, float(np.max(np.abs(got - expected))), seconds))
    return report


def format_report(report: Report) -> str:
    """The table ``roformer verify`` prints: what was loaded, one line per head, then notes."""
    rows = report.rows
    frameworks = list(dict.fromkeys(r.framework for r in rows))
    cell = {(r.head, r.framework): r for r in rows}
    width = 24
    lines = [
        f"checkpoint: {report.checkpoint} (loaded {report.weights_file})",
        f"max |difference| vs the float64 numpy oracle (median forward time of {TIMED_RUNS} runs after "
        f"{WARMUP_RUNS} warm-up runs)",
        "",
        f"{'head':<26}" + "".join(f"{f:>{width}}" for f in frameworks),
    ]
    for head in (h.name for h in HEADS):
        if head in report.skipped:
            lines.append(f"{head:<26}  skipped: {report.skipped[head]}")
            continue
        parts = []
        for framework in frameworks:
            row = cell[(head, framework)]
            if row.error is not None:
                text = "skipped" if _skipped(row) else "ERROR"
            else:
                flag = "" if row.max_abs_diff <= TOLERANCE else " FAIL"
                text = f"{row.max_abs_diff:.1e} ({row.seconds * 1000:.1f} ms){flag}"
            parts.append(f"{text:>{width}}")
        if head in report.new_head_weights:
            parts.append(f"  new head weights ({report.new_head_weights[head]} tensors not in the checkpoint)")
        lines.append(f"{head:<26}" + "".join(parts))
    notes = sorted({f"{r.framework}: {r.error}" for r in rows if r.error})
    return "\n".join(lines + ([""] + notes if notes else []))


def passed(report: Report) -> bool:
    """True when every framework that ran stayed within the tolerance and none failed to run."""
    ran = [r for r in report.rows if r.error is None]
    failed = [r for r in report.rows if r.error is not None and not _skipped(r)]
    return bool(ran) and not failed and all(r.max_abs_diff <= TOLERANCE for r in ran)
