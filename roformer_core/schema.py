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

#: The pooler's module (relative to the encoder prefix): ``pooler.dense.{weight,bias}``, as in JunnYu's RoFormer.
POOLER = "pooler.dense"

# Parameters whose presence tells a checkpoint's family fields (relative to the encoder prefix).
_EMBEDDING_NORM_KEY = "embeddings.LayerNorm.weight"
_FIRST_QUERY = "encoder.layer.0.attention.self.query"


def infer_variant_fields(names: Iterable[str]) -> dict[str, object]:
    """The family config fields a set of canonical parameter names implies (with or without the encoder prefix).

    ``norm_type`` and ``add_pooling_layer`` are inferred when the word embeddings are among the names,
    ``use_bias`` when the first query projection is; a field the names cannot tell is left out. Ports call this on
    a checkpoint's keys to give a model the pooler its checkpoint carries; the converter, to tell a RoFormer-V2
    original checkpoint (whose ``bert_config.json`` does not say so) from a V1 one.

    Returns:
        a subset of ``{"norm_type": "layer_norm" | "rms_norm", "use_bias": bool, "add_pooling_layer": bool}``.
    """
    names = list(names)

    def has(suffix: str) -> bool:
        return any(name == suffix or name.endswith("." + suffix) for name in names)

    fields: dict[str, object] = {}
    if has(WORD_EMBEDDINGS_KEY):
        fields["norm_type"] = "layer_norm" if has(_EMBEDDING_NORM_KEY) else "rms_norm"
        fields["add_pooling_layer"] = has(f"{POOLER}.weight")
    if has(f"{_FIRST_QUERY}.weight"):
        fields["use_bias"] = has(f"{_FIRST_QUERY}.bias")
    return fields


_FIELD_WORDS: dict[str, dict[object, str]] = {
    "norm_type": {"layer_norm": "LayerNorm weights", "rms_norm": "no LayerNorm weights"},
    "use_bias": {True: "biases", False: "no biases"},
    "add_pooling_layer": {True: f"a pooler ({POOLER})", False: "no pooler"},
}


def variant_mismatch_hint(model_fields: Mapping[str, object], checkpoint_fields: Mapping[str, object]) -> str:
    """One sentence saying which family config fields make a model fit a checkpoint ("" when none differ).

    Args:
        model_fields / checkpoint_fields: :func:`infer_variant_fields` of the model's schema and of the checkpoint.
    """
    differ = [f for f in _FIELD_WORDS if f in model_fields and f in checkpoint_fields]
    differ = [f for f in differ if model_fields[f] != checkpoint_fields[f]]
    if not differ:
        return ""
    has = " and ".join(_FIELD_WORDS[f][checkpoint_fields[f]] for f in differ)
    setting = ", ".join(f"{f}={checkpoint_fields[f]!r}" for f in differ)
    kind = ""
    if "norm_type" in differ and checkpoint_fields["norm_type"] == "rms_norm":
        kind = ": it is a RoFormer-V2 checkpoint"
    elif "norm_type" in differ:
        kind = ": it is a RoFormer (V1) checkpoint, not a RoFormer-V2 one"
    return f"this checkpoint has {has}{kind}; load it with {setting}"


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


def _linear(name: str, out_features: int, in_features: int, bias: bool = True) -> list[ParamSpec]:
    weight = ParamSpec(f"{name}.weight", (out_features, in_features), LINEAR)
    return [weight, ParamSpec(f"{name}.bias", (out_features,), BIAS)] if bias else [weight]


def _layer_norm(name: str, width: int) -> list[ParamSpec]:
    return [
        ParamSpec(f"{name}.weight", (width,), NORM_WEIGHT),
        ParamSpec(f"{name}.bias", (width,), NORM_BIAS),
    ]


def _norm(name: str, width: int, config: RoFormerConfig) -> list[ParamSpec]:
    """An encoder norm: LayerNorm's scale and shift, or nothing for V2's weightless RMS norm."""
    return _layer_norm(name, width) if config.norm_type == "layer_norm" else []


def _attention_block(name: str, width: int, config: RoFormerConfig) -> list[ParamSpec]:
    specs: list[ParamSpec] = []
    for projection in ("query", "key", "value"):
        specs += _linear(f"{name}.self.{projection}", width, width, config.use_bias)
    specs += _linear(f"{name}.output.dense", width, width, config.use_bias)
    specs += _norm(f"{name}.output.LayerNorm", width, config)
    return specs


