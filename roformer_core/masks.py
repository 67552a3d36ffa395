"""Attention masks of the RoFormer family, as 0/1 numpy arrays: one builder that every port calls.

A 3-D mask ``[B, Lq, Lk]`` (1 = query i may attend key j) is accepted wherever a 2-D key-padding mask ``[B, Lk]``
is; the UniLM rule of RoFormer-Sim is one such 3-D mask, built here from the token types.
"""

from __future__ import annotations

import numpy as np


def unilm_mask(
    token_type_ids: np.ndarray,
    attention_mask: np.ndarray | None = None,
    query_length: int | None = None,
) -> np.ndarray:
    """The UniLM attention mask (bert4keras ``application="unilm"``), combined with the key padding mask.

    With ``C = cumsum(token_type_ids)`` along the sequence, query i attends key j iff ``C[j] <= C[i]`` and key j is
    not padding. All-zero token types therefore attend bidirectionally (RoFormer-Sim sentence vectors), and a
    ``[CLS] source [SEP]`` prompt of type 0 followed by target tokens of type 1 gets the seq2seq mask: the source
    sees only the source, the k-th target token the source and targets 1..k.

    Args:
        token_type_ids: int ``[B, Lk]``, the token types of the whole sequence (cached prefix included).
        attention_mask: optional 0/1 key padding mask ``[B, Lk]``; None means no padding.
        query_length: ``Lq``, the number of trailing positions that are queries (the new tokens of a cached step);
            None means every position (``Lq = Lk``).

    Returns:
        int32 ``[B, Lq, Lk]``, 1 where query ``Lk - Lq + i`` may attend key j.

    Raises:
        ValueError: shapes that do not fit (not 2-D, mask and types of different shapes, ``query_length`` out of
            range).
    """
    types = np.asarray(token_type_ids)
    if types.ndim != 2:
        raise ValueError(f"token_type_ids must be [batch, length] for the UniLM mask, got shape {types.shape}")
    k_len = types.shape[1]
    q_len = k_len if query_length is None else int(query_length)
    if not 0 < q_len <= k_len:
        raise ValueError(f"query_length must be in [1, {k_len}] (the token types' length), got {query_length!r}")
    cumulative = np.cumsum(types.astype(np.int64), axis=1)  # [B, Lk]
    keep = cumulative[:, None, :] <= cumulative[:, k_len - q_len :, None]  # [B, Lq, Lk]
    if attention_mask is not None:
        padding = np.asarray(attention_mask)
        if padding.shape != types.shape:
            raise ValueError(
                f"attention_mask {padding.shape} and token_type_ids {types.shape} must have the same shape "
                "[batch, length] for the UniLM mask (pass a 3-D [batch, query, key] mask instead of both if you "
                "build the mask yourself)"
            )
        keep &= padding[:, None, :].astype(bool)
    return keep.astype(np.int32)


def causal_mask(q_len: int, k_len: int) -> np.ndarray:
    """The decoder's lower-triangular rule ``j <= i + (Lk - Lq)`` as int32 ``[Lq, Lk]`` (the queries are the last
    ``Lq`` of ``Lk`` positions, as in a cached step)."""
    past = k_len - q_len
    return (np.arange(k_len)[None, :] <= np.arange(q_len)[:, None] + past).astype(np.int32)
