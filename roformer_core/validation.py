"""Input checks shared by the ports, so a bad input fails with a message that names it."""

from __future__ import annotations


def check_id_range(name: str, low: int, high: int, size: int, field: str = "vocab_size") -> None:
    """Raise ValueError unless ``0 <= low`` and ``high < size``.

    Args:
        name: the input's name (``"input_ids"``).
        low / high: its smallest and largest value.
        size: the number of rows of the embedding it indexes.
        field: the config field that gives ``size``.
    """
    if low < 0:
        raise ValueError(f"{name} contains a negative id ({low}); ids must be in [0, {field}={size})")
    if high >= size:
        raise ValueError(f"{name} contains id {high}, out of range for {field}={size}")


def check_attention_mask(
    shape: tuple[int, ...], batch: int, length: int, past_length: int = 0, name: str = "attention_mask"
) -> None:
    """A mask must be ``[B, P + L]`` or ``[B, L, P + L]`` for ``B`` sequences of ``L`` new and ``P`` cached tokens."""
    total = past_length + length
    if tuple(shape) not in ((batch, total), (batch, length, total)):
        cached = f" ({past_length} cached + {length} new)" if past_length else ""
        raise ValueError(
            f"{name} has shape {list(shape)}, expected [{batch}, {total}]{cached} or [{batch}, {length}, {total}]"
        )
