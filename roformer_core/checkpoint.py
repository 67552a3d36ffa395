"""Reading and writing checkpoint directories as canonical ``dict[str, np.ndarray]``.

A checkpoint directory holds ``config.json`` and one of, in order of preference: ``model.safetensors``; sharded
safetensors with ``model.safetensors.index.json``; ``pytorch_model.bin`` (or its sharded index), read with
torch's ``weights_only=True`` unpickler, which never runs pickled code; the reference's TensorFlow
``tf_model.h5``; the reference's Flax ``flax_model.msgpack`` (see :mod:`roformer_core.formats`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .config import CONFIG_NAME, RoFormerConfig
from .errors import CheckpointError
from .formats import FLAX_WEIGHTS_NAME, TF_WEIGHTS_NAME, read_flax_msgpack, read_tf_h5
from .hub import pop_hub_kwargs, resolve_checkpoint
from .io import check_not_a_file
from .known_checkpoints import known_overrides
from .safetensors_io import PT_METADATA, SafetensorsError, read_safetensors
from .safetensors_io import write_safetensors as _write_safetensors
from .schema import infer_variant_fields

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"
PT_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
_WEIGHT_FILES = (
    SAFE_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    PT_WEIGHTS_NAME,
    PT_WEIGHTS_INDEX_NAME,
    TF_WEIGHTS_NAME,
    FLAX_WEIGHTS_NAME,
)
#: The frameworks whose own reference weights file comes before ``pytorch_model.bin`` (no torch needed to read it).
_NATIVE_WEIGHTS = {"pt": PT_WEIGHTS_NAME, "tf": TF_WEIGHTS_NAME, "flax": FLAX_WEIGHTS_NAME}


def weights_order(framework: str | None = None) -> tuple[str, ...]:
    """Weights file names, most preferred first: safetensors (one file, then sharded), the framework's own reference
    file (``tf_model.h5`` for ``"tf"``, ``flax_model.msgpack`` for ``"flax"``), ``pytorch_model.bin`` (one file,
    then sharded), the rest. A directory is read from the first it holds; a hub repository downloads the first it
    has, and only that one.

    Raises:
        ValueError: ``framework`` is not None, ``"pt"``, ``"tf"`` or ``"flax"``.
    """
    if framework is not None and framework not in _NATIVE_WEIGHTS:
        raise ValueError(f"framework must be one of {', '.join(_NATIVE_WEIGHTS)} or None, got {framework!r}")
    first = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, _NATIVE_WEIGHTS.get(framework, PT_WEIGHTS_NAME))
    return tuple(dict.fromkeys(first + _WEIGHT_FILES))


def find_weights(directory: str | os.PathLike, framework: str | None = None) -> Path:
    """The weights file of a checkpoint directory, the first of :func:`weights_order` it holds.

    Raises:
        FileNotFoundError: the directory does not exist or holds no weights file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    order = weights_order(framework)
    for name in order:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no weights in {directory}: expected one of {', '.join(order)}")


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        return read_safetensors(path)
    except (SafetensorsError, OSError) as err:
        raise CheckpointError(f"cannot read safetensors file {path}: {err}") from None


def _read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading {path.name} needs PyTorch: pip install 'roformer-tri[torch]' (or convert it to "
            "model.safetensors with roformer-convert on a machine that has it)"
        ) from None
    try:
        try:  # zip-format files are memory-mapped; legacy (pre-1.6) files cannot be
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise CheckpointError(f"cannot read PyTorch weights {path}: {type(err).__name__}: {err}") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(state).__name__})")
    out = {}
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(tensor).__name__}, not a tensor")
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        out[key] = tensor.detach().cpu().numpy()
    return out


def _read_index(path: Path) -> dict[str, np.ndarray]:
    try:
        weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not a valid shard index: {err!r}") from None
    out: dict[str, np.ndarray] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = path.parent / shard
        if not shard_path.is_file():
            raise CheckpointError(f"shard {shard} listed in {path.name} is missing from {path.parent}")
        out.update(read_weights_file(shard_path))
    missing = sorted(set(weight_map) - set(out))
    if missing:
        raise CheckpointError(f"{path.name} lists tensors no shard holds: {', '.join(missing[:10])}")
    return out


def read_weights_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read one weights file (``.safetensors``, ``.bin``, a shard ``.index.json``, ``.h5`` or ``.msgpack``) into
    canonical numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if path.name.endswith(".index.json"):
        return _read_index(path)
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    if path.suffix in (".bin", ".pt", ".pth"):
        return _read_torch_bin(path)
    if path.suffix == ".h5":
        return read_tf_h5(path)
    if path.suffix == ".msgpack":
        return read_flax_msgpack(path)
    raise CheckpointError(f"unknown weights format: {path}")


