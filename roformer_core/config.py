"""RoFormerConfig: the model hyper-parameters, compatible with the reference ``config.json``."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from .activations import ACTIVATIONS
from .hub import pop_hub_kwargs, resolve_checkpoint
from .io import atomic_write_text, check_not_a_file
from .known_checkpoints import known_overrides

CONFIG_NAME = "config.json"
MODEL_TYPE = "roformer"

#: The fields that select a member of the RoFormer family (docs/variants.md), with their V1 values. The first three
#: are the config.json keys of JunnYu's RoFormer-V2 / RoFormer-Sim checkpoints.
FAMILY_DEFAULTS: dict[str, Any] = {
    "norm_type": "layer_norm",
    "use_bias": True,
    "pooler_activation": "tanh",
    "add_pooling_layer": False,
    "unilm": False,
}

# Field -> default, in the reference's order. These are the RoFormer-specific fields plus the inherited base-config
# fields that change the model; every other key found in a config.json is kept verbatim in ``extra``.
_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50000,
    "embedding_size": None,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 1536,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "rotary_value": False,
    "use_cache": True,
    "is_decoder": False,
    "add_cross_attention": False,
    "tie_word_embeddings": True,
    "chunk_size_feed_forward": 0,
    "problem_type": None,
    "output_attentions": False,
    "output_hidden_states": False,
    "return_dict": True,
    "bos_token_id": None,
    "eos_token_id": None,
    **FAMILY_DEFAULTS,
}

#: ``norm_type`` values: LayerNorm with scale and shift (V1), or V2's weightless ``x / sqrt(mean(x^2) + eps)``.
NORM_TYPES = ("layer_norm", "rms_norm")

_PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
_POSITIVE_INT_FIELDS = (
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)


class RoFormerConfig:
    """Hyper-parameters of a RoFormer model, with the reference's fields and defaults.

    Every field of the reference ``RoFormerConfig`` (transformers 4.57) is an attribute with the same default.
    ``embedding_size=None`` resolves to ``hidden_size``. Labels are described by ``num_labels`` or by
    ``id2label``/``label2id`` (default: two labels). Keys this class does not model (``architectures``,
    ``torch_dtype``, ``transformers_version``, ...) are kept in :attr:`extra` and written back unchanged.

    The family fields select RoFormer-V2 and RoFormer-Sim (docs/variants.md): ``norm_type`` (``"layer_norm"`` or
    V2's weightless ``"rms_norm"``, which also selects V2's tied-only LM head), ``use_bias`` (false: no biases in
    query/key/value, attention output, intermediate and output dense layers), ``add_pooling_layer`` (a pooler
    ``roformer.pooler.dense`` on the first position, activation ``pooler_activation``, ``"linear"`` for Sim) and
    ``unilm`` (attention by segments, :func:`roformer_core.masks.unilm_mask`).

    Raises:
        ValueError: naming the field, when a value cannot describe a working model (sizes not positive,
            ``hidden_size`` not divisible by ``num_attention_heads``, odd head size, unknown ``hidden_act``,
            dropout outside [0, 1), cross-attention without ``is_decoder``, unknown ``problem_type``, unknown
            ``norm_type`` or ``pooler_activation``, a non-boolean ``use_bias`` / ``add_pooling_layer`` / ``unilm``).
    """

    model_type = MODEL_TYPE

    def __init__(self, **kwargs: Any) -> None:
        for key, default in _DEFAULTS.items():
            setattr(self, key, copy.deepcopy(kwargs.pop(key, default)))
        if self.embedding_size is None:
            self.embedding_size = self.hidden_size
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        num_labels = kwargs.pop("num_labels", None)
        if id2label is not None:
            self.id2label = {int(k): str(v) for k, v in id2label.items()}
            if num_labels is not None and num_labels != len(self.id2label):
                raise ValueError(f"num_labels={num_labels} disagrees with id2label, which has {len(id2label)} labels")
        else:
            self.id2label = {i: f"LABEL_{i}" for i in range(2 if num_labels is None else int(num_labels))}
        self.label2id = (
            {str(k): int(v) for k, v in label2id.items()}
            if label2id is not None
            else {v: k for k, v in self.id2label.items()}
        )
        kwargs.pop("model_type", None)
        self.extra: dict[str, Any] = kwargs
        self.validate()

    # -- labels ---------------------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        """Number of labels of the classification heads (``len(id2label)``)."""
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        if value != self.num_labels:
            self.id2label = {i: f"LABEL_{i}" for i in range(int(value))}
            self.label2id = {v: k for k, v in self.id2label.items()}

    # -- derived sizes --------------------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        """Per-head width ``D = hidden_size // num_attention_heads``; also the rotary table width."""
        return self.hidden_size // self.num_attention_heads

    @property
    def has_embeddings_project(self) -> bool:
        """Whether the model projects embeddings (width E) up to the hidden width (E != hidden_size)."""
        return self.embedding_size != self.hidden_size

    @property
    def has_lm_transform(self) -> bool:
        """Whether the LM head has V1's transform (dense, activation, LayerNorm) and output bias before the tied
        decoder; RoFormer-V2 (``norm_type="rms_norm"``) has the tied decoder alone, as in both of its oracles."""
        return self.norm_type == "layer_norm"

    # -- validation -----------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check that the configuration describes a working model; raise ValueError naming the field."""
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(
                f"the head size hidden_size / num_attention_heads = {self.head_dim} must be even: rotary "
                "position embeddings rotate pairs of features"
            )
        if not isinstance(self.hidden_act, str) or self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            raise ValueError(f"layer_norm_eps must be a positive number, got {self.layer_norm_eps!r}")
        if self.chunk_size_feed_forward < 0:
            raise ValueError(f"chunk_size_feed_forward must be >= 0, got {self.chunk_size_feed_forward}")
        if self.add_cross_attention and not self.is_decoder:
            raise ValueError("add_cross_attention=True requires is_decoder=True")
        if self.problem_type is not None and self.problem_type not in _PROBLEM_TYPES:
            raise ValueError(f"problem_type {self.problem_type!r} is not one of {_PROBLEM_TYPES}")
        if self.num_labels <= 0:
            raise ValueError(f"num_labels must be positive, got {self.num_labels}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})")
        if self.norm_type not in NORM_TYPES:
            raise ValueError(f"norm_type must be one of {NORM_TYPES}, got {self.norm_type!r}")
        for name in ("use_bias", "add_pooling_layer", "unilm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.pooler_activation, str) or self.pooler_activation not in ACTIVATIONS:
            raise ValueError(
                f"pooler_activation {self.pooler_activation!r} is not one of {sorted(ACTIVATIONS)} "
                "('tanh' for a BERT pooler, 'linear' for RoFormer-Sim)"
            )
        if not self.has_lm_transform and self.has_embeddings_project:
            raise ValueError(
                f"norm_type='rms_norm' needs embedding_size == hidden_size (got {self.embedding_size} and "
                f"{self.hidden_size}): the RoFormer-V2 LM head is the tied [vocab, embedding_size] matrix alone, with "
                "no hidden->embedding mapping"
            )

    # -- (de)serialization ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field, the labels and the kept extra keys, as JSON-ready values (``model_type`` included)."""
        out: dict[str, Any] = dict(copy.deepcopy(self.extra))
        for key in _DEFAULTS:
            out[key] = copy.deepcopy(getattr(self, key))
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = dict(self.label2id)
        out["model_type"] = MODEL_TYPE
        return dict(sorted(out.items()))

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **overrides: Any) -> RoFormerConfig:
        """Build a config from a ``config.json``-style dict; ``overrides`` replace its values."""
        if not isinstance(config_dict, dict):
            raise TypeError(f"config must be a dict, got {type(config_dict).__name__}")
        model_type = config_dict.get("model_type", MODEL_TYPE)
        if model_type != MODEL_TYPE:
            raise ValueError(f"config has model_type {model_type!r}, expected {MODEL_TYPE!r}")
        merged = {**config_dict, **overrides}
        if "num_labels" in overrides and "id2label" not in overrides:
            merged.pop("id2label", None)
            merged.pop("label2id", None)
        return cls(**merged)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``config.json`` into ``save_directory`` (created if needed), atomically; return its path."""
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CONFIG_NAME
        atomic_write_text(path, self.to_json_string())
        return path

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> RoFormerConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data, **overrides)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides: Any) -> RoFormerConfig:
        """Read ``config.json`` from a checkpoint directory, a ``.json`` file path or a hub id (only its
        ``config.json`` is downloaded; :data:`roformer_core.hub.HUB_KWARGS` among ``overrides`` go to the hub).
        A released checkpoint's id gets the fields it needs (:mod:`roformer_core.known_checkpoints`); ``overrides``
        win."""
        hub_kwargs = pop_hub_kwargs(overrides)
        overrides = {**known_overrides(path), **overrides}
        if Path(path).suffix != ".json":
            path = resolve_checkpoint(path, files="config", **hub_kwargs)
        path = Path(path)
        if path.suffix != ".json":
            check_not_a_file(path)
        if path.is_dir():
            path = path / CONFIG_NAME
            if not path.is_file():
                raise FileNotFoundError(f"no {CONFIG_NAME} in checkpoint directory {path.parent}")
        return cls.from_json_file(path, **overrides)

    def copy(self, **overrides: Any) -> RoFormerConfig:
        """A deep copy, with ``overrides`` applied (and validated)."""
        return type(self).from_dict(self.to_dict(), **overrides)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RoFormerConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"
