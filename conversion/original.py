"""The original RoFormer checkpoints (ZhuiyiTechnology / bert4keras, TensorFlow 1 ``bert_model.ckpt``).

Variable names follow Google BERT with ``bert/`` scope. They map onto the canonical names by rule
(:func:`original_to_canonical`, and back with :func:`canonical_to_original`); optimizer slots are skipped, the
next-sentence head is dropped and reported, and bert4keras' embedding projection (``embedding_hidden_mapping_in``)
maps to ``embeddings_project``.

``bert_config.json`` does not say which member of the family a checkpoint is (docs/variants.md). RoFormer-V2 is
recognised from its variables (no biases, no norm weights); RoFormer-Sim and GPT-char are stated with a variant
name (``roformer-convert --variant sim``), whose :data:`roformer_core.variants.VARIANT_FIELDS` go into the config.
A pooler (``bert/pooler/dense``) is kept for Sim and dropped and reported for the members that have none.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roformer_core import RoFormerConfig, get_head
from roformer_core.config import FAMILY_DEFAULTS
from roformer_core.heads import BASE_PREFIX
from roformer_core.io import atomic_write_text
from roformer_core.schema import EMBEDDING, LINEAR, ROTARY_TABLE, ParamSpec, head_owned, infer_variant_fields
from roformer_core.variants import VARIANT_FIELDS

ORIGINAL_CONFIG_NAME = "bert_config.json"
ORIGINAL_CHECKPOINT_PREFIX = "bert_model.ckpt"
#: The ``--variant`` names: the members of the family (:data:`roformer_core.variants.VARIANT_FIELDS`).
VARIANTS = tuple(VARIANT_FIELDS)
#: The keys of a released ``bert_config.json``, in their order; the writer adds ``embedding_size``,
#: ``layer_norm_eps`` and ``rotary_value`` only when they differ from the defaults (no release sets them).
ORIGINAL_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "hidden_act",
)
_SKIPPED_SEGMENTS = {"adam_v", "adam_m", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1", "global_step"}
_NSP_PREFIX = "cls/seq_relationship/"
_POOLER_PREFIX = "roformer.pooler."
_LEAVES = {"kernel": "weight", "gamma": "weight", "beta": "bias", "output_bias": "bias"}
# (norm_type, use_bias) the variables show -> (what they have, the --variant that fits)
_VARIABLE_KINDS = {
    ("rms_norm", False): ("no norm weights and no biases (RoFormer-V2)", "--variant v2"),
    ("layer_norm", True): ("norm weights and biases (RoFormer V1, Sim or GPT-char)", "--variant v1, sim or gpt"),
    ("rms_norm", True): ("biases but no norm weights", None),
    ("layer_norm", False): ("norm weights but no biases", None),
}
_MEMBER_NAMES = {"v1": "RoFormer V1", "v2": "RoFormer-V2", "sim": "RoFormer-Sim", "gpt": "RoFormer GPT-char"}


@dataclass
class OriginalCheckpoint:
    """An original checkpoint read into canonical form.

    Attributes:
        config: the RoFormer config made from ``bert_config.json`` and the member's fields (with the vocab and
            embedding sizes checked against the variables).
        state: canonical name -> array (``roformer.``-prefixed names when the model has an LM head: RoFormer-V2's
            is the tied word embeddings alone, so a V2 checkpoint always has one).
        dropped: original variables deliberately not converted (next-sentence head; a pooler the member lacks).
        variant: the member, as stated or (``"v1"`` / ``"v2"``) detected from the variables.
    """

    config: RoFormerConfig
    state: dict[str, np.ndarray]
    dropped: list[str]
    variant: str


def find_original_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint prefix (``.../bert_model.ckpt``) of a directory holding an original checkpoint, or None."""
    directory = Path(directory)
    if not (directory / ORIGINAL_CONFIG_NAME).is_file():
        return None
    indexes = sorted(directory.glob("*.ckpt.index")) or sorted(directory.glob("*.index"))
    return indexes[0].with_suffix("") if indexes else None


def original_to_canonical(name: str) -> str | None:
    """Map an original variable name to its canonical name (None: not a model variable)."""
    if set(name.split("/")) & _SKIPPED_SEGMENTS:
        return None
    parts = name.replace("bert/", "roformer/", 1).split("/") if name.startswith("bert/") else name.split("/")
    if parts[:3] == ["roformer", "encoder", "embedding_hidden_mapping_in"]:
        parts = ["roformer", "embeddings_project", *parts[3:]]
    leaf = parts[-1]
    module = [re.sub(r"^layer_(\d+)$", r"layer.\1", p) for p in parts[:-1]]
    if leaf.endswith("_embeddings"):
        return ".".join([*module, leaf, "weight"])
    return ".".join([*module, _LEAVES.get(leaf, leaf)])


