"""Checkpoint conversion, hub and spoke: every source format reads into canonical arrays, every target writes
from them (see :mod:`roformer_core.formats` for the name mapping)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roformer_core import RoFormerConfig, get_head, load_checkpoint
from roformer_core.checkpoint import (
    PT_WEIGHTS_INDEX_NAME,
    PT_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    find_weights,
)
from roformer_core.config import CONFIG_NAME, FAMILY_DEFAULTS
from roformer_core.formats import (
    FLAX_WEIGHTS_NAME,
    TF_WEIGHTS_NAME,
    flax_msgpack_specs,
    tf_h5_specs,
    write_flax_msgpack,
    write_tf_h5,
)
from roformer_core.heads import HeadSpec
from roformer_core.hub import resolve_checkpoint
from roformer_core.io import atomic_write_text, atomic_write_with
from roformer_core.rotary import sinusoidal_table
from roformer_core.safetensors_io import PT_METADATA, stored_code, stored_nbytes, write_safetensors
from roformer_core.schema import ROTARY_TABLE, check_state_dict, infer_variant_fields, model_schema
from roformer_core.tokenization import TOKENIZER_FILES
from roformer_core.variants import VARIANT_FIELDS

from .original import (
    check_variant,
    find_original_checkpoint,
    read_original_checkpoint,
    write_original_checkpoint,
)

TARGETS = ("pt", "tf", "flax", "original")
DTYPES = ("float32", "float16", "bfloat16")
_FORMAT_NAMES = {
    SAFE_WEIGHTS_NAME: "safetensors",
    SAFE_WEIGHTS_INDEX_NAME: "sharded safetensors",
    PT_WEIGHTS_NAME: "pytorch_model.bin",
    PT_WEIGHTS_INDEX_NAME: "sharded pytorch_model.bin",
    TF_WEIGHTS_NAME: "reference TF (tf_model.h5)",
    FLAX_WEIGHTS_NAME: "reference Flax (flax_model.msgpack)",
}


class ConversionError(Exception):
    """A conversion cannot be done; the message says why, in one line where possible."""


@dataclass
class ConversionReport:
    """What a conversion did."""

    source_format: str
    head: str
    target: str
    destination: Path
    tensors: int
    dropped: list[str] = field(default_factory=list)
    variant: str | None = None


def detect_source(src: Path) -> tuple[str, Path]:
    """``(format name, weights path)`` of a checkpoint directory, from the files present."""
    if not src.exists():
        raise ConversionError(f"source {src} does not exist")
    if not src.is_dir():
        raise ConversionError(f"source {src} is not a directory")
    prefix = find_original_checkpoint(src)
    if prefix is not None:
        return "original TF checkpoint (bert4keras)", prefix
    try:
        weights = find_weights(src)
    except FileNotFoundError as err:
        raise ConversionError(str(err)) from None
    if not (src / CONFIG_NAME).is_file():
        raise ConversionError(f"no {CONFIG_NAME} in {src}")
    return _FORMAT_NAMES[weights.name], weights


def infer_head(config: RoFormerConfig, state: Mapping[str, np.ndarray]) -> HeadSpec:
    """The model class of a checkpoint: its config's ``architectures`` if known, else its head's parameters."""
    for name in config.extra.get("architectures") or []:
        with contextlib.suppress(ValueError):  # a class of another model family
            return get_head(name)
    if "cls.predictions.bias" in state:
        return get_head("causal_lm" if config.is_decoder else "masked_lm")
    if "qa_outputs.weight" in state:
        return get_head("question_answering")
    if "classifier.out_proj.weight" in state:
        return get_head("sequence_classification")
    if "classifier.weight" in state:
        rows = np.shape(state["classifier.weight"])[0]
        return get_head("multiple_choice" if rows == 1 and config.num_labels != 1 else "token_classification")
    return get_head("model")


class _Target:
    """Arrays to write: the validated source arrays, with the rotary table regenerated."""

    def __init__(self, config: RoFormerConfig, arrays: Mapping[str, np.ndarray], table_name: str | None):
        self.config, self.arrays, self.table_name = config, arrays, table_name

    def __getitem__(self, name: str) -> np.ndarray:
        if name == self.table_name:
            return sinusoidal_table(self.config.max_position_embeddings, self.config.head_dim)
        return self.arrays[name]

    def dtype_name(self, name: str) -> str:
        """The dtype of ``self[name]``, without building it."""
        return "float32" if name == self.table_name else np.asarray(self.arrays[name]).dtype.name


def convert_checkpoint(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    to: str,
    dtype: str | None = None,
    force: bool = False,
    progress: bool = False,
    max_shard_size: int | None = None,
    pytorch_bin: bool = False,
    variant: str | None = None,
) -> ConversionReport:
    """Convert a checkpoint directory to another framework's layout.

    Args:
        src: a directory with config.json and model.safetensors / sharded safetensors / pytorch_model.bin /
            tf_model.h5 / flax_model.msgpack, or an original checkpoint (bert_config.json + bert_model.ckpt.*), or
            a hub id (config.json, one weights file and the tokenizer files are downloaded, docs/hub.md).
        dst: the directory to create; it is written atomically (built beside it, then renamed into place).
        to: ``"pt"`` (config.json + model.safetensors), ``"tf"`` (tf_model.h5) or ``"flax"`` (flax_model.msgpack),
            each in the reference's layout, so transformers 4.57 loads them too; or ``"original"`` (bert_config.json
            + bert_model.ckpt, the bert4keras layout of the released checkpoints; needs TensorFlow).
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` for the floating tensors (default: as stored; an
            original checkpoint is written as stored).
        force: replace an existing ``dst``.
        progress: show a progress bar on stderr.
        max_shard_size: with ``to="pt"``, split the weights into safetensors shards of at most this many bytes
            with a ``model.safetensors.index.json`` (a tensor larger than the limit gets a shard of its own).
        pytorch_bin: with ``to="pt"``, write ``pytorch_model.bin`` (torch.save of the state dict, needs torch)
            instead of safetensors, for tools that only read that.
        variant: the member of the family (``"v1"``, ``"v2"``, ``"sim"``, ``"gpt"``): its
            :data:`~roformer_core.variants.VARIANT_FIELDS` (and V1's values of the other family fields) go into the
            written config, so the result loads with no overrides; a variant the weights contradict is an error.
            None keeps the source config's fields (an original checkpoint: V1 or V2, detected from its variables).

    Raises:
        ConversionError: with a one-line reason (missing source, no weights, corrupt file, shape mismatch, unknown
            parameters, existing destination, ...).
    """
    src, dst = Path(src), Path(dst)
    if to not in TARGETS:
        raise ConversionError(f"unknown target {to!r}; choose one of {', '.join(TARGETS)}")
    if dtype is not None and dtype not in DTYPES:
        raise ConversionError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if to != "pt" and (max_shard_size or pytorch_bin):
        raise ConversionError("--max-shard-size and --pytorch-bin apply to --to pt only")
    if pytorch_bin and max_shard_size:
        raise ConversionError("--max-shard-size shards safetensors; it cannot be combined with --pytorch-bin")
    if to == "original" and dtype is not None:
        raise ConversionError("--dtype applies to --to pt, tf and flax; an original checkpoint keeps the stored dtype")
    if variant is not None and variant not in VARIANT_FIELDS:
        raise ConversionError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANT_FIELDS)}")
    if dst.exists() and not force:
        raise ConversionError(f"destination {dst} exists; pass --force to replace it")
    label = src.name
    try:
        src = resolve_checkpoint(src, files="all")
    except OSError as err:
        raise ConversionError(_one_line(err)) from None
    if dst.resolve() == src.resolve():
        raise ConversionError("source and destination are the same directory")
    source_format, _ = detect_source(src)
    dropped: list[str] = []
    try:
        if source_format.startswith("original"):
            original = read_original_checkpoint(src, variant)
            config, state, dropped, variant = original.config, original.state, original.dropped, original.variant
        else:
            config, state = load_checkpoint(src)
            if variant is not None:
                check_variant(variant, infer_variant_fields(state), str(src))
                config = config.copy(**{**FAMILY_DEFAULTS, **VARIANT_FIELDS[variant]})
    except (ValueError, OSError, ImportError) as err:
        raise ConversionError(_one_line(err)) from None
    head = infer_head(config, state)
    if variant is not None and head.name in ("masked_lm", "causal_lm"):  # the member says which LM it is
        head = get_head("causal_lm" if config.is_decoder else "masked_lm")
    head.adapt_config(config)
    schema = model_schema(config, head)
    try:
        arrays = check_state_dict(schema, state, source=str(src))
    except ValueError as err:
        raise ConversionError(_one_line(err)) from None
    table = next((spec.name for spec in schema if spec.kind == ROTARY_TABLE), None)
    target = _Target(config, arrays, table)
    # what the target's writer stores (the reference TF layout keeps the rotary table, Flax's does not)
    stored = {
        "pt": [spec for spec in schema if spec.stored],
        "tf": tf_h5_specs(schema),
        "flax": flax_msgpack_specs(schema),
        "original": [spec for spec in schema if spec.stored and spec.kind != ROTARY_TABLE],
    }[to]
    config = config.copy()
    config.extra["architectures"] = [head.class_name]
    if dtype is not None:
        config.extra["torch_dtype"] = dtype

    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent))
    bar = _progress_bar(len(stored), f"{label} -> {to}", enabled=progress)
    try:
        if to == "pt" and pytorch_bin:
            _write_pytorch_bin(staging / PT_WEIGHTS_NAME, stored, target, dtype, bar)
        elif to == "pt":
            _write_safetensors_shards(staging, stored, target, dtype, max_shard_size, bar)
        elif to == "tf":
            write_tf_h5(staging / TF_WEIGHTS_NAME, schema, head, target, dtype=dtype, progress=bar)
        elif to == "flax":
            write_flax_msgpack(staging / FLAX_WEIGHTS_NAME, schema, target, dtype=dtype, progress=bar)
        else:
            write_original_checkpoint(staging, config, schema, target, progress=bar)
        if to != "original":
            config.save_pretrained(staging)
        for name in TOKENIZER_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, staging / name)
        _replace_directory(staging, dst)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, ValueError):
            raise ConversionError(_one_line(err)) from None
        raise
    finally:
        bar.close()
    return ConversionReport(source_format, head.class_name, to, dst, len(stored), dropped, variant)


def _write_safetensors_shards(
    directory: Path, stored: list, target: _Target, dtype: str | None, max_shard_size: int | None, bar
) -> None:
    """``model.safetensors``, or shards ``model-0000i-of-0000n.safetensors`` + index when over ``max_shard_size``."""
    # check_state_dict guaranteed every array has its spec's shape; the regenerated rotary table is float32
    shapes = {spec.name: (spec.shape, target.dtype_name(spec.name)) for spec in stored}

    def nbytes(name: str) -> int:
        shape, dtype_name = shapes[name]
        return stored_nbytes(shape, stored_code(name, dtype_name, dtype))

    shards: list[list[str]] = [[]]
    used = 0
    for spec in stored:
        size = nbytes(spec.name)
        if max_shard_size and shards[-1] and used + size > max_shard_size:
            shards.append([])
            used = 0
        shards[-1].append(spec.name)
        used += size
    names = (
        [SAFE_WEIGHTS_NAME]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    for file_name, members in zip(names, shards):
        loaders = [(name, lambda name=name: target[name]) for name in members]
        shard_shapes = {name: shapes[name] for name in members}
        write_safetensors(directory / file_name, loaders, PT_METADATA, dtype=dtype, shapes=shard_shapes, progress=bar)
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(nbytes(n) for n in shapes)},
            "weight_map": {name: file_name for file_name, members in zip(names, shards) for name in members},
        }
        atomic_write_text(directory / SAFE_WEIGHTS_INDEX_NAME, json.dumps(index, indent=2, sort_keys=True) + "\n")


def _write_pytorch_bin(path: Path, stored: list, target: _Target, dtype: str | None, bar) -> None:
    """``pytorch_model.bin`` via ``torch.save`` (zip format, readable with ``weights_only=True``)."""
    try:
        import torch
    except ImportError:
        raise ConversionError("writing pytorch_model.bin needs PyTorch: pip install 'roformer-tri[torch]'") from None
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
    state = {}
    for spec in stored:
        tensor = torch.from_numpy(np.array(target[spec.name]))
        state[spec.name] = tensor.to(torch_dtype) if torch_dtype and tensor.is_floating_point() else tensor
        bar(spec.name)
    atomic_write_with(path, lambda tmp: torch.save(state, tmp))


def _replace_directory(staging: Path, dst: Path) -> None:
    """Move the finished ``staging`` directory to ``dst``, replacing an existing one only at the last moment."""
    if not dst.exists():
        os.replace(staging, dst)
        return
    old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
    os.replace(dst, old)
    try:
        os.replace(staging, dst)
    except OSError:
        os.replace(old, dst)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    if len(lines) <= 1:
        return lines[0] if lines else type(err).__name__
    head, details = lines[0].rstrip(":"), [line.strip() for line in lines[1:]]
    shown = "; ".join(details[:8]) + (f"; ... ({len(details) - 8} more)" if len(details) > 8 else "")
    return f"{head}: {shown}"


class _NoBar:
    def __call__(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, description: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    bar = tqdm(total=total, desc=description, unit="tensor", leave=False)

    class _Bar:
        def __call__(self, name: str) -> None:
            bar.update(1)

        def close(self) -> None:
            bar.close()

    return _Bar()
