"""Framework-neutral parts of ``generate()``: argument checks and the left-alignment of padded prompts."""

from __future__ import annotations

import numpy as np

from .config import RoFormerConfig


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
