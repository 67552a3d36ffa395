"""The released RoFormer checkpoints on the Hugging Face hub, and the config fields each needs beyond its
``config.json`` (applied when it is loaded by id; the caller's own overrides win).

Sources: the transformers 4.37 tokenizer tables (word / char V1 and the English ELECTRA-style pair, with their
intended lengths), JunnYu's model cards for V2 and Sim, and docs/variants.md for what each member reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KnownCheckpoint:
    """One released checkpoint.

    Attributes:
        member: the member of the family (a key of :data:`roformer_core.variants.VARIANT_FIELDS`).
        language: ``"zh"`` or ``"en"``.
        size: ``"small"``, ``"base"`` or ``"large"``, as its id says (the Chinese ones: 6 x 384, 12 x 768,
            24 x 1024 layers x hidden).
        vocabulary: ``"word"`` (jieba words + characters, 50000), ``"char"`` (12000 characters) or
            ``"wordpiece"`` (English).
        overrides: config fields its ``config.json`` lacks, applied when it is loaded by id.
        note: what to know when loading it.
    """

    member: str
    language: str
    size: str
    vocabulary: str
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""


# JunnYu's Sim config.json says is_decoder, pooler_activation="linear" and has the pooler weights, but not the
# UniLM mask (his package takes it from the token types at call time), so without unilm=True a seq2seq pass would
# be causal instead of UniLM
_SIM = {"unilm": True}
_SIM_NOTE = "sentence vectors: RoFormerModel pooler_output; generation: RoFormerForCausalLM"

KNOWN_CHECKPOINTS: dict[str, KnownCheckpoint] = {
    "junnyu/roformer_chinese_small": KnownCheckpoint("v1", "zh", "small", "word"),
    "junnyu/roformer_chinese_base": KnownCheckpoint("v1", "zh", "base", "word"),
    "junnyu/roformer_chinese_char_small": KnownCheckpoint("v1", "zh", "small", "char"),
    "junnyu/roformer_chinese_char_base": KnownCheckpoint("v1", "zh", "base", "char"),
    "junnyu/roformer_chinese_sim_char_small": KnownCheckpoint("sim", "zh", "small", "char", _SIM, _SIM_NOTE),
    "junnyu/roformer_chinese_sim_char_base": KnownCheckpoint("sim", "zh", "base", "char", _SIM, _SIM_NOTE),
    "junnyu/roformer_chinese_sim_char_ft_small": KnownCheckpoint("sim", "zh", "small", "char", _SIM, _SIM_NOTE),
    "junnyu/roformer_chinese_sim_char_ft_base": KnownCheckpoint("sim", "zh", "base", "char", _SIM, _SIM_NOTE),
    "junnyu/roformer_v2_chinese_char_small": KnownCheckpoint("v2", "zh", "small", "char"),
    "junnyu/roformer_v2_chinese_char_base": KnownCheckpoint("v2", "zh", "base", "char"),
    "junnyu/roformer_v2_chinese_char_large": KnownCheckpoint("v2", "zh", "large", "char"),
    "junnyu/roformer_small_discriminator": KnownCheckpoint(
        "v1",
        "en",
        "small",
        "wordpiece",
        note="ELECTRA-style discriminator: its encoder loads as RoFormerModel (no ELECTRA head)",
    ),
    "junnyu/roformer_small_generator": KnownCheckpoint(
        "v1", "en", "small", "wordpiece", note="ELECTRA-style generator (a masked LM)"
    ),
}


def known_overrides(name: str) -> dict[str, Any]:
    """The config fields :data:`KNOWN_CHECKPOINTS` adds when ``name`` (a hub id) is loaded; ``{}`` for others."""
    known = KNOWN_CHECKPOINTS.get(str(name))
    return dict(known.overrides) if known is not None else {}
