"""Batch mechanics of the tokenizers (private): BatchEncoding, padding, overflow windows, tensor conversion.

The rules are those of the reference fast tokenizer (transformers' `RoFormerTokenizerFast` over the `tokenizers`
library): padding fills, truncation windows with a stride, the order of overflowing pieces of a pair.
No deep-learning framework is imported here except on request (`return_tensors="pt" | "tf" | "jax"`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

TENSOR_TYPES = ("np", "pt", "tf", "jax")
SIDES = ("right", "left")
PAD_TOKEN_TYPE_ID = 0

# Columns the tokenizers make: integer ids and masks, padded with these fills (input_ids uses the pad id).
PAD_FILLS: dict[str, Any] = {
    "token_type_ids": PAD_TOKEN_TYPE_ID,
    "attention_mask": 0,
    "special_tokens_mask": 1,
    "offset_mapping": (0, 0),
}
_INTEGER_COLUMNS = frozenset({"input_ids", *PAD_FILLS, "length", "overflow_to_sample_mapping", "num_truncated_tokens"})


class RowLayout(NamedTuple):
    """Where each part of one encoded row sits, so that `sequence_ids`/`word_ids` need no per-token lists.

    `words_a`/`words_b` are the word index of every token of each text, or None when the input was not split
    into words.
    """

    left_pad: int
    special: bool
    length_a: int
    length_b: int | None
    right_pad: int
    words_a: Sequence[int] | None
    words_b: Sequence[int] | None


class BatchEncoding(dict):
    """The output of a tokenizer call: a dict of model inputs that also allows attribute access.

    Keys, in order, as present: input_ids, token_type_ids, attention_mask, special_tokens_mask, offset_mapping,
    length, overflow_to_sample_mapping. Values are lists ([L] for one text, [B][L] for a batch) or tensors with
    shape [B, L] ([B, L, 2] for offset_mapping; a single text gets B = 1). With return_overflowing_tokens=True
    every window is a row of the batch and overflow_to_sample_mapping ([B]) gives the example it came from.
    """

    def __init__(self, data: Mapping[str, Any] | None = None, layouts: list[RowLayout] | None = None) -> None:
        super().__init__(data or {})
        self._layouts = layouts

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _layout(self, batch_index: int, method: str) -> RowLayout:
        if self._layouts is None:
            raise ValueError(
                f"{method}() needs the output of a tokenizer call (tokenizer(...)); this BatchEncoding was made by "
                "pad() or by hand and does not know where its tokens came from"
            )
        if not -len(self._layouts) <= batch_index < len(self._layouts):
            raise IndexError(f"batch_index {batch_index} is out of range for a batch of {len(self._layouts)} rows")
        return self._layouts[batch_index]

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """Which text each token of row `batch_index` comes from: 0, 1 (the pair), or None (special, padding).

        Returns:
            A list as long as the row ([L]).
        """
        layout = self._layout(batch_index, "sequence_ids")
        return _by_part(layout, [0] * layout.length_a, None if layout.length_b is None else [1] * layout.length_b)

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Index of the input word each token of row `batch_index` comes from (None for special tokens, padding).

        Available for input passed with is_split_into_words=True, where word i is the i-th string of the example.

        Returns:
            A list as long as the row ([L]).
        """
        layout = self._layout(batch_index, "word_ids")
        if layout.words_a is None:
            raise ValueError(
                "word_ids() is available for pre-split input: pass a list of words per example with "
                "is_split_into_words=True"
            )
        return _by_part(layout, list(layout.words_a), None if layout.words_b is None else list(layout.words_b))


def _by_part(layout: RowLayout, first: list[Any], second: list[Any] | None) -> list[Any]:
    special: list[Any] = [None] if layout.special else []
    row = [None] * layout.left_pad + special + first + special
    if second is not None:
        row += second + special
    return row + [None] * layout.right_pad


def windows(length: int, keep: int, stride: int, side: str) -> list[tuple[int, int]]:
    """The [start, stop) token ranges a text of `length` tokens is cut into when `keep` tokens fit.

    The first range is what truncation keeps; the others are the overflowing windows, each sharing `stride`
    tokens with the previous one, in the order of tokenizers' `Encoding.truncate` (from the end for side="left").
    """
    if keep >= length:
        return [(0, length)]
    if keep == 0:
        return [(0, 0), (0, length)]
    if stride >= keep:
        raise ValueError(
            f"stride ({stride}) must be smaller than the number of tokens kept per window ({keep}: max_length "
            "minus the special tokens, minus the other text of a pair); lower stride or raise max_length"
        )
    step = keep - stride
    ranges = []
    if side == "right":
        for start in range(0, length, step):
            ranges.append((start, min(start + keep, length)))
            if start + keep >= length:
                break
    else:
        for stop in range(length, 0, -step):
            ranges.append((max(stop - keep, 0), stop))
            if stop <= keep:
                break
    return ranges


