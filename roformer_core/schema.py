"""The weight schema: every parameter of every model class, written once.

A parameter's canonical name is the reference PyTorch state-dict key (``roformer.encoder.layer.0.attention.self.
query.weight``); its shape is a function of the config; its ``kind`` says how other frameworks store it (a Linear
weight is ``[out, in]`` here and a transposed ``[in, out]`` kernel in Keras and Flax). Every backend's loader and
saver, and the conversion layer, go through :func:`model_schema` and :func:`check_state_dict`; none keeps its own
list of names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .config import RoFormerConfig
from .heads import BASE_PREFIX, HeadSpec, get_head

# Parameter kinds.
LINEAR = "linear"  # Linear weight [out, in]
BIAS = "bias"  # bias of a Linear, or of the LM head [V]
EMBEDDING = "embedding"  # lookup table [rows, width]
NORM_WEIGHT = "norm_weight"  # LayerNorm scale
NORM_BIAS = "norm_bias"  # LayerNorm shift
ROTARY_TABLE = "rotary_table"  # the stored sin/cos table: deterministic, any length accepted on load

#: How a fresh parameter of each kind starts (the reference's ``_init_weights``): ``"normal"`` draws from
#: N(0, config.initializer_range**2) (an embedding's ``pad_token_id`` row is then zeroed), ``"zeros"`` and
#: ``"ones"`` fill. The rotary table is computed, never drawn.
INITIALIZERS: dict[str, str] = {
    LINEAR: "normal",
    EMBEDDING: "normal",
    BIAS: "zeros",
    NORM_WEIGHT: "ones",
    NORM_BIAS: "zeros",
}


def zeroed_row(spec: ParamSpec, config: RoFormerConfig) -> int | None:
    """The row a freshly drawn ``spec`` has zeroed: ``pad_token_id`` of the word embeddings (PyTorch's
    ``padding_idx``), None for every other parameter."""
    if spec.kind == EMBEDDING and spec.name.endswith(WORD_EMBEDDINGS_KEY):
        return config.pad_token_id
    return None


#: The word-embedding key (relative to the encoder prefix).
WORD_EMBEDDINGS_KEY = "embeddings.word_embeddings.weight"

#: The stored sin/cos table key (relative to the encoder prefix).
ROTARY_TABLE_KEY = "encoder.embed_positions.weight"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter.

    Attributes:
        name: canonical name (reference PyTorch state-dict key).
        shape: shape in the canonical (PyTorch) layout.
        kind: one of ``linear``, ``bias``, ``embedding``, ``norm_weight``, ``norm_bias``, ``rotary_table``.
        tied_to: canonical name of the parameter this one shares storage with, or None. A tied parameter is
            never stored twice: savers write only ``tied_to``; loaders accept the tied key and ignore it.
    """

    name: str
    shape: tuple[int, ...]
    kind: str
    tied_to: str | None = None

    @property
    def stored(self) -> bool:
        """Whether savers write this parameter (tied copies are not written)."""
        return self.tied_to is None


def _linear(name: str, out_features: int, in_features: int) -> list[ParamSpec]:
    return [
        ParamSpec(f"{name}.weight", (out_features, in_features), LINEAR),
        ParamSpec(f"{name}.bias", (out_features,), BIAS),
    ]


def _layer_norm(name: str, width: int) -> list[ParamSpec]:
    return [
        ParamSpec(f"{name}.weight", (width,), NORM_WEIGHT),
        ParamSpec(f"{name}.bias", (width,), NORM_BIAS),
    ]


def _attention_block(name: str, width: int) -> list[ParamSpec]:
    specs: list[ParamSpec] = []
    for projection in ("query", "key", "value"):
        specs += _linear(f"{name}.self.{projection}", width, width)
    specs += _linear(f"{name}.output.dense", width, width)
    specs += _layer_norm(f"{name}.output.LayerNorm", width)
    return specs


