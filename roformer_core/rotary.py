"""Rotary position embeddings, RoFormer layout: the one place the math is written down.

The table
    One table per model, shared by every layer and head, of width ``D = hidden_size // num_attention_heads``.
    Row ``m`` (the absolute position) holds ``D/2`` sines then ``D/2`` cosines of the angles
    ``m * theta_i``, ``theta_i = 10000 ** (-2 i / D)``, ``i = 0 .. D/2 - 1``::

        table[m] = [sin(m θ_0), ..., sin(m θ_{D/2-1}), cos(m θ_0), ..., cos(m θ_{D/2-1})]

    Angles are computed in float64 (as ``m / 10000 ** (2 i / D)``, the reference's expression, so the float32
    table is bit-identical to the reference's) and only then cast. The table is not learned, so any length can
    be computed: a sequence longer than ``max_position_embeddings`` simply uses more rows, exactly the rows a
    config with a larger ``max_position_embeddings`` would hold.

The rotation (interleaved pairs, GPT-J style; *not* the split-halves "rotate_half" of GPT-NeoX / LLaMA)
    Features are grouped in adjacent pairs ``(x[2i], x[2i+1])`` and pair ``i`` is rotated by angle ``m θ_i``::

        out[2i]   = x[2i]   * cos(m θ_i) - x[2i+1] * sin(m θ_i)
        out[2i+1] = x[2i+1] * cos(m θ_i) + x[2i]   * sin(m θ_i)

    i.e. ``out = x * cos_pos + rotate_pairs(x) * sin_pos`` with ``rotate_pairs(x) = [-x1, x0, -x3, x2, ...]`` and
    ``sin_pos = [s0, s0, s1, s1, ...]`` (each sine repeated in place), ``cos_pos`` likewise.

    Worked example, D = 4, position m = 1, x = [1, 2, 3, 4]: θ = [1, 10000^-0.5 = 0.01];
    sin_pos = [sin 1, sin 1, sin .01, sin .01], cos_pos = [cos 1, cos 1, cos .01, cos .01];
    rotate_pairs(x) = [-2, 1, -4, 3]; out = [1 cos 1 - 2 sin 1, 2 cos 1 + sin 1, 3 cos .01 - 4 sin .01,
    4 cos .01 + 3 sin .01] = [-1.1426, 1.9221, 2.9598, 4.0298].

Where it is applied
    In self-attention only, to queries and keys (and values when ``rotary_value``), after the projections and
    the split into heads and before the scores and before keys/values are cached. Positions are
    ``past_length .. past_length + L - 1``; padding does not shift them. Cross-attention has no rotary.
"""

from __future__ import annotations

import numpy as np

#: Base of the rotary frequencies.
ROTARY_BASE = 10000.0


def rotary_denominators(dim: int) -> np.ndarray:
    """``10000 ** (2 i / dim)`` for ``i < dim // 2``: an angle is ``m / denominator`` (a division, as the
    reference computes it; multiplying by the reciprocal differs in float32 from position ~10^4 on).

    Returns:
        float64 array ``[dim // 2]``.
    """
    if dim <= 0 or dim % 2:
        raise ValueError(f"rotary dimension must be a positive even number, got {dim}")
    return np.power(ROTARY_BASE, 2.0 * np.arange(dim // 2, dtype=np.float64) / dim)


def rotary_angles(length: int, dim: int, offset: int = 0) -> np.ndarray:
    """Angles ``m * theta_i`` for positions ``offset .. offset + length - 1``.

    Returns:
        float64 array ``[length, dim // 2]``.
    """
    denominators = rotary_denominators(dim)
    if length < 0 or offset < 0:
        raise ValueError(f"length and offset must be >= 0, got length={length}, offset={offset}")
    positions = np.arange(offset, offset + length, dtype=np.float64)[:, None]
    return positions / denominators[None, :]


def sinusoidal_table(length: int, dim: int, dtype: np.dtype | type = np.float32, offset: int = 0) -> np.ndarray:
    """The RoFormer sin/cos table rows ``offset .. offset + length - 1``.

    Args:
        length: number of positions (rows); may exceed ``max_position_embeddings``.
        dim: head width ``D`` (even).
        dtype: dtype of the result; computed in float64, then cast.
        offset: first position.

    Returns:
        ``[length, dim]``: ``dim // 2`` sines then ``dim // 2`` cosines per row.
    """
    angles = rotary_angles(length, dim, offset)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1).astype(dtype)


def rotate_pairs(x: np.ndarray) -> np.ndarray:
    """``[x0, x1, x2, x3, ...] -> [-x1, x0, -x3, x2, ...]`` along the last axis (even length)."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    return np.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)


def apply_rotary(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Rotate ``x`` by the positions of ``table``.

    Args:
        x: ``[..., L, D]`` (e.g. ``[B, H, L, D]``).
        table: ``[L, D]`` rows of :func:`sinusoidal_table` for the positions of ``x``.

    Returns:
        ``[..., L, D]``, the dtype of ``x``.
    """
    half = table.shape[-1] // 2
    sin_pos = np.repeat(table[:, :half], 2, axis=-1)  # [L, D]
    cos_pos = np.repeat(table[:, half:], 2, axis=-1)  # [L, D]
    return (x * cos_pos + rotate_pairs(x) * sin_pos).astype(x.dtype)
