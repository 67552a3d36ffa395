"""The reference's TensorFlow (``tf_model.h5``) and Flax (``flax_model.msgpack``) weight layouts.

Both are translations of the canonical names (see :mod:`roformer_core.schema`), by rule:

=====================================  ==========================================  ===============================
canonical (PyTorch)                    TensorFlow (Keras 2 h5)                     Flax
=====================================  ==========================================  ===============================
``roformer.`` prefix / bare model      ``roformer/`` (always)                      ``roformer`` / none
``encoder.layer.3.``                   ``encoder/layer_._3/``                      ``encoder/layer/3/``
``cls.``                               ``mlm___cls/``                              ``cls/``
Linear ``.weight`` ``[out, in]``       ``/kernel:0`` ``[in, out]``                 ``/kernel`` ``[in, out]``
``word_embeddings.weight``             ``word_embeddings/weight:0``                ``word_embeddings/embedding``
other embeddings ``.weight``           ``.../embeddings:0``                        ``.../embedding``
LayerNorm ``.weight`` / ``.bias``      ``/gamma:0`` / ``/beta:0``                  ``/scale`` / ``/bias``
rotary table                           ``encoder/embed_positions/embeddings:0``    (not stored)
``cls.predictions.decoder.*``          (not stored: always tied)                   ``cls/predictions/decoder/kernel``
                                                                                   only when untied
=====================================  ==========================================  ===============================

In ``tf_model.h5`` the top-level groups are the model's direct sub-layers; each dataset sits at
``<group>/<model scope>/<name>`` and each group lists its datasets in the ``weight_names`` attribute. The LM-head
group also holds copies of the embedding variables, as the reference writes them. Readers need only h5py or
msgpack, never TensorFlow or Flax.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .heads import BASE_PREFIX, HeadSpec
from .io import atomic_path, atomic_write_with
from .safetensors_io import bfloat16_bits
from .schema import EMBEDDING, LINEAR, NORM_BIAS, NORM_WEIGHT, ROTARY_TABLE, ParamSpec, head_owned

TF_WEIGHTS_NAME = "tf_model.h5"
FLAX_WEIGHTS_NAME = "flax_model.msgpack"
_LM_HEAD_GROUP = "mlm___cls"

# ---- TensorFlow --------------------------------------------------------------------------------------------------


def _split(spec_name: str) -> tuple[str, str]:
    """``"a.b.weight"`` -> (``"a.b"``, ``"weight"``)."""
    module, _, leaf = spec_name.rpartition(".")
    return module, leaf


def tf_weight_name(spec: ParamSpec) -> str | None:
    """The reference TF name (without model scope) of a canonical parameter, or None if TF does not store it."""
    if spec.name.startswith("cls.predictions.decoder."):
        return None
    module, leaf = _split(spec.name.removeprefix(BASE_PREFIX))
    if module.startswith("cls."):
        module = _LM_HEAD_GROUP + module[3:]
    elif not head_owned(spec.name):
        module = "roformer." + module
    module = re.sub(r"/layer/(\d+)", r"/layer_._\1", module.replace(".", "/"))
    if spec.kind == LINEAR:
        leaf = "kernel"
    elif spec.kind == ROTARY_TABLE or (spec.kind == EMBEDDING and not module.endswith("word_embeddings")):
        leaf = "embeddings"
    elif spec.kind == NORM_WEIGHT:
        leaf = "gamma"
    elif spec.kind == NORM_BIAS:
        leaf = "beta"
    return f"{module}/{leaf}:0"


def tf_h5_specs(schema: list[ParamSpec]) -> list[ParamSpec]:
    """The parameters a ``tf_model.h5`` holds (each once, whatever copies the layout adds), in schema order."""
    return [spec for spec in schema if spec.stored and tf_weight_name(spec) is not None]


def tf_to_canonical(name: str, bare: bool) -> tuple[str, bool]:
    """Translate a reference TF weight name (model scope already dropped) to ``(canonical name, transpose)``."""
    name = name.removesuffix(":0")
    parts = name.split("/")
    if parts[0] == _LM_HEAD_GROUP:
        parts[0] = "cls"
    elif parts[0] == "roformer" and bare:
        parts = parts[1:]
    module = ".".join(parts[:-1])
    module = re.sub(r"layer_\._(\d+)", r"layer.\1", module)
    leaf = parts[-1]
    transpose = leaf == "kernel"
    leaf = {"kernel": "weight", "gamma": "weight", "beta": "bias", "embeddings": "weight"}.get(leaf, leaf)
    return f"{module}.{leaf}", transpose


def read_tf_h5(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the reference's ``tf_model.h5`` into canonical arrays.

    Copies of the same variable in several groups are read once; the model scope is ignored, so a file saved
    from any head class reads. A file with only the ``roformer`` group is a bare model (no ``roformer.`` prefix).
    """
    try:
        import h5py
    except ImportError:
        raise ImportError(f"reading {Path(path).name} needs h5py: pip install h5py") from None

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise CheckpointError(f"cannot read HDF5 file {path}: {err}") from None
    out: dict[str, np.ndarray] = {}
    with handle:
        groups = [g.decode() if isinstance(g, bytes) else str(g) for g in handle.attrs.get("layer_names", [])]
        if not groups:
            raise CheckpointError(f"{path} has no 'layer_names': not a Keras h5 weights file")
        bare = groups == ["roformer"]
        for group in groups:
            names = handle[group].attrs.get("weight_names", [])
            for full in names:
                full = full.decode() if isinstance(full, bytes) else str(full)
                scoped = full.split("/", 1)[1] if "/" in full else full
                canonical, transpose = tf_to_canonical(scoped, bare)
                if canonical in out:
                    continue
                try:
                    array = np.asarray(handle[group][full])
                except KeyError:
                    raise CheckpointError(f"{path}: group {group} lists {full} but has no such dataset") from None
                out[canonical] = array.T if transpose else array
    return out


