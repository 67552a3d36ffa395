"""Input checks shared by the ports, so a bad input fails with a message that names it."""

from __future__ import annotations

from .losses import IGNORE_INDEX

# The integer inputs that index an embedding, each with the config field that gives the embedding's row count.
ID_INPUTS: dict[str, str] = {"input_ids": "vocab_size", "token_type_ids": "type_vocab_size"}


def id_limit(name: str, config) -> tuple[int, str]:
    """``(size, field)`` for an input of :data:`ID_INPUTS`: its ids must lie in ``[0, size)``, ``size`` being
    ``config.<field>``."""
    field = ID_INPUTS[name]
    return getattr(config, field), field


def check_id_range(name: str, low: int, high: int, config) -> None:
    """Raise ValueError unless ``0 <= low`` and ``high < size`` (see :func:`id_limit`).

    Args:
        name: the input's name, a key of :data:`ID_INPUTS` (``"input_ids"``).
        low / high: its smallest and largest value.
        config: the model's RoFormerConfig.
    """
    size, field = id_limit(name, config)
    if low < 0:
        raise ValueError(f"{name} contains a negative id ({low}); ids must be in [0, {field}={size})")
    if high >= size:
        raise ValueError(f"{name} contains id {high}, out of range for {field}={size}")


def check_class_labels(name: str, low: int | None, high: int | None, classes: int, field: str) -> None:
    """Raise ValueError unless class labels lie in ``[0, classes)`` (see ``losses.class_label_limit``).

    Args:
        name: the input's name (``"labels"``).
        low / high: the smallest and largest label other than IGNORE_INDEX, None when every label is ignored.
        classes / field: the number of classes and where it comes from (``"vocab_size"``).
    """
    valid = f"labels must be in [0, {classes}) or {IGNORE_INDEX} (ignored)"
    if low is not None and low < 0:
        raise ValueError(f"{name} contains {low}: {valid}")
    if high is not None and high >= classes:
        raise ValueError(f"{name} contains {high}, out of range for {field}={classes}: {valid}")


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
