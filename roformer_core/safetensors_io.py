"""safetensors files read by memory map and written tensor by tensor, in numpy only.

Reading maps the file and returns array views, so a tensor's bytes are paged in only when used; writing streams
one tensor at a time into a temporary file that is renamed into place, so memory stays at about one tensor and a
crash never leaves a partial file. bfloat16 is handled without ml_dtypes: it is read as float32 and written from
float32 with round-to-nearest-even.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from .io import atomic_path

_NUMPY = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_CODES = {np.dtype(v): k for k, v in _NUMPY.items()}
_MAX_HEADER = 100 * 2**20
_CAST_CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
# the metadata the reference writes and expects
PT_METADATA = {"format": "pt"}


def _itemsize(code: str) -> int:
    return 2 if code == "BF16" else np.dtype(_NUMPY[code]).itemsize


def stored_code(name: str, dtype_name: str, cast: str | None = None) -> str:
    """The safetensors dtype code tensor ``name`` of numpy dtype ``dtype_name`` is written as (floating tensors
    cast to ``cast``, ``"float32"``/``"float16"``/``"bfloat16"``, when given)."""
    src = np.dtype(dtype_name)
    if cast is not None and src.kind == "f":
        return _CAST_CODES[cast]
    if src in _CODES:
        return _CODES[src]
    raise ValueError(f"tensor {name!r} has dtype {src} that safetensors cannot hold")


def stored_nbytes(shape: tuple[int, ...], code: str) -> int:
    """Bytes a tensor of ``shape`` takes in a safetensors file as dtype ``code``."""
    return int(np.prod(shape, dtype=np.int64)) * _itemsize(code)


class SafetensorsError(ValueError):
    """A safetensors file is truncated or malformed."""


def bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even; NaN stays NaN."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), rounded)


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32 (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Map a safetensors file; return name -> array (read-only views; bfloat16 tensors converted to float32).

    Raises:
        SafetensorsError: naming the file and what is wrong with it.
    """
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            raw = handle.read(8)
            if len(raw) < 8:
                raise SafetensorsError("file shorter than its 8-byte header length")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(_MAX_HEADER, size - 8):
                raise SafetensorsError(f"header length {header_len} exceeds the file size {size}")
            header = json.loads(handle.read(header_len).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SafetensorsError(f"header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    header.pop("__metadata__", None)
    data_start = 8 + header_len
    data_len = size - data_start
    mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=(data_len,)) if data_len else None
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        try:
            code, shape, (begin, end) = info["dtype"], [int(n) for n in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"tensor {name!r} has a malformed entry {info!r}") from None
        if code != "BF16" and code not in _NUMPY:
            raise SafetensorsError(f"tensor {name!r} has unsupported dtype {code}")
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= data_len or end - begin != stored_nbytes(shape, code):
            raise SafetensorsError(f"tensor {name!r} data [{begin}, {end}) does not fit the file (truncated?)")
        if count == 0:
            out[name] = np.zeros(shape, dtype=np.float32 if code == "BF16" else _NUMPY[code])
            continue
        chunk = mapped[begin:end]
        if code == "BF16":
            out[name] = bfloat16_to_float32(chunk.view(np.uint16)).reshape(shape)
        else:
            out[name] = chunk.view(_NUMPY[code]).reshape(shape)
    return out


def write_safetensors(
    path: str | os.PathLike,
    tensors: Mapping[str, np.ndarray] | Iterable[tuple[str, Callable[[], np.ndarray]]],
    metadata: Mapping[str, str] | None = None,
    dtype: str | None = None,
    shapes: Mapping[str, tuple[tuple[int, ...], str]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Write tensors to a safetensors file, one at a time, atomically.

    Args:
        path: destination.
        tensors: name -> array; or ``(name, loader)`` pairs with ``shapes`` giving each name's shape and numpy
            dtype name, so arrays are produced only while they are written.
        metadata: string metadata (:data:`PT_METADATA` is what the reference expects).
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` to cast floating tensors; None keeps them.
        progress: called with each name after it is written.
    """
    if isinstance(tensors, Mapping):
        source = {name: (lambda name=name: tensors[name]) for name in tensors}
        shapes = {name: (tuple(np.shape(a)), np.asarray(a).dtype.name) for name, a in tensors.items()}
    else:
        source = dict(tensors)
        if shapes is None:
            raise ValueError("shapes are required when tensors are given as loaders")
    header: dict[str, dict] = {}
    offset = 0
    plan = []
    for name in source:
        shape, dtype_name = shapes[name]
        code = stored_code(name, dtype_name, dtype)
        nbytes = stored_nbytes(shape, code)
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        plan.append((name, code, shape))
        offset += nbytes
    if metadata:
        header["__metadata__"] = dict(metadata)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for name, code, shape in plan:
            array = np.asarray(source[name]())
            if tuple(array.shape) != tuple(shape):
                raise ValueError(f"tensor {name!r} has shape {array.shape}, announced {tuple(shape)}")
            if code == "BF16":
                data = bfloat16_bits(array.astype(np.float32, copy=False))
            else:
                data = np.ascontiguousarray(array, dtype=_NUMPY[code])
            out.write(data.tobytes(order="C"))
            if progress is not None:
                progress(name)