def _tf_scope(head: HeadSpec) -> str:
    """The Keras model scope the reference uses, e.g. ``tf_ro_former_for_masked_lm``."""
    return "tf_ro_former_" + re.sub(r"(?<!^)(?=[A-Z])", "_", head.class_suffix).lower().replace("l_m", "lm")


def _cast(array: np.ndarray, dtype: str | None) -> np.ndarray:
    array = np.asarray(array)
    if dtype is None or array.dtype.kind != "f":
        return array
    return array.astype(dtype, copy=False)


def write_tf_h5(
    path: str | os.PathLike,
    schema: list[ParamSpec],
    head: HeadSpec,
    state: Mapping[str, np.ndarray],
    dtype: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Write canonical arrays in the reference's ``tf_model.h5`` layout, one tensor at a time, atomically.

    Args:
        dtype: ``"float32"`` or ``"float16"`` to cast floating tensors (HDF5 has no bfloat16).
        progress: called with each canonical name once written.

    Raises:
        ValueError: an untied LM decoder (the reference TF layout always ties it) or ``dtype="bfloat16"``.
    """
    import h5py

    if dtype == "bfloat16":
        raise ValueError("tf_model.h5 cannot hold bfloat16 (HDF5 has no such type): use float16 or float32")
    by_name = {spec.name: spec for spec in schema}
    decoder = by_name.get("cls.predictions.decoder.weight")
    if decoder is not None and decoder.stored:
        raise ValueError(
            "the reference tf_model.h5 layout always ties the LM decoder: tie_word_embeddings=False can't be written"
        )
    scope = _tf_scope(head)
    groups: dict[str, list[tuple[str, ParamSpec]]] = {}
    embedding_copies: list[tuple[str, ParamSpec]] = []
    for spec in tf_h5_specs(schema):
        tf_name = tf_weight_name(spec)
        group = tf_name.split("/", 1)[0]
        groups.setdefault(group, []).append((f"{scope}/{tf_name}", spec))
        if group == "roformer" and "/embeddings/" in tf_name:
            embedding_copies.append((f"{scope}/{tf_name}", spec))
    if "cls.predictions.decoder.weight" in by_name:
        # every LM head's group, RoFormer-V2's too (it has no parameter of its own), so that readers see an LM head
        groups.setdefault(_LM_HEAD_GROUP, []).extend(embedding_copies)

    reported: set[str] = set()

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["backend"] = "tensorflow"
            handle.attrs["keras_version"] = "2.21.0"
            handle.attrs["layer_names"] = [g.encode() for g in groups]
            for group, items in groups.items():
                g = handle.create_group(group)
                g.attrs["weight_names"] = [n.encode() for n, _ in items]
                for name, spec in items:
                    array = _cast(state[spec.name], dtype)
                    g.create_dataset(name, data=array.T if spec.kind == LINEAR else array)
                    if progress is not None and spec.name not in reported:
                        reported.add(spec.name)
                        progress(spec.name)

    atomic_write_with(path, write)


# ---- Flax --------------------------------------------------------------------------------------------------------


def flax_param_path(spec: ParamSpec) -> tuple[str, ...] | None:
    """The Flax parameter-tree path of a canonical parameter, or None when Flax does not store it."""
    if spec.kind == ROTARY_TABLE or not spec.stored:
        return None
    module, leaf = _split(spec.name)
    parts = module.split(".")
    if spec.kind == LINEAR:
        leaf = "kernel"
    elif spec.kind == EMBEDDING:
        leaf = "embedding"
    elif spec.kind == NORM_WEIGHT:
        leaf = "scale"
    return (*parts, leaf)


def flax_msgpack_specs(schema: list[ParamSpec]) -> list[ParamSpec]:
    """The parameters a ``flax_model.msgpack`` holds, in schema order."""
    return [spec for spec in schema if flax_param_path(spec) is not None]


def flax_to_canonical(path: tuple[str, ...]) -> tuple[str, bool]:
    """Translate a Flax parameter path to ``(canonical name, transpose)``."""
    *module, leaf = path
    transpose = leaf == "kernel"
    leaf = {"kernel": "weight", "embedding": "weight", "scale": "weight"}.get(leaf, leaf)
    return ".".join([*module, leaf]), transpose


def _msgpack_ext_hook(code: int, data: bytes):
    import msgpack

    if code in (1, 3):  # ndarray, numpy scalar: (shape, dtype name, C-order bytes)
        shape, dtype, buffer = msgpack.unpackb(data)
        return np.frombuffer(buffer, dtype=np.dtype(dtype)).reshape(shape)
    raise ValueError(f"unsupported msgpack extension type {code}")


def _unchunk(tree):
    if isinstance(tree, dict):
        if tree.get("__msgpack_chunked_array__"):
            chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
            return np.concatenate([c.reshape(-1) for c in chunks]).reshape(tree["shape"])
        return {k: _unchunk(v) for k, v in tree.items()}
    return tree


def _flatten(tree, prefix: tuple[str, ...] = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, (*prefix, str(key)))
        else:
            yield (*prefix, str(key)), value


def read_flax_msgpack(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``flax_model.msgpack`` (``flax.serialization.to_bytes`` of the params) into canonical arrays."""
    try:
        import msgpack
    except ImportError:
        raise ImportError(f"reading {Path(path).name} needs msgpack: pip install msgpack") from None

    try:
        tree = msgpack.unpackb(Path(path).read_bytes(), ext_hook=_msgpack_ext_hook, raw=False, strict_map_key=False)
    except Exception as err:  # msgpack raises several types for truncated data
        raise CheckpointError(f"cannot read msgpack file {path}: {type(err).__name__}: {err}") from None
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path} does not hold a parameter tree")
    tree = _unchunk(tree.get("params", tree))
    out = {}
    for flat_path, value in _flatten(tree):
        canonical, transpose = flax_to_canonical(flat_path)
        array = np.asarray(value)
        out[canonical] = array.T if transpose else array
    return out


