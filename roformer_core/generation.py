"""Framework-neutral parts of ``generate()``: argument checks and the preparation of (padded) prompts."""

from __future__ import annotations

import numpy as np

from .config import RoFormerConfig
from .validation import check_id_range


def check_generate_args(
    config: RoFormerConfig,
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    eos_token_id: int | list[int] | None,
    pad_token_id: int | None,
) -> tuple[list[int], int]:
    """Validate ``generate()`` arguments.

    Returns:
        the list of end-of-sequence ids (empty when none) and the pad id to use.
    """
    if not config.is_decoder:
        raise ValueError("generate() needs a decoder: build the causal LM with is_decoder=True")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    if do_sample and not temperature > 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if eos_token_id is None:
        eos_token_id = config.eos_token_id
    eos_ids = [] if eos_token_id is None else [int(i) for i in np.atleast_1d(eos_token_id)]
    for i in eos_ids:
        if not 0 <= i < config.vocab_size:
            raise ValueError(f"eos_token_id {i} is out of range for vocab_size={config.vocab_size}")
    if pad_token_id is None:
        pad_token_id = config.pad_token_id if config.pad_token_id is not None else (eos_ids[0] if eos_ids else 0)
    return eos_ids, int(pad_token_id)


def left_align_plan(attention_mask: np.ndarray) -> np.ndarray | None:
    """Column order that moves each row's padding to the left, or None when prompts are already left-aligned.

    Args:
        attention_mask: ``[B, L]`` 0/1.

    Returns:
        ``[B, L]`` int64 gather indices (stable: tokens keep their order), or None.
    """
    mask = np.asarray(attention_mask).astype(bool)
    if mask.size == 0:
        return None
    # left-aligned <=> in each row every real token is after every pad
    left_aligned = all(np.all(row[np.argmax(row) :]) if row.any() else True for row in mask)
    if left_aligned:
        return None
    return np.argsort(mask.astype(np.int8), axis=1, kind="stable").astype(np.int64)


def prepare_prompts(
    config: RoFormerConfig,
    input_ids,
    attention_mask,
    token_type_ids,
    pad_token_id: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Check prompts and lay them out for decoding: padding moved to the left (see :func:`left_align_plan`), pad
    positions set to ``pad_token_id``, ids and token types checked against the config (a ValueError naming the
    input: inside a compiled decoding loop nothing could raise).

    Args:
        input_ids: ``[B, L]`` integer prompts (anything ``np.asarray`` takes); pad positions may hold any value.
        attention_mask: ``[B, L]`` 0/1, or None for no padding.
        token_type_ids: ``[B, L]`` or None.
        pad_token_id: from :func:`check_generate_args`.

    Returns:
        int64 ``ids [B, L]``, ``mask [B, L]`` and ``types [B, L]`` (or None).
    """
    ids = np.asarray(input_ids)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, length], got shape {list(ids.shape)}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"input_ids must be integers, got {ids.dtype}")
    ids = ids.astype(np.int64)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask).astype(np.int64)
    if mask.shape != ids.shape:
        raise ValueError(f"attention_mask shape {list(mask.shape)} differs from input_ids {list(ids.shape)}")
    types = None if token_type_ids is None else np.asarray(token_type_ids).astype(np.int64)
    if types is not None and types.shape != ids.shape:
        raise ValueError(f"token_type_ids shape {list(types.shape)} differs from input_ids {list(ids.shape)}")
    order = left_align_plan(mask)
    if order is not None:
        ids, mask = np.take_along_axis(ids, order, 1), np.take_along_axis(mask, order, 1)
        types = None if types is None else np.take_along_axis(types, order, 1)
    # pads carry pad_token_id in the output, whatever the caller put there
    ids = np.where(mask.astype(bool), ids, pad_token_id)
    if ids.size:
        check_id_range("input_ids", int(ids.min()), int(ids.max()), config)
        if types is not None:
            check_id_range("token_type_ids", int(types.min()), int(types.max()), config)
    return ids, mask, types