def encoder_schema(config: RoFormerConfig, prefix: str = "") -> list[ParamSpec]:
    """Parameters of the bare model (embeddings, optional projection, rotary table, layers)."""
    E, D, I = config.embedding_size, config.hidden_size, config.intermediate_size
    specs = [
        ParamSpec(f"{prefix}{WORD_EMBEDDINGS_KEY}", (config.vocab_size, E), EMBEDDING),
        ParamSpec(f"{prefix}embeddings.token_type_embeddings.weight", (config.type_vocab_size, E), EMBEDDING),
        *_layer_norm(f"{prefix}embeddings.LayerNorm", E),
    ]
    if config.has_embeddings_project:
        specs += _linear(f"{prefix}embeddings_project", D, E)
    specs.append(
        ParamSpec(f"{prefix}{ROTARY_TABLE_KEY}", (config.max_position_embeddings, config.head_dim), ROTARY_TABLE)
    )
    for n in range(config.num_hidden_layers):
        layer = f"{prefix}encoder.layer.{n}"
        specs += _attention_block(f"{layer}.attention", D)
        if config.add_cross_attention:
            specs += _attention_block(f"{layer}.crossattention", D)
        specs += _linear(f"{layer}.intermediate.dense", I, D)
        specs += _linear(f"{layer}.output.dense", D, I)
        specs += _layer_norm(f"{layer}.output.LayerNorm", D)
    return specs


def lm_head_schema(config: RoFormerConfig, prefix: str) -> list[ParamSpec]:
    """The masked / causal LM head ``cls.predictions`` (transform D->E, decoder E->V tied to the embeddings)."""
    E, D, V = config.embedding_size, config.hidden_size, config.vocab_size
    word_embeddings = f"{prefix}{WORD_EMBEDDINGS_KEY}"
    return [
        ParamSpec("cls.predictions.bias", (V,), BIAS),
        *_linear("cls.predictions.transform.dense", E, D),
        *_layer_norm("cls.predictions.transform.LayerNorm", E),
        ParamSpec(
            "cls.predictions.decoder.weight",
            (V, E),
            LINEAR,
            tied_to=word_embeddings if config.tie_word_embeddings else None,
        ),
        # The reference's decoder bias is the same tensor as cls.predictions.bias whatever tie_word_embeddings says.
        ParamSpec("cls.predictions.decoder.bias", (V,), BIAS, tied_to="cls.predictions.bias"),
    ]


def head_schema(config: RoFormerConfig, head: HeadSpec) -> list[ParamSpec]:
    """Parameters of a head alone (without the encoder)."""
    D, num_labels = config.hidden_size, config.num_labels
    if head.name == "model":
        return []
    if head.name in ("masked_lm", "causal_lm"):
        return lm_head_schema(config, head.prefix)
    if head.name == "sequence_classification":
        return _linear("classifier.dense", D, D) + _linear("classifier.out_proj", num_labels, D)
    if head.name == "multiple_choice":
        return _linear("classifier", 1, D)
    if head.name == "token_classification":
        return _linear("classifier", num_labels, D)
    if head.name == "question_answering":
        return _linear("qa_outputs", head.num_labels, D)
    raise ValueError(f"no schema for head {head.name!r}")