def window_pairs(
    ranges_a: list[tuple[int, int]], ranges_b: list[tuple[int, int]] | None
) -> list[tuple[tuple[int, int], tuple[int, int] | None]]:
    """Combines the windows of a pair in the order tokenizers' `Encoding.merge_with` lists overflowing pieces.

    The first combination is the truncated example itself; then every later window of the first text with the
    first and every later window of the second, then the first window of the first text with every later window
    of the second.
    """
    if ranges_b is None:
        return [(window, None) for window in ranges_a]
    first_a, *rest_a = ranges_a
    first_b, *rest_b = ranges_b
    combined = [(first_a, first_b)]
    for window_a in rest_a:
        combined += [(window_a, first_b), *((window_a, window_b) for window_b in rest_b)]
    combined += [(first_a, window_b) for window_b in rest_b]
    return combined


def pad_rows(
    columns: dict[str, list[Any]],
    *,
    target: int,
    pad_id: int,
    side: str,
    keys: Sequence[str],
) -> list[int]:
    """Pads the rows of `keys` in place to `target` tokens on `side`; other columns are left alone.

    Args:
        columns: column name -> rows (lists); the rows of "input_ids" set how much each row needs.
        target: padded length (rows already longer are kept).
        pad_id: the fill of input_ids.
        side: "right" or "left".
        keys: the columns to pad (among input_ids and `PAD_FILLS`).

    Returns:
        How many pad tokens each row got.
    """
    missing = [max(target - len(row), 0) for row in columns["input_ids"]]
    for key in keys:
        fill = pad_id if key == "input_ids" else PAD_FILLS[key]
        rows = columns[key]
        for index, count in enumerate(missing):
            if count:
                rows[index] = rows[index] + [fill] * count if side == "right" else [fill] * count + rows[index]
    return missing


def padded_length(lengths: Sequence[int], strategy: str, max_length: int | None, multiple: int | None) -> int:
    """The length rows are padded to: the longest of `lengths` or `max_length`, rounded up to `multiple`."""
    if strategy == "longest":
        target = max(lengths, default=0)
    else:
        assert max_length is not None
        target = max_length
    if multiple is not None and target % multiple:
        target += multiple - target % multiple
    return target


def to_python(value: Any) -> Any:
    """numpy arrays and framework tensors (and lists of them) -> nested Python lists and scalars."""
    if isinstance(value, (list, tuple)):
        return [to_python(item) for item in value]
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()  # torch (on CPU) and tf tensors
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def tensor_type_of(value: Any) -> str | None:
    """ "np", "pt", "tf" or "jax" for an array or tensor, None for Python values (frameworks are not imported)."""
    if isinstance(value, np.ndarray):
        return "np"
    module = type(value).__module__.split(".")[0]
    return {"torch": "pt", "tensorflow": "tf", "jax": "jax", "jaxlib": "jax"}.get(module)


def to_tensor(key: str, values: list[Any], return_tensors: str) -> Any:
    """Rows of equal length -> a numpy / torch / tf / jax tensor (frameworks imported here only).

    Token columns become int64 (numpy, torch) or int32 (tf, jax), as the reference converts them; other columns
    (labels a collator passes through) keep their kind: ints as above, floats as float32 in a framework.
    """
    if values and isinstance(values[0], (list, tuple)) and len({len(row) for row in values}) > 1:
        raise ValueError(
            f"cannot make a {return_tensors!r} tensor of {key}: the sequences have different lengths; "
            "pass padding=True (and truncation=True if needed)"
        )
    if key in _INTEGER_COLUMNS:
        array = np.asarray(values, dtype=np.int64)
        if key == "offset_mapping":
            array = array.reshape(len(values), -1, 2)
    else:
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise ValueError(
                f"cannot make a {return_tensors!r} tensor of {key}: its values are not numbers "
                f"(numpy made {array.dtype}); remove that column or pass return_tensors=None"
            )
        if array.dtype.kind == "u":
            array = array.astype(np.int64)
    if return_tensors == "np":
        return array
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    if return_tensors == "pt":
        import torch

        return torch.from_numpy(np.ascontiguousarray(array))
    narrow = array.astype(np.int32) if array.dtype.kind == "i" else array
    if return_tensors == "tf":
        import tensorflow as tf

        return tf.constant(narrow)
    import jax.numpy as jnp

    return jnp.asarray(narrow)
