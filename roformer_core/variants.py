"""The RoFormer family as data: which config fields make each member.

A member is the V1 encoder plus a few config fields read by shared building blocks (docs/variants.md); the weight
schema derives each member's parameters from them (:mod:`roformer_core.schema`).
"""

from __future__ import annotations

from typing import Any

from .config import RoFormerConfig

#: The config fields each member needs beyond ``bert_config.json`` (which does not say which member a checkpoint
#: is): ``roformer-convert --variant`` sets them so that a converted directory loads with no overrides.
#: ``v1`` covers the word- and char-level RoFormer; ``gpt`` is ``roformer-gpt-char`` (bert4keras
#: ``application="lm"``); ``sim`` is RoFormer-Sim (bert4keras ``application="unilm"``, ``with_pool="linear"``).
VARIANT_FIELDS: dict[str, dict[str, Any]] = {
    "v1": {},
    "v2": {"norm_type": "rms_norm", "use_bias": False},
    "sim": {"unilm": True, "is_decoder": True, "add_pooling_layer": True, "pooler_activation": "linear"},
    "gpt": {"is_decoder": True},
}


def variant_config(variant: str, **fields: Any) -> RoFormerConfig:
    """A config of one family member: ``fields`` (sizes, ...) plus the member's :data:`VARIANT_FIELDS`.

    Raises:
        ValueError: an unknown ``variant`` (naming the known ones).
    """
    if variant not in VARIANT_FIELDS:
        raise ValueError(f"unknown RoFormer variant {variant!r}; known: {', '.join(VARIANT_FIELDS)}")
    return RoFormerConfig(**{**fields, **VARIANT_FIELDS[variant]})