def canonical_to_original(spec: ParamSpec) -> str:
    """The original variable name of a canonical parameter (bare-model names included): the inverse of
    :func:`original_to_canonical`. Linear weights are stored transposed, as ``kernel`` ``[in, out]``."""
    name = spec.name if head_owned(spec.name) else BASE_PREFIX + spec.name.removeprefix(BASE_PREFIX)
    module, _, leaf = name.rpartition(".")
    module = module.replace("roformer.embeddings_project", "roformer.encoder.embedding_hidden_mapping_in")
    path = re.sub(r"\.layer\.(\d+)\.", r".layer_\1.", module).replace("roformer.", "bert.", 1).replace(".", "/")
    if spec.kind == LINEAR:
        leaf = "kernel"
    elif spec.kind == EMBEDDING:
        return path
    elif module.endswith("LayerNorm"):
        leaf = {"weight": "gamma", "bias": "beta"}[leaf]
    elif name == "cls.predictions.bias":
        leaf = "output_bias"
    return f"{path}/{leaf}"


def _import_tensorflow():
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError(
            "reading or writing an original TF checkpoint needs TensorFlow: pip install 'roformer-tri[tf]'"
        ) from None
    return tf


def member_name(variant: str) -> str:
    """``"v2"`` -> ``"RoFormer-V2"`` (for messages)."""
    return _MEMBER_NAMES[variant]


