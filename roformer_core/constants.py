"""Numeric constants the ports must share (never a framework's own default)."""

from __future__ import annotations

import numpy as np

#: Largest finite negative value per float dtype name: the additive bias for masked attention scores, as in the
#: reference PyTorch model (``finfo(dtype).min``; not the -10000 of the reference's TF port).
_MASK_FILL = {
    "float64": float(np.finfo(np.float64).min),
    "float32": float(np.finfo(np.float32).min),
    "float16": float(np.finfo(np.float16).min),
    "bfloat16": -3.3895313892515355e38,
}


def mask_fill_value(dtype_name: str) -> float:
    """The additive attention-mask bias for a float dtype (``"float32"``, ``"bfloat16"``, ...)."""
    name = str(dtype_name).rsplit(".", 1)[-1]
    try:
        return _MASK_FILL[name]
    except KeyError:
        raise ValueError(f"no mask fill value for dtype {dtype_name!r}") from None