def encoder_schema(config: RoFormerConfig, prefix: str = "") -> list[ParamSpec]:
    """Parameters of the bare model (embeddings, optional projection, rotary table, layers, optional pooler).

    The family fields decide what exists: ``norm_type="rms_norm"`` has no norm weights, ``use_bias=False`` no
    biases in query/key/value/attention output/intermediate/output (``embeddings_project`` and the pooler keep
    theirs, as in JunnYu's RoFormer-V2), ``add_pooling_layer`` adds ``pooler.dense``.
    """
    E, D, I = config.embedding_size, config.hidden_size, config.intermediate_size
    specs = [
        ParamSpec(f"{prefix}{WORD_EMBEDDINGS_KEY}", (config.vocab_size, E), EMBEDDING),
        ParamSpec(f"{prefix}embeddings.token_type_embeddings.weight", (config.type_vocab_size, E), EMBEDDING),
        *_norm(f"{prefix}embeddings.LayerNorm", E, config),
    ]
    if config.has_embeddings_project:
        specs += _linear(f"{prefix}embeddings_project", D, E)
    specs.append(
        ParamSpec(f"{prefix}{ROTARY_TABLE_KEY}", (config.max_position_embeddings, config.head_dim), ROTARY_TABLE)
    )
    for n in range(config.num_hidden_layers):
        layer = f"{prefix}encoder.layer.{n}"
        specs += _attention_block(f"{layer}.attention", D, config)
        if config.add_cross_attention:
            specs += _attention_block(f"{layer}.crossattention", D, config)
        specs += _linear(f"{layer}.intermediate.dense", I, D, config.use_bias)
        specs += _linear(f"{layer}.output.dense", D, I, config.use_bias)
        specs += _norm(f"{layer}.output.LayerNorm", D, config)
    if config.add_pooling_layer:
        specs += _linear(f"{prefix}{POOLER}", D, D)
    return specs