def check_variant(variant: str, found: Mapping[str, object], source: str) -> None:
    """Check that the member ``variant`` fits the variables of a checkpoint.

    Args:
        variant: one of :data:`VARIANTS`.
        found: :func:`roformer_core.schema.infer_variant_fields` of the checkpoint's canonical names.
        source: the checkpoint, for the message.

    Raises:
        ValueError: an unknown variant, or one the variables contradict (V1 / Sim / GPT-char with V2's weightless
            norms and missing biases, V2 with norm weights or biases, Sim without a pooler), naming the variant
            that fits.
    """
    if variant not in VARIANT_FIELDS:
        raise ValueError(f"unknown RoFormer variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    expected = {**FAMILY_DEFAULTS, **VARIANT_FIELDS[variant]}
    member = member_name(variant)
    kind = (found.get("norm_type", expected["norm_type"]), found.get("use_bias", expected["use_bias"]))
    if kind != (expected["norm_type"], expected["use_bias"]):
        has, fits = _VARIABLE_KINDS[kind]
        advice = f"; use {fits}" if fits else ", as no member of the family has"
        raise ValueError(f"--variant {variant} does not fit {source}: its variables have {has}{advice}")
    if expected["add_pooling_layer"] and not found.get("add_pooling_layer"):
        raise ValueError(
            f"--variant {variant} does not fit {source}: {member} has a pooler (bert/pooler/dense, "
            "roformer.pooler.dense) and this checkpoint has none; use --variant v1 or gpt"
        )


def detect_variant(found: Mapping[str, object], source: str) -> str:
    """The member a checkpoint's variables show: ``"v2"`` (no biases, no norm weights) or ``"v1"``; Sim and
    GPT-char look like V1 and must be stated.

    Raises:
        ValueError: variables that fit no member (norm weights without biases, or the reverse).
    """
    kind = (found.get("norm_type", "layer_norm"), found.get("use_bias", True))
    has, fits = _VARIABLE_KINDS[kind]
    if fits is None:
        raise ValueError(f"{source} is no member of the RoFormer family: its variables have {has}")
    return "v2" if kind == ("rms_norm", False) else "v1"


def read_original_checkpoint(directory: str | os.PathLike, variant: str | None = None) -> OriginalCheckpoint:
    """Read ``bert_config.json`` and the TF checkpoint of ``directory`` (needs TensorFlow to read the bundle).

    Args:
        directory: holds ``bert_config.json`` and ``bert_model.ckpt.{index,data-*}``.
        variant: the member (:data:`VARIANTS`); None detects V1 or V2 from the variables.

    Raises:
        FileNotFoundError: no original checkpoint in ``directory``.
        ImportError: TensorFlow is not installed.
        ValueError: unreadable files, or a ``variant`` the variables contradict (:func:`check_variant`).
    """
    directory = Path(directory)
    prefix = find_original_checkpoint(directory)
    if prefix is None:
        raise FileNotFoundError(f"{directory} holds no original checkpoint ({ORIGINAL_CONFIG_NAME} + *.ckpt.index)")
    tf = _import_tensorflow()
    try:
        raw = json.loads((directory / ORIGINAL_CONFIG_NAME).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{directory / ORIGINAL_CONFIG_NAME} is not valid JSON: {err}") from None
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        names = sorted(reader.get_variable_to_shape_map())
    except Exception as err:  # TF raises DataLossError / NotFoundError / ... for broken bundles
        raise ValueError(f"cannot read TF checkpoint {prefix}: {type(err).__name__}: {err}") from None
    state: dict[str, np.ndarray] = {}
    originals: dict[str, str] = {}
    dropped: list[str] = []
    for name in names:
        if name.startswith(_NSP_PREFIX):
            dropped.append(name)
            continue
        canonical = original_to_canonical(name)
        if canonical is None:
            continue
        array = np.asarray(reader.get_tensor(name))
        state[canonical] = array.T if name.endswith("/kernel") else array
        originals[canonical] = name
    found = infer_variant_fields(state)
    if variant is None:
        variant = detect_variant(found, str(directory))
    else:
        check_variant(variant, found, str(directory))
    member = {**FAMILY_DEFAULTS, **VARIANT_FIELDS[variant]}
    if not member["add_pooling_layer"]:  # a BERT pooler RoFormer V1 / V2 / GPT-char has no place for
        for name in [n for n in state if n.startswith(_POOLER_PREFIX)]:
            del state[name]
            dropped.append(originals[name])
    word = state.get("roformer.embeddings.word_embeddings.weight")
    fields = {k: v for k, v in raw.items() if k not in ("directionality", "pooler_fc_size", "pooler_num_attention")}
    fields.setdefault("embedding_size", word.shape[1] if word is not None else None)
    fields.update(member)
    fields["model_type"] = "roformer"
    config = RoFormerConfig.from_dict(fields)
    # V2's LM head is the tied word embeddings alone: every V2 checkpoint is a masked LM
    has_lm_head = any(k.startswith("cls.") for k in state) or not config.has_lm_transform
    lm_head = get_head("causal_lm" if config.is_decoder else "masked_lm")
    config.extra["architectures"] = [lm_head.class_name if has_lm_head else get_head("model").class_name]
    if not has_lm_head:
        state = {k.removeprefix(BASE_PREFIX): v for k, v in state.items()}
    return OriginalCheckpoint(config, state, sorted(dropped), variant)


def original_config_fields(config: RoFormerConfig) -> dict[str, object]:
    """The ``bert_config.json`` of ``config``: :data:`ORIGINAL_CONFIG_KEYS`, plus ``embedding_size``,
    ``layer_norm_eps`` and ``rotary_value`` where they differ from the defaults. The member's fields are not part
    of the format: reading it back states them with a variant (V2 is detected)."""
    fields = {key: getattr(config, key) for key in ORIGINAL_CONFIG_KEYS}
    if config.embedding_size != config.hidden_size:
        fields["embedding_size"] = config.embedding_size
    default = RoFormerConfig()
    for key in ("layer_norm_eps", "rotary_value"):
        if getattr(config, key) != getattr(default, key):
            fields[key] = getattr(config, key)
    return fields


def write_original_checkpoint(
    directory: str | os.PathLike,
    config: RoFormerConfig,
    schema: list[ParamSpec],
    state: Mapping[str, np.ndarray],
    progress: Callable[[str], None] | None = None,
) -> None:
    """Write ``bert_config.json`` and ``bert_model.ckpt.{index,data-00000-of-00001}`` with the original variable
    names, as the released checkpoints have them (needs TensorFlow).

    Args:
        directory: an existing directory to write into.
        config: the model config.
        schema: the model's :func:`roformer_core.schema.model_schema`; tied copies and the rotary table are not
            written (the released checkpoints have neither).
        state: canonical name -> array for every stored parameter, in the canonical layout.
        progress: called with each canonical name once staged.
    """
    tf = _import_tensorflow()
    names, tensors = [], []
    for spec in schema:
        if not spec.stored or spec.kind == ROTARY_TABLE:
            continue
        array = np.asarray(state[spec.name])
        names.append(canonical_to_original(spec))
        tensors.append(tf.constant(array.T if spec.kind == LINEAR else array))
        if progress is not None:
            progress(spec.name)
    directory = Path(directory)
    tf.raw_ops.SaveV2(
        prefix=str(directory / ORIGINAL_CHECKPOINT_PREFIX),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=tensors,
    )
    atomic_write_text(directory / ORIGINAL_CONFIG_NAME, json.dumps(original_config_fields(config), indent=2) + "\n")