#: The key under which a PyTorch model's ``state_dict()`` carries its config (``nn.Module.get_extra_state`` of the
#: top module): the ``config.json`` text as a uint8 tensor. Weights-only saves -- ``transformers.Trainer.save_model``
#: and accelerate's ``save_model`` write just the state dict of a model that is not a ``transformers.PreTrainedModel``
#: -- then still reload with ``from_pretrained(directory)``.
CONFIG_STATE_KEY = "_extra_state"


def config_state(config: RoFormerConfig) -> np.ndarray:
    """``config`` as the uint8 array stored under :data:`CONFIG_STATE_KEY` (the UTF-8 ``config.json`` text)."""
    return np.frombuffer(config.to_json_string().encode("utf-8"), dtype=np.uint8).copy()


def pop_config_state(state: dict[str, np.ndarray], **config_overrides: Any) -> RoFormerConfig | None:
    """Remove :data:`CONFIG_STATE_KEY` from a state dict read from a file; return the config it holds (with
    overrides applied), or None when there is none."""
    stored = state.pop(CONFIG_STATE_KEY, None)
    if stored is None:
        return None
    try:
        values = json.loads(np.asarray(stored, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as err:
        raise CheckpointError(f"the config stored under {CONFIG_STATE_KEY!r} is not valid JSON: {err}") from None
    return RoFormerConfig.from_dict(values, **config_overrides)


def load_checkpoint(
    name_or_path: str | os.PathLike,
    config: RoFormerConfig | None = None,
    *,
    framework: str | None = None,
    **config_overrides: Any,
) -> tuple[RoFormerConfig, dict[str, np.ndarray]]:
    """Read the config and the weights of a checkpoint directory or hub id (:mod:`roformer_core.hub`).

    The config is ``config`` when given, else ``config.json`` (plus the fields a released checkpoint's id needs,
    :data:`~roformer_core.known_checkpoints.KNOWN_CHECKPOINTS`; ``config_overrides`` win), else the one a PyTorch
    state dict carries under :data:`CONFIG_STATE_KEY` (weights-only directories written by ``transformers.Trainer``
    or accelerate).

    Args:
        name_or_path: a checkpoint directory or a hub id.
        config: use this config instead of the checkpoint's.
        framework: ``"pt"``, ``"tf"``, ``"flax"`` or None: which weights file is read (:func:`weights_order`).
        **config_overrides: config fields to change, plus the :data:`~roformer_core.hub.HUB_KWARGS`
            (``revision``, ``cache_dir``, ``local_files_only``, ``token``, ``force_download``) for a hub id.

    Returns:
        the config (with overrides applied) and the canonical state dict as it is stored.
    """
    hub_kwargs = pop_hub_kwargs(config_overrides)
    directory = resolve_checkpoint(name_or_path, framework=framework, **hub_kwargs)
    if config is None:
        config_overrides = {**known_overrides(name_or_path), **config_overrides}
    check_not_a_file(directory)
    # the directory and its config first (the clearer message when both config and weights are missing)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    has_config_file = (directory / CONFIG_NAME).is_file()
    if config is None and not has_config_file and not any((directory / name).is_file() for name in _WEIGHT_FILES):
        raise FileNotFoundError(f"no {CONFIG_NAME} in checkpoint directory {directory}")
    state = read_weights_file(find_weights(directory, framework))
    stored = pop_config_state(state, **config_overrides)
    if config is not None:
        return (config.copy(**config_overrides) if config_overrides else config), state
    if has_config_file:
        config = RoFormerConfig.from_pretrained(directory, **config_overrides)
    elif stored is None:
        raise FileNotFoundError(
            f"no {CONFIG_NAME} in checkpoint directory {directory}, and its weights do not carry a config: pass "
            "config=, or save with save_pretrained()"
        )
    else:
        config = stored
    # a checkpoint with pooler weights gets its pooler without being asked (JunnYu's Sim config.json does not say
    # it has one); an explicit add_pooling_layer wins
    if "add_pooling_layer" not in config_overrides and infer_variant_fields(state).get("add_pooling_layer"):
        config.add_pooling_layer = True
    return config, state


def write_safetensors(path: str | os.PathLike, state: Mapping[str, np.ndarray], dtype: str | None = None) -> None:
    """Write arrays to a safetensors file atomically, tensor by tensor, with the ``format: pt`` metadata the
    reference expects; ``dtype`` optionally casts floating tensors (``float16``, ``bfloat16``, ``float32``)."""
    _write_safetensors(path, state, metadata=PT_METADATA, dtype=dtype)


def save_checkpoint(directory: str | os.PathLike, config: RoFormerConfig, state: Mapping[str, np.ndarray]) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (each atomically) into ``directory``; return it."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    write_safetensors(directory / SAFE_WEIGHTS_NAME, state)
    config.save_pretrained(directory)
    return directory
