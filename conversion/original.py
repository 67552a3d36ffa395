"""The original RoFormer checkpoints (ZhuiyiTechnology / bert4keras, TensorFlow 1 ``bert_model.ckpt``).

Variable names follow Google BERT with ``bert/`` scope. They map onto the canonical names by rule; variables
that RoFormer has no place for (the BERT pooler and next-sentence head) are dropped and reported, optimizer
slots are skipped, and anything else unknown is an error. Unlike the reference's conversion script, checkpoints
that carry the pooler, the NSP head or bert4keras' embedding projection (``embedding_hidden_mapping_in``,
mapped to ``embeddings_project``) convert.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roformer_core import RoFormerConfig

ORIGINAL_CONFIG_NAME = "bert_config.json"
_SKIPPED_SEGMENTS = {"adam_v", "adam_m", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1", "global_step"}
_DROPPED_PREFIXES = ("bert/pooler/", "cls/seq_relationship/")
_LEAVES = {"kernel": "weight", "gamma": "weight", "beta": "bias", "output_bias": "bias"}


@dataclass
class OriginalCheckpoint:
    """An original checkpoint read into canonical form.

    Attributes:
        config: the RoFormer config made from ``bert_config.json`` (with the vocab and embedding sizes checked
            against the variables).
        state: canonical name -> array (``RoFormerForMaskedLM`` names when the MLM head is present).
        dropped: original variables deliberately not converted (pooler, next-sentence head).
    """

    config: RoFormerConfig
    state: dict[str, np.ndarray]
    dropped: list[str]


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


def read_original_checkpoint(directory: str | os.PathLike) -> OriginalCheckpoint:
    """Read ``bert_config.json`` and the TF checkpoint of ``directory`` (needs TensorFlow to read the bundle)."""
    directory = Path(directory)
    prefix = find_original_checkpoint(directory)
    if prefix is None:
        raise FileNotFoundError(f"{directory} holds no original checkpoint ({ORIGINAL_CONFIG_NAME} + *.ckpt.index)")
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError(
            "reading an original TF checkpoint needs TensorFlow: pip install 'roformer-tri[tf]'"
        ) from None
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
    dropped: list[str] = []
    for name in names:
        if name.startswith(_DROPPED_PREFIXES):
            dropped.append(name)
            continue
        canonical = original_to_canonical(name)
        if canonical is None:
            continue
        array = np.asarray(reader.get_tensor(name))
        state[canonical] = array.T if name.endswith("/kernel") else array
    word = state.get("roformer.embeddings.word_embeddings.weight")
    fields = {k: v for k, v in raw.items() if k not in ("directionality", "pooler_fc_size", "pooler_num_attention")}
    fields.setdefault("embedding_size", word.shape[1] if word is not None else None)
    fields["model_type"] = "roformer"
    has_lm_head = any(k.startswith("cls.") for k in state)
    fields["architectures"] = ["RoFormerForMaskedLM" if has_lm_head else "RoFormerModel"]
    if not has_lm_head:
        state = {k.removeprefix("roformer."): v for k, v in state.items()}
    config = RoFormerConfig.from_dict(fields)
    return OriginalCheckpoint(config, state, dropped)