def lm_head_schema(config: RoFormerConfig, prefix: str) -> list[ParamSpec]:
    """The masked / causal LM head ``cls.predictions`` (transform D->E, decoder E->V tied to the embeddings); for
    RoFormer-V2 (not ``config.has_lm_transform``) the decoder alone, with no bias."""
    E, D, V = config.embedding_size, config.hidden_size, config.vocab_size
    word_embeddings = f"{prefix}{WORD_EMBEDDINGS_KEY}"
    decoder = ParamSpec(
        "cls.predictions.decoder.weight",
        (V, E),
        LINEAR,
        tied_to=word_embeddings if config.tie_word_embeddings else None,
    )
    if not config.has_lm_transform:
        return [decoder]
    return [
        ParamSpec("cls.predictions.bias", (V,), BIAS),
        *_linear("cls.predictions.transform.dense", E, D),
        *_layer_norm("cls.predictions.transform.LayerNorm", E),
        decoder,
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


#: The axis along which a vocabulary-sized parameter has one entry per token, in the canonical layout (TF and Flax
#: store the untied LM decoder as a transposed ``[E, V]`` kernel, whose token axis is therefore the last).
VOCAB_AXIS = 0


def vocab_params(config: RoFormerConfig, head: HeadSpec | str) -> list[ParamSpec]:
    """The stored parameters of a model class that have one row per vocabulary token (along :data:`VOCAB_AXIS`).

    They are the word embeddings and, for the LM heads, the output bias ``cls.predictions.bias`` and, when not tied
    to the embeddings, the decoder weight. Their tied copies (the decoder weight when tied, the decoder bias)
    follow through the ports' ties. ``resize_token_embeddings`` in every port resizes exactly these.
    """
    head = get_head(head) if isinstance(head, str) else head
    return [
        spec
        for spec in model_schema(config, head)
        if spec.stored
        and (
            spec.name.endswith(WORD_EMBEDDINGS_KEY)
            or spec.name in ("cls.predictions.bias", "cls.predictions.decoder.weight")
        )
    ]


def resized_vocab_size(vocab_size: int, new_num_tokens: int | None, pad_to_multiple_of: int | None = None) -> int:
    """The vocabulary size ``resize_token_embeddings(new_num_tokens, pad_to_multiple_of)`` resizes to.

    As transformers: ``new_num_tokens=None`` keeps the current size; ``pad_to_multiple_of`` rounds the size up to a
    multiple of it (e.g. 64, for tensor cores).

    Raises:
        TypeError / ValueError: a size or multiple that is not a positive integer.
    """
    size = vocab_size if new_num_tokens is None else new_num_tokens
    for name, value in (("new_num_tokens", size), ("pad_to_multiple_of", pad_to_multiple_of)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if pad_to_multiple_of is not None:
        size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
    return int(size)


def _resized_rows(
    spec: ParamSpec, array: np.ndarray, new_num_tokens: int, config: RoFormerConfig, rng: np.random.Generator
) -> np.ndarray:
    """``array`` (canonical layout) grown or shrunk to ``new_num_tokens`` rows; new rows drawn by ``spec.kind``."""
    array = np.asarray(array)
    old = array.shape[VOCAB_AXIS]
    if new_num_tokens <= old:
        return array[:new_num_tokens].copy()
    shape = (new_num_tokens - old, *array.shape[1:])
    if INITIALIZERS[spec.kind] == "normal":
        fresh = rng.normal(0.0, config.initializer_range, size=shape)
    else:
        fresh = np.zeros(shape)
    return np.concatenate([array, fresh.astype(array.dtype)], axis=VOCAB_AXIS)


def resize_vocab(
    config: RoFormerConfig,
    head: HeadSpec | str,
    arrays: Mapping[str, np.ndarray],
    new_num_tokens: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Every :func:`vocab_params` parameter resized to ``new_num_tokens`` rows: what ``resize_token_embeddings``
    does in every port (the port reads these arrays from its model and writes the results back).

    Rows ``[0, min(old, new))`` are kept as they are; rows past the old size start as a fresh parameter of the
    same kind does (:data:`INITIALIZERS`: N(0, initializer_range**2) for the embeddings and an untied decoder,
    zeros for the output bias). ``pad_token_id`` lies below the old size, so its row is an old row. (transformers'
    default ``mean_resizing=True`` draws new embedding rows around the old rows' mean instead.)

    Args:
        config: the model config (still with the old ``vocab_size``).
        head: the model class's head.
        arrays: canonical name -> current value ``[V, ...]`` (canonical layout) of each vocab parameter.
        new_num_tokens: the new ``V`` (see :func:`resized_vocab_size`).
        seed: seeds the new rows, drawn in :func:`vocab_params` order: the same seed gives the same rows in every
            framework.

    Returns:
        canonical name -> new array ``[new_num_tokens, ...]`` of the old array's dtype.

    Raises:
        ValueError: ``new_num_tokens`` would drop the ``pad_token_id`` row.
    """
    config.copy(vocab_size=new_num_tokens)  # validates: pad_token_id must stay a row of the new table
    rng = np.random.default_rng(seed)
    return {
        spec.name: _resized_rows(spec, arrays[spec.name], new_num_tokens, config, rng)
        for spec in vocab_params(config, head)
    }


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: lists every missing, unexpected and mis-shaped parameter."""

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple, tuple]],
        source: str = "",
        hint: str = "",
    ):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"checkpoint{' ' + source if source else ''} does not match the model:"]
        lines += [f"  {hint}"] if hint else []
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
        CheckpointMismatchError: listing every missing, unexpected and mis-shaped parameter by name; first, when
            the checkpoint is another member of the RoFormer family (V2 weights for a V1 config, a pooler the
            config lacks, ...), which config fields to set (:func:`roformer_core.variants.variant_mismatch_hint`).
    """
    schema = list(schema)
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
        hint = variant_mismatch_hint(
            infer_variant_fields(spec.name for spec in schema), infer_variant_fields(state.keys())
        )
        raise CheckpointMismatchError(missing, unexpected, mismatched, source, hint)
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


def _is_pooler(name: str, head: HeadSpec) -> bool:
    return name.startswith(f"{head.prefix}{POOLER}.")


def resolve_checkpoint(
    config: RoFormerConfig, head: HeadSpec | str, state: Mapping[str, np.ndarray], source: str = ""
) -> LoadPlan:
    """Match a checkpoint saved from any model class to one model class.

    A bare-model checkpoint (no ``roformer.`` prefix) loads into a head model and vice versa; parameters of
    another head are ignored and this head's missing parameters are reported as newly initialized (the usual
    "load a pretrained encoder, fine-tune a new head"), and so is the pooler of a config with
    ``add_pooling_layer`` when the checkpoint has none (as the reference's BERT pooler). Anything else that does
    not fit (V2 weights for a V1 config, a pooler the config lacks, ...) raises
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
    newly = [
        spec.name
        for spec in schema
        if spec.stored and (head_owned(spec.name) or _is_pooler(spec.name, head)) and spec.name not in state
    ]
    for name in ignored:
        del state[name]
    active = [spec for spec in schema if spec.name not in newly]
    return LoadPlan(check_state_dict(active, state, source), newly, ignored)