def write_flax_msgpack(
    path: str | os.PathLike,
    schema: list[ParamSpec],
    state: Mapping[str, np.ndarray],
    dtype: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Write canonical arrays as the reference's ``flax_model.msgpack``, streamed tensor by tensor, atomically.

    The file is what ``flax.serialization.to_bytes(params)`` writes: a msgpack map tree whose leaves are
    extension type 1 ``(shape, dtype name, C-order bytes)``.

    Args:
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` to cast floating tensors.
        progress: called with each canonical name once written.
    """
    import msgpack

    tree: dict = {}
    for spec in flax_msgpack_specs(schema):
        flax_path = flax_param_path(spec)
        node = tree
        for part in flax_path[:-1]:
            node = node.setdefault(part, {})
        node[flax_path[-1]] = spec
    packer = msgpack.Packer(use_bin_type=True)

    def leaf(spec: ParamSpec) -> bytes:
        array = np.asarray(state[spec.name])
        if spec.kind == LINEAR:
            array = array.T
        if dtype == "bfloat16" and array.dtype.kind == "f":
            data, name = bfloat16_bits(array), "bfloat16"
        else:
            array = _cast(array, dtype)
            data, name = np.ascontiguousarray(array), array.dtype.name
        payload = msgpack.packb((list(array.shape), name, data.tobytes("C")), use_bin_type=True)
        if progress is not None:
            progress(spec.name)
        return packer.pack(msgpack.ExtType(1, payload))

    def emit(node: dict, out) -> None:
        out.write(packer.pack_map_header(len(node)))
        for key, value in node.items():
            out.write(packer.pack(key))
            if isinstance(value, dict):
                emit(value, out)
            else:
                out.write(leaf(value))

    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        emit(tree, out)