def model_schema(config: RoFormerConfig, head: HeadSpec | str) -> list[ParamSpec]:
    """Every parameter of a model class, in a stable order.

    Args:
        config: the model config.
        head: a :class:`HeadSpec` or its name (``"masked_lm"``, ``"RoFormerForMaskedLM"``, ...).

    Returns:
        the encoder parameters (with the head's ``roformer.`` prefix) followed by the head's own.
    """
    head = get_head(head) if isinstance(head, str) else head
    return encoder_schema(config, head.prefix) + head_schema(config, head)


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: lists every missing, unexpected and mis-shaped parameter."""

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple, tuple]],
        source: str = "",
    ):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"checkpoint{' ' + source if source else ''} does not match the model:"]
        lines += [f"  missing: {name}" for name in missing]
        lines += [f"  unexpected: {name}" for name in unexpected]
        lines += [
            f"  shape mismatch: {name}: checkpoint {list(got)} vs model {list(want)}" for name, got, want in mismatched
        ]
        super().__init__("\n".join(lines))


def check_state_dict(
    schema: Iterable[ParamSpec],
    state: Mapping[str, np.ndarray],
    source: str = "",
) -> dict[str, np.ndarray]:
    """Validate a canonical state dict against a schema and return the arrays to load.

    Every stored parameter must be present with its exact shape; tied copies may be absent (when present,
    their value is ignored, as the reference re-ties after loading); the rotary table may have any number of
    rows (it is deterministic and regenerated); every key must be used. All problems are collected and raised together.

    Args:
        schema: the model's :func:`model_schema`.
        state: canonical name -> array (anything with ``.shape``).
        source: description of the checkpoint for error messages.

    Returns:
        name -> array for every untied, non-table parameter.

    Raises:
        CheckpointMismatchError: listing every missing, unexpected and mis-shaped parameter by name.
    """
    missing: list[str] = []
    mismatched: list[tuple[str, tuple, tuple]] = []
    used: set[str] = set()
    out: dict[str, np.ndarray] = {}
    for spec in schema:
        if spec.name not in state:
            if spec.stored and spec.kind != ROTARY_TABLE:
                missing.append(spec.name)
            continue
        used.add(spec.name)
        got = tuple(state[spec.name].shape)
        if spec.kind == ROTARY_TABLE:
            if len(got) != 2 or got[1] != spec.shape[1]:
                mismatched.append((spec.name, got, (-1, spec.shape[1])))
            continue
        if got != spec.shape:
            mismatched.append((spec.name, got, spec.shape))
            continue
        if spec.stored:
            out[spec.name] = state[spec.name]
    unexpected = sorted(name for name in state if name not in used)
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched, source)
    return out


def untie(schema: Iterable[ParamSpec], state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fill the tied copies of a stored-only state dict (the inverse of dropping them on save)."""
    full = dict(state)
    for spec in schema:
        if spec.tied_to is not None and spec.tied_to in full:
            full[spec.name] = full[spec.tied_to]
    return full


@dataclass
class LoadPlan:
    """What to load from a checkpoint into one model class.

    Attributes:
        arrays: canonical name -> array for every parameter found (validated).
        newly_initialized: this class's head parameters absent from the checkpoint (keep their fresh values).
        ignored: checkpoint parameters of another head, not used by this class.
    """

    arrays: dict[str, np.ndarray]
    newly_initialized: list[str]
    ignored: list[str]


# The top-level modules of the heads (every other canonical name is under the encoder's ``roformer.`` prefix).
HEAD_ROOTS = ("cls.", "classifier.", "qa_outputs.")


def head_owned(name: str) -> bool:
    """Whether a canonical name belongs to some head rather than the encoder."""
    return name.startswith(HEAD_ROOTS)


def resolve_checkpoint(
    config: RoFormerConfig, head: HeadSpec | str, state: Mapping[str, np.ndarray], source: str = ""
) -> LoadPlan:
    """Match a checkpoint saved from any model class to one model class.

    A bare-model checkpoint (no ``roformer.`` prefix) loads into a head model and vice versa; parameters of
    another head are ignored and this head's missing parameters are reported as newly initialized (the usual
    "load a pretrained encoder, fine-tune a new head"). Anything else that does not fit raises
    :class:`CheckpointMismatchError` listing every problem.
    """
    head = get_head(head) if isinstance(head, str) else head
    schema = model_schema(config, head)
    base_key = WORD_EMBEDDINGS_KEY
    state = dict(state)
    if head.prefix and base_key in state and head.prefix + base_key not in state:
        state = {(k if head_owned(k) else head.prefix + k): v for k, v in state.items()}
    elif not head.prefix and base_key not in state and BASE_PREFIX + base_key in state:
        state = {k[len(BASE_PREFIX) :] if k.startswith(BASE_PREFIX) else k: v for k, v in state.items()}
    own = {spec.name for spec in schema}
    ignored = sorted(k for k in state if k not in own and head_owned(k))
    newly = [spec.name for spec in schema if spec.stored and head_owned(spec.name) and spec.name not in state]
    for name in ignored:
        del state[name]
    active = [spec for spec in schema if spec.name not in newly]
    return LoadPlan(check_state_dict(active, state, source), newly, ignored)
