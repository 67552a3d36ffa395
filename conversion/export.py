"""``roformer export``: a RoFormer model as an ONNX graph (exported from PyTorch) or a TensorFlow SavedModel.

Both formats take the same named int64 inputs, ``input_ids``, ``attention_mask`` and ``token_type_ids``
(``[B, L]``; ``[B, C, L]`` for multiple choice, every axis dynamic), and return the model's prediction fields
by name (:func:`output_names`): ``last_hidden_state``, ``logits`` or ``start_logits`` / ``end_logits``, plus
``pooler_output`` when the model has a pooler. docs/export.md says how it is done and why.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from roformer_core import RoFormerConfig, load_checkpoint
from roformer_core.heads import (
    MASKED_LM,
    MODEL,
    MULTIPLE_CHOICE,
    QUESTION_ANSWERING,
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    HeadSpec,
)
from roformer_core.rotary import rotary_denominators
from roformer_core.schema import head_owned, resolve_checkpoint

__all__ = [
    "FORMATS",
    "INPUT_NAMES",
    "TASKS",
    "add_commands",
    "export_onnx",
    "export_saved_model",
    "main",
    "output_names",
    "task_head",
]


#: Export task (optimum's names) -> the model class it exports.
TASKS: dict[str, HeadSpec] = {
    "base": MODEL,
    "masked-lm": MASKED_LM,
    "sequence-classification": SEQUENCE_CLASSIFICATION,
    "multiple-choice": MULTIPLE_CHOICE,
    "token-classification": TOKEN_CLASSIFICATION,
    "question-answering": QUESTION_ANSWERING,
}
#: Output formats of ``roformer export``.
FORMATS = ("onnx", "saved_model")
#: The inputs of every exported model, in this order (all int64).
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")

EPILOG = """\
formats (--format):
  onnx         one .onnx file exported from PyTorch (torch.onnx, dynamo exporter), checked with onnx.checker;
               runs in ONNX Runtime (needs roformer-tri[onnx] and torch)
  saved_model  a TensorFlow SavedModel directory with a serving_default signature; reload it with
               tf.saved_model.load(OUT).signatures["serving_default"] (needs TensorFlow only)

tasks (--task) and the outputs they give:
  base                     last_hidden_state [batch, sequence, hidden]
  masked-lm                logits [batch, sequence, vocab]
  sequence-classification  logits [batch, num_labels]
  multiple-choice          logits [batch, choice]  (inputs [batch, choice, sequence])
  token-classification     logits [batch, sequence, num_labels]
  question-answering       start_logits, end_logits [batch, sequence]
  A model with a pooler (config add_pooling_layer, e.g. RoFormer-Sim) also outputs pooler_output.

Inputs: input_ids, attention_mask, token_type_ids (int64, dynamic [batch, sequence]; any length, also beyond
max_position_embeddings). OUT is written beside itself and renamed into place; an existing OUT is an error
unless --force.

examples:
  roformer export ./roformer_chinese_base model.onnx --task masked-lm
  roformer export junnyu/roformer_chinese_base model.onnx --task base
  roformer export ./my_classifier serving --task sequence-classification --format saved_model
"""


def task_head(task: str) -> HeadSpec:
    """The model class of an export task (``"masked-lm"`` -> :data:`~roformer_core.heads.MASKED_LM`).

    Raises:
        ValueError: an unknown task, naming the known ones.
    """
    head = TASKS.get(task)
    if head is None:
        raise ValueError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    return head


def output_names(config: RoFormerConfig, head: HeadSpec) -> tuple[str, ...]:
    """The exported outputs of ``head`` with ``config``: its prediction fields, plus ``pooler_output`` when the
    model has a pooler, in the reference's output order."""
    return tuple(
        f for f in head.output_fields if f in head.main_outputs or (f == "pooler_output" and config.add_pooling_layer)
    )


def _task_name(head: HeadSpec) -> str:
    return next(task for task, spec in TASKS.items() if spec is head)


