"""Optimizer rules every port's training recipe shares: which parameters get weight decay, and the learning rate.

Both are written on canonical parameter names (:mod:`roformer_core.schema`) and plain numbers, so PyTorch,
Keras and Flax training decay the same parameters and step the same learning rate.
"""

from __future__ import annotations

from .schema import BIAS, NORM_BIAS, NORM_WEIGHT

#: Parameter kinds that get no weight decay: every bias and both parameters of a norm (decaying a LayerNorm scale
#: pulls it towards 0, not towards the identity it starts from). BERT's and the reference's recipes do the same.
NO_DECAY_KINDS = frozenset({BIAS, NORM_WEIGHT, NORM_BIAS})

# the module name the schema gives every norm (``...output.LayerNorm.weight``), V1 and V2 alike
_NORM_MODULE = "LayerNorm"


def no_decay(name: str) -> bool:
    """Whether the parameter named ``name`` is left out of weight decay (a bias or a norm's scale or shift).

    Args:
        name: a canonical parameter name (``roformer.encoder.layer.0.output.LayerNorm.weight``), with or without
            the encoder prefix; a wrapper's prefix (``module.``, ``_orig_mod.``) in front changes nothing.

    Returns:
        True exactly for the parameters whose :class:`~roformer_core.schema.ParamSpec` kind is in
        :data:`NO_DECAY_KINDS`.
    """
    parts = name.split(".")
    return parts[-1] == "bias" or (len(parts) >= 2 and parts[-2] == _NORM_MODULE)


def linear_warmup_decay(step: int, num_train_steps: int, warmup_steps: int = 0) -> float:
    """The learning-rate factor at optimizer step ``step``: linear warmup from 0 to 1 over ``warmup_steps``, then
    linear decay to 0 at ``num_train_steps`` (transformers' ``get_linear_schedule_with_warmup``).

    Args:
        step: optimizer steps taken so far (the factor of the next update).
        num_train_steps: total optimizer steps (> 0).
        warmup_steps: steps of warmup, ``0 <= warmup_steps <= num_train_steps``.

    Raises:
        ValueError: a step count out of range.
    """
    if num_train_steps <= 0 or not 0 <= warmup_steps <= num_train_steps:
        raise ValueError(
            f"need num_train_steps > 0 and 0 <= warmup_steps <= num_train_steps, got num_train_steps="
            f"{num_train_steps}, warmup_steps={warmup_steps}"
        )
    if step < warmup_steps:
        return step / warmup_steps
    return max(0.0, (num_train_steps - step) / max(1, num_train_steps - warmup_steps))