def _load_state(model: str | os.PathLike, head: HeadSpec, framework: str) -> tuple[RoFormerConfig, dict]:
    """Config and weights of a checkpoint directory or hub id, refusing one without ``head``'s weights (an export of
    freshly initialized head weights would be silently useless)."""
    config, state = load_checkpoint(model, framework=framework)
    head.adapt_config(config)
    plan = resolve_checkpoint(config, head, state, source=os.fspath(model))
    missing = [name for name in plan.newly_initialized if head_owned(name)]
    if missing:
        from .convert import infer_head

        held = infer_head(config, state)
        tasks = sorted({"base", *(task for task, spec in TASKS.items() if spec is held)})
        raise ValueError(
            f"{os.fspath(model)} has no {_task_name(head)} head (it holds a {held.class_name}; missing "
            f"{', '.join(missing)}): export it with --task {' or '.join(tasks)}, or fine-tune that head first"
        )
    return config, state


def _check_model_task(model: Any, head: HeadSpec, allow_base: bool) -> None:
    if model.head is not head and not (allow_base and head is MODEL):
        tasks = [t for t, spec in TASKS.items() if spec is model.head] + (["base"] if allow_base else [])
        if not tasks:
            raise ValueError(f"a {type(model).__name__} cannot be exported: no export task has its outputs")
        raise ValueError(
            f"the model is a {type(model).__name__}, not a {_task_name(head)} model: export it with "
            f"task {' or '.join(repr(t) for t in tasks)}"
        )


def _replace(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final`` (a file or a directory), replacing what is there."""
    if final.is_dir():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)


# ---- ONNX (from PyTorch) ----------------------------------------------------------------------------------------


def _pt_model(model: Any, head: HeadSpec):
    """A roformer_pt model of ``head`` (the encoder of a head model for ``base``)."""
    import roformer_pt

    if isinstance(model, roformer_pt.RoFormerPreTrainedModel):
        _check_model_task(model, head, allow_base=True)
        return model.roformer if head is MODEL and model.head is not MODEL else model
    if isinstance(model, (str, os.PathLike)):
        config, state = _load_state(model, head, "pt")
        return getattr(roformer_pt, head.class_name).from_state_dict(config, state, source=os.fspath(model))
    raise TypeError(
        f"model must be a checkpoint directory, a hub id or a roformer_pt model, got {type(model).__name__}"
    )


def _graph_rotary_class():
    import torch

    from roformer_pt.layers import Rotary

    class GraphRotary(torch.nn.Module):
        """The rotary rows computed in the graph for any length (roformer_core.rotary: float64 angles
        ``m / denominator``, then cast), instead of rows sliced from the stored table: a slice is capped at
        ``max_position_embeddings`` rows in an exported graph."""

        def __init__(self, table) -> None:
            super().__init__()
            self.dtype = table.weight.dtype
            denominators = torch.from_numpy(rotary_denominators(table.dim)).to(table.weight.device)
            self.register_buffer("denominators", denominators, persistent=False)

        def forward(self, past_length: int, length: int) -> Rotary:
            positions = torch.arange(length, dtype=torch.float64, device=self.denominators.device) + past_length  # [L]
            angles = positions[:, None] / self.denominators  # [L, D/2]
            return Rotary(angles.sin().to(self.dtype), angles.cos().to(self.dtype), None)

    return GraphRotary


@contextlib.contextmanager
def _exportable(module) -> Iterator[None]:
    """For the duration of the block: eval mode and the in-graph rotary rows; both put back afterwards."""
    from roformer_pt.layers import RoFormerEncoder

    graph_rotary = _graph_rotary_class()
    encoders = [m for m in module.modules() if isinstance(m, RoFormerEncoder)]
    saved = [m.embed_positions for m in encoders]
    was_training = module.training
    module.eval()
    try:
        for encoder, table in zip(encoders, saved):
            encoder.embed_positions = graph_rotary(table)
        yield
    finally:
        for encoder, table in zip(encoders, saved):
            encoder.embed_positions = table
        module.train(was_training)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence torch.onnx's notices that say nothing about this export (optional torchvision ops, axis renames)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*axis name: .* will not be used")
            warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
            yield
    finally:
        registration.setLevel(level)


def export_onnx(model: Any, output_path: str | os.PathLike, task: str, *, opset: int | None = None) -> Path:
    """Export a RoFormer model to ONNX, through PyTorch's dynamo exporter, and check it with ``onnx.checker``.

    The graph's inputs are ``input_ids``, ``attention_mask`` and ``token_type_ids``: int64 ``[batch, sequence]``
    (``[batch, choice, sequence]`` for ``multiple-choice``), every axis dynamic, any length (positions beyond
    ``max_position_embeddings`` included). Its outputs are :func:`output_names` (float32 for a float32 model).

    Args:
        model: a checkpoint directory, a hub id or a ``roformer_pt`` model (left unchanged; a head model with
            ``task="base"`` exports its encoder).
        output_path: the ``.onnx`` file to write (replaced if it exists; written beside itself, then renamed).
        task: one of :data:`TASKS`.
        opset: ONNX opset version (default: the exporter's, 20 with torch 2.13).

    Returns:
        ``output_path``.

    Raises:
        ValueError: an unknown task, a checkpoint without that task's head, a model of another task.
        TypeError: ``model`` is neither a path nor a roformer_pt model.
    """
    head = task_head(task)
    import onnx
    import torch

    module = _pt_model(model, head)
    names = output_names(module.config, module.head)
    output_path = Path(output_path)
    multiple_choice = module.head is MULTIPLE_CHOICE

    class Forward(torch.nn.Module):
        """The model with positional int inputs and a tuple of the named outputs (what the exporter records)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = module

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True
            )
            return tuple(out[name] for name in names)

    # example sizes all different and > 1 so that the exporter ties no axis to another or to a constant
    shape = (2, 3, 11) if multiple_choice else (2, 11)
    axes = {0: "batch", 1: "choice", 2: "sequence"} if multiple_choice else {0: "batch", 1: "sequence"}
    # three distinct tensors: the exporter merges inputs given as one tensor into one graph input
    example = (
        torch.ones(shape, dtype=torch.long),
        torch.ones(shape, dtype=torch.long),
        torch.zeros(shape, dtype=torch.long),
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(f".{output_path.name}.tmp-{os.getpid()}")
    try:
        with _exportable(module), _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                Forward().eval(),
                example,
                input_names=list(INPUT_NAMES),
                output_names=list(names),
                dynamic_shapes={name: axes for name in INPUT_NAMES},
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
        program.save(str(tmp), external_data=False)
        onnx.checker.check_model(str(tmp), full_check=True)
        _replace(tmp, output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return output_path


# ---- TensorFlow SavedModel --------------------------------------------------------------------------------------


def _tf_model(model: Any, head: HeadSpec):
    import roformer_tf

    if isinstance(model, roformer_tf.TFRoFormerPreTrainedModel):
        _check_model_task(model, head, allow_base=False)
        return model
    if isinstance(model, (str, os.PathLike)):
        config, state = _load_state(model, head, "tf")
        return getattr(roformer_tf, "TF" + head.class_name).from_state_dict(config, state, source=os.fspath(model))
    raise TypeError(
        f"model must be a checkpoint directory, a hub id or a roformer_tf model, got {type(model).__name__}"
    )


def export_saved_model(model: Any, out_dir: str | os.PathLike, task: str) -> Path:
    """Export a RoFormer model as a TensorFlow SavedModel with a ``serving_default`` signature.

    The signature takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64 ``[batch, sequence]``,
    ``[batch, choice, sequence]`` for ``multiple-choice``) and returns :func:`output_names` by name. Reload it
    with TensorFlow alone: ``tf.saved_model.load(out_dir).signatures["serving_default"](**inputs)``.

    Args:
        model: a checkpoint directory, a hub id or a ``roformer_tf`` model of ``task``'s class.
        out_dir: the SavedModel directory (an existing SavedModel there is replaced; written beside it, then
            renamed).
        task: one of :data:`TASKS`.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: an unknown task, a checkpoint without that task's head, a model of another task, or an
            ``out_dir`` that exists and is not a SavedModel.
        TypeError: ``model`` is neither a path nor a roformer_tf model.
    """
    head = task_head(task)
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir / "saved_model.pb").is_file():
        raise ValueError(f"{out_dir} exists and is not a SavedModel: choose another directory or remove it")
    import keras

    tf_model = _tf_model(model, head)
    names = output_names(tf_model.config, head)

    def serve(input_ids, attention_mask, token_type_ids):
        out = tf_model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, training=False)
        return {name: out[name] for name in names}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        archive = keras.export.ExportArchive()
        archive.track(tf_model)
        # the first endpoint is also the serving_default signature
        archive.add_endpoint("serve", serve, input_signature=tf_model.serving_input_signature())
        archive.write_out(str(tmp), verbose=False)
        _replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


# ---- command line -----------------------------------------------------------------------------------------------


def _export_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("model", help="checkpoint directory or hub id")
    parser.add_argument("out", help="the .onnx file or the SavedModel directory to write")
    # checked in _run_export, so that a wrong value is a one-line error like every other
    parser.add_argument("--task", required=True, metavar="TASK", help=f"one of: {', '.join(TASKS)}")
    parser.add_argument("--format", default="onnx", metavar="FORMAT", help="onnx (default) or saved_model")
    parser.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    parser.add_argument("--force", action="store_true", help="replace an existing OUT")
    return parser


def _run_export(args: argparse.Namespace) -> int:
    prog = "roformer export"
    try:
        task_head(args.task)
        if args.format not in FORMATS:
            raise ValueError(f"unknown format {args.format!r}: choose onnx or saved_model")
        if args.opset is not None and args.format != "onnx":
            raise ValueError("--opset applies to --format onnx only")
        out = Path(args.out)
        if out.exists() and not args.force:
            raise ValueError(f"{out} exists: pass --force to replace it, or choose another OUT")
        if out.exists() and args.format == "onnx" and out.is_dir():
            raise ValueError(f"{out} is a directory: give the path of the .onnx file to write")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if args.format == "onnx":
            export_onnx(args.model, out, args.task, opset=args.opset)
        else:
            export_saved_model(args.model, out, args.task)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except ImportError as err:
        extra = "onnx" if args.format == "onnx" else "tf"
        print(
            f"{prog}: error: {err.name or err} is not installed: pip install 'roformer-tri[{extra}]'", file=sys.stderr
        )
        return 1
    except (OSError, ValueError, TypeError) as err:
        print(f"{prog}: error: {str(err).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    except Exception as err:  # an exporter failure: one line, not the exporter's traceback
        print(f"{prog}: error: export failed: {type(err).__name__}: {str(err).strip()[:300]}", file=sys.stderr)
        return 1
    print(f"exported {args.model} ({args.task}) -> {out} [{args.format}]")
    return 0


def add_commands(subparsers: Any) -> None:
    """Register ``export`` on the ``roformer`` command's subparsers (``args.func(args)`` runs it)."""
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX or a TensorFlow SavedModel",
        description="Export a RoFormer checkpoint for serving: an ONNX graph or a TensorFlow SavedModel.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _export_parser(parser).set_defaults(func=_run_export)


def main(argv: Sequence[str] | None = None) -> int:
    """``roformer export`` on its own: parse ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="roformer export",
        description="Export a RoFormer checkpoint for serving: an ONNX graph or a TensorFlow SavedModel.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return _run_export(_export_parser(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
