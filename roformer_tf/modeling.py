"""RoFormer in TensorFlow / Keras 3: the bare model and the six heads, built from the blocks of :mod:`.layers`.

Every canonical parameter name of :mod:`roformer_core.schema` resolves to one Keras variable through the blocks'
attribute names (see :func:`_resolve_variable`), for every member of the family (docs/variants.md). Unlike the
reference's TF port, the rotary table is not a weight (it is computed in the graph, for any length), the causal LM
is causal, head_mask works, losses are scalar means and tuple outputs keep every field.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from roformer_core import losses
from roformer_core.checkpoint import load_checkpoint, save_checkpoint
from roformer_core.config import RoFormerConfig
from roformer_core.constants import mask_fill_value
from roformer_core.heads import (
    CAUSAL_LM,
    MASKED_LM,
    MODEL,
    MULTIPLE_CHOICE,
    QUESTION_ANSWERING,
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    HeadSpec,
)
from roformer_core.outputs import ModelOutput, output_class_for
from roformer_core.rotary import sinusoidal_table
from roformer_core.schema import (
    INITIALIZERS,
    ROTARY_TABLE,
    WORD_EMBEDDINGS_KEY,
    model_schema,
    resize_vocab,
    resized_vocab_size,
    resolve_checkpoint,
    vocab_params,
    zeroed_row,
)
from roformer_core.validation import ID_INPUTS, check_attention_mask, check_class_labels, check_id_range, id_limit

from .generation import TFGenerationMixin
from .keras_integration import KerasModelMixin
from .layers import (
    _ATTRIBUTE_NAMES,
    _DEFER_INIT,
    PastKeyValues,
    TFRoFormerClassificationHead,
    TFRoFormerEmbeddings,
    TFRoFormerEncoder,
    TFRoFormerOnlyMLMHead,
    TFRoFormerPooler,
    _BuiltAtConstruction,
    _dense,
    _in_graph,
    _PaddingRowZeroNormal,
    _shape,
    _xla_compiling,
    unilm_keep,
)

logger = logging.getLogger(__name__)

# ---- outputs -----------------------------------------------------------------------------------------------------


def _nest_compatible(base: type[ModelOutput]) -> type[ModelOutput]:
    """The core output class, also constructible from ``(key, value)`` pairs.

    ``tf.nest`` (tf.function, tf.data, distribution strategies) rebuilds mappings as ``type(m)(pairs)``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            (pairs,) = args
            kwargs = {**dict(pairs), **kwargs}
        base.__init__(self, **kwargs)

    return type(base.__name__, (base,), {"__init__": __init__, "__doc__": base.__doc__, "__module__": __name__})


_OUTPUT_CLASSES: dict[str, type[ModelOutput]] = {}


def _output_class(head: HeadSpec) -> type[ModelOutput]:
    if head.name not in _OUTPUT_CLASSES:
        _OUTPUT_CLASSES[head.name] = _nest_compatible(output_class_for(head))
    return _OUTPUT_CLASSES[head.name]


# ---- models ----------------------------------------------------------------------------------------------------


def _merge_batch(input_ids: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Accept ``model(dict)`` (how Keras passes a batch) as well as ``model(input_ids, **kwargs)``."""
    if not isinstance(input_ids, dict):
        return {**kwargs, "input_ids": input_ids}
    known = ["input_ids", *kwargs]
    unknown = set(input_ids) - set(known)
    if unknown:
        raise ValueError(f"unknown input(s) {sorted(unknown)}; expected some of {', '.join(known)}")
    merged = {**kwargs, "input_ids": None}
    for key, value in input_ids.items():
        if kwargs.get(key) is not None:
            raise ValueError(f"{key} was given both in the input dict and as an argument")
        merged[key] = value
    return merged


def _resolve_variable(model: keras.layers.Layer, name: str) -> tuple[keras.Variable, bool]:
    """The Keras variable holding canonical parameter ``name`` and whether it is stored transposed."""
    obj: Any = model
    *path, leaf = name.split(".")
    for part in path:
        obj = obj[int(part)] if part.isdigit() else getattr(obj, _ATTRIBUTE_NAMES.get(part, part))
    if isinstance(obj, keras.layers.Dense):
        return (obj.kernel, True) if leaf == "weight" else (obj.bias, False)
    if isinstance(obj, keras.layers.Embedding):
        return obj.embeddings, False
    if isinstance(obj, keras.layers.LayerNormalization):
        return (obj.gamma if leaf == "weight" else obj.beta), False
    return getattr(obj, leaf), False


def _cross_entropy(
    logits: tf.Tensor, labels: tf.Tensor, head_name: str | None = None, ignore_index: Any = losses.IGNORE_INDEX
) -> tf.Tensor:
    """Mean float32 cross-entropy of ``logits [..., C]`` against ``labels [...]``, skipping ``ignore_index``.

    With ``head_name`` the labels are first checked to be class indices (:func:`_checked_labels`, naming the
    head's ``losses.CLASS_LABEL_FIELDS`` entry); without it they are known to be in range (clamped QA positions).
    """
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1, _shape(logits)[-1]])
    labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
    if head_name is not None:
        labels = _checked_labels(labels, _shape(logits)[-1], losses.CLASS_LABEL_FIELDS[head_name])
    keep = labels != tf.cast(ignore_index, tf.int64)
    per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.where(keep, labels, 0), logits=logits)
    keep = tf.cast(keep, tf.float32)
    return tf.reduce_sum(per_token * keep) / tf.reduce_sum(keep)  # nan when every target is ignored, as in PT


def _checked_labels(labels: tf.Tensor, classes: Any, field: str) -> tf.Tensor:
    """``labels`` (int64), checked to hold class indices in ``[0, classes)`` or IGNORE_INDEX: eagerly a ValueError
    (``validation.check_class_labels``); in a graph asserts, an InvalidArgumentError (XLA drops them: its loss is
    then NaN, and Keras' fit checks each batch before the compiled step instead)."""
    if _xla_compiling():
        return labels
    if not _in_graph():
        if tf.size(labels) > 0:
            as_index = _ignored_as_zero(labels)
            check_class_labels(
                "labels", int(tf.reduce_min(as_index)), int(tf.reduce_max(as_index)), int(classes), field
            )
        return labels
    with tf.control_dependencies(_class_label_asserts(labels, classes, field)):
        return tf.identity(labels)


def _ignored_as_zero(labels: tf.Tensor) -> tf.Tensor:
    """int64 ``labels`` with IGNORE_INDEX replaced by 0, so that ignored labels pass a ``[0, classes)`` check."""
    labels = tf.cast(labels, tf.int64)
    return tf.where(labels == losses.IGNORE_INDEX, tf.zeros_like(labels), labels)


def _class_label_asserts(labels: tf.Tensor, classes: Any, field: str) -> list[Any]:
    """Graph asserts that ``labels`` other than IGNORE_INDEX lie in ``[0, classes)``; their InvalidArgumentError
    names the labels and ``field``."""
    as_index = _ignored_as_zero(labels)
    known = isinstance(classes, int)
    valid = f"labels must be in [0, {classes if known else field}) or {losses.IGNORE_INDEX} (ignored)"
    return [
        tf.debugging.assert_non_negative(as_index, message=f"labels contains a negative label: {valid}"),
        tf.debugging.assert_less(
            as_index,
            tf.cast(classes, tf.int64),
            message=f"labels out of range for {f'{field}={classes}' if known else field}: {valid}",
        ),
    ]


def _id_range_asserts(name: str, ids: tf.Tensor, config: RoFormerConfig) -> list[Any]:
    """Graph asserts that ``ids`` (any shape, integer) lie in ``[0, size)`` (``id_limit``); their
    InvalidArgumentError names ``name``."""
    size, field = id_limit(name, config)
    return [
        tf.debugging.assert_non_negative(ids, message=f"{name} contains a negative id; ids must be in [0, {field})"),
        tf.debugging.assert_less(ids, tf.cast(size, ids.dtype), message=f"{name} out of range for {field}={size}"),
    ]


class TFRoFormerPreTrainedModel(_BuiltAtConstruction, KerasModelMixin, keras.Model):
    """Shared loading, saving, training hooks, serving export and input checking of every RoFormer class."""

    head: HeadSpec = MODEL

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        if not isinstance(config, RoFormerConfig):
            raise TypeError(f"config must be a RoFormerConfig, got {type(config).__name__}")
        self.head.adapt_config(config)
        config.validate()
        super().__init__(**kwargs)
        self.config = config

    # -- state ------------------------------------------------------------------------------------------------
    def canonical_state_dict(self) -> dict[str, np.ndarray]:
        """The stored (untied) parameters as float32 numpy arrays under their canonical names.

        The rotary table is written with ``max_position_embeddings`` rows from the core's formula.
        """
        out = {}
        for spec in model_schema(self.config, self.head):
            if not spec.stored:
                continue
            if spec.kind == ROTARY_TABLE:
                out[spec.name] = sinusoidal_table(*spec.shape)
                continue
            variable, transposed = _resolve_variable(self, spec.name)
            array = np.asarray(variable.numpy(), dtype=np.float32)
            out[spec.name] = np.ascontiguousarray(array.T if transposed else array)
        return out

    def load_canonical_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        """Assign canonical numpy arrays (already validated against the schema) to the Keras variables."""
        for name, array in arrays.items():
            variable, transposed = _resolve_variable(self, name)
            array = np.asarray(array)
            variable.assign(np.ascontiguousarray(array.T if transposed else array).astype(variable.dtype))

    def _initialize(self, names: list[str]) -> None:
        """Draw the named parameters (canonical names) afresh by their schema kind (``INITIALIZERS``)."""
        specs = {spec.name: spec for spec in model_schema(self.config, self.head)}
        for name in names:
            variable, _ = _resolve_variable(self, name)
            rule = INITIALIZERS[specs[name].kind]
            if rule == "normal":
                zero_row = zeroed_row(specs[name], self.config)
                value = _PaddingRowZeroNormal(self.config.initializer_range, zero_row)(variable.shape, variable.dtype)
            else:
                value = tf.fill(variable.shape, tf.constant(1.0 if rule == "ones" else 0.0, variable.dtype))
            variable.assign(value)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (canonical names) that the reference and every port load."""
        config = self.config.copy()
        config.extra["architectures"] = [type(self).__name__]
        config.extra["torch_dtype"] = "float32"
        return save_checkpoint(save_directory, config, self.canonical_state_dict())

    @classmethod
    def from_pretrained(
        cls, pretrained_path: str | os.PathLike, *, config: RoFormerConfig | None = None, **config_overrides: Any
    ):
        """Load a checkpoint directory written by the reference (any framework) or by any of our ports.

        Reads whatever :func:`roformer_core.checkpoint.load_checkpoint` reads (``model.safetensors``, sharded
        safetensors, ``pytorch_model.bin`` with ``weights_only``, the reference's ``tf_model.h5``). Another head's
        weights are skipped and this head's missing ones freshly initialized, both with a warning; every other
        missing, unexpected or mis-shaped parameter is reported by name, all at once.

        Args:
            pretrained_path: checkpoint directory, or a hub id (``"junnyu/roformer_chinese_base"``;
                ``revision``, ``cache_dir``, ``local_files_only``, ``token`` go to the hub, docs/hub.md).
            config: use this config instead of the directory's ``config.json``.
            **config_overrides: config fields to change (e.g. ``max_position_embeddings=4096``, ``num_labels=5``).
        """
        file_config, state = load_checkpoint(pretrained_path, framework="tf", **config_overrides)
        return cls.from_state_dict(config or file_config, state, source=str(pretrained_path))

    @classmethod
    def from_state_dict(cls, config: RoFormerConfig, state: dict[str, np.ndarray], source: str = ""):
        """Build this class from a canonical state dict (numpy arrays), checked against the schema."""
        cls.head.adapt_config(config)
        plan = resolve_checkpoint(config, cls.head, state, source=source)
        token = _DEFER_INIT.set(True)
        try:
            model = cls(config)
        finally:
            _DEFER_INIT.reset(token)
        model.load_canonical_state_dict(plan.arrays)
        model._initialize(plan.newly_initialized)
        if plan.newly_initialized:
            logger.warning(
                "%s: weights not in the checkpoint, newly initialized: %s",
                cls.__name__,
                ", ".join(plan.newly_initialized),
            )
        if plan.ignored:
            logger.warning("%s: checkpoint weights not used by this class: %s", cls.__name__, ", ".join(plan.ignored))
        return model

    # -- vocabulary (roformer_core.schema.vocab_params / resize_vocab) -------------------------------------------
    def _layer_of(self, name: str) -> keras.layers.Layer:
        """The layer that owns canonical parameter ``name`` (the path of :func:`_resolve_variable`)."""
        layer: Any = self
        for part in name.split(".")[:-1]:
            layer = layer[int(part)] if part.isdigit() else getattr(layer, _ATTRIBUTE_NAMES.get(part, part))
        return layer

    def get_input_embeddings(self) -> keras.layers.Embedding:
        """The word-embedding layer; its ``embeddings`` ``[V, E]`` are also the LM decoder weight when tied."""
        return self._layer_of(self.head.prefix + WORD_EMBEDDINGS_KEY)

    def set_input_embeddings(self, value: Any) -> None:
        """Assign new word embeddings ``[V, E]`` (an array, a variable or a Keras ``Embedding`` layer) of the current
        shape; :meth:`resize_token_embeddings` changes ``V``."""
        variable = self.get_input_embeddings().embeddings
        array = np.asarray(value.embeddings if isinstance(value, keras.layers.Embedding) else value)
        if array.shape != tuple(variable.shape):
            raise ValueError(
                f"set_input_embeddings takes embeddings of shape {list(variable.shape)}, got {list(array.shape)}; "
                "use resize_token_embeddings(new_num_tokens) to change the vocabulary size"
            )
        variable.assign(array.astype(variable.dtype))

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, *, seed: int | None = None
    ) -> keras.layers.Embedding:
        """Grow or shrink the vocabulary to ``new_num_tokens`` (rounded up to ``pad_to_multiple_of``), as
        transformers does: old rows are kept, new embedding (and untied decoder) rows drawn from
        N(0, initializer_range**2), new LM bias entries zero, ``config.vocab_size`` updated. The resized variables
        are new Keras variables: ``compile`` the model again before ``fit``.

        Args:
            new_num_tokens: the new vocabulary size ``V`` (e.g. ``len(tokenizer)``); None keeps it.
            pad_to_multiple_of: round ``V`` up to a multiple of this.
            seed: seeds the new rows (the same seed draws the same rows in every framework); None draws it from
                Keras' global generator, so ``keras.utils.set_random_seed`` makes it reproducible.

        Returns:
            the word-embedding layer, now ``[V, E]``.
        """
        size = resized_vocab_size(self.config.vocab_size, new_num_tokens, pad_to_multiple_of)
        if size == self.config.vocab_size:
            return self.get_input_embeddings()
        seed = int(keras.random.randint((), 0, 2**31 - 1)) if seed is None else seed
        located = {spec.name: _resolve_variable(self, spec.name) for spec in vocab_params(self.config, self.head)}
        arrays = {name: (v.numpy().T if transposed else v.numpy()) for name, (v, transposed) in located.items()}
        for name, array in resize_vocab(self.config, self.head, arrays, size, seed).items():
            variable, transposed = located[name]
            layer = self._layer_of(name)
            attribute = next(key for key, value in vars(layer).items() if value is variable)
            value = np.ascontiguousarray(array.T if transposed else array)
            # a Keras variable cannot change shape: swap in a new one, as Layer.__delattr__ + add_weight would
            layer._untrack_variable(variable)
            layer._tracker.unlock()  # built layers refuse new state
            try:
                new = layer.add_weight(
                    shape=value.shape,
                    initializer="zeros",
                    dtype=variable.dtype,
                    trainable=variable.trainable,
                    name=variable.name,
                )
                setattr(layer, attribute, new)
            finally:
                layer._tracker.lock()
            new.assign(value)
            if isinstance(layer, keras.layers.Embedding):
                layer.input_dim = size
        self.config.vocab_size = size
        return self.get_input_embeddings()

    # -- inputs ------------------------------------------------------------------------------------------------
    def _check_ids(self, name: str, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
        """Check the ids of input ``name`` are in ``[0, size)`` (``roformer_core.validation.id_limit``).

        Eagerly a ValueError. In a graph, asserts that run before the ids are used (an InvalidArgumentError, also
        on GPU where gather would return zeros; not built under XLA, which drops them) plus a validity mask
        ``[B, L]`` the caller turns into NaN outputs.

        Returns:
            the ids to use (guarded by the asserts in a graph) and the mask (None when eager).
        """
        if ids.dtype.is_floating:
            raise ValueError(f"{name} must be integers, got {ids.dtype.name}")
        if not _in_graph():
            if tf.size(ids) > 0:
                check_id_range(name, int(tf.reduce_min(ids)), int(tf.reduce_max(ids)), self.config)
            return ids, None
        if not _xla_compiling():
            with tf.control_dependencies(_id_range_asserts(name, ids, self.config)):
                ids = tf.identity(ids)
        return ids, (ids >= 0) & (ids < tf.cast(id_limit(name, self.config)[0], ids.dtype))

    # -- Keras step hook: id checks outside XLA ------------------------------------------------------------------
    def _autoconvert_optionals(self, step_func: Callable) -> Callable:
        """Check each batch's ids before Keras runs a (possibly XLA-compiled) train, test or predict step.

        Keras' TensorFlow trainer wraps every step function in this hook and calls the wrapper outside the
        compiled step (in the step loop's graph, or eagerly). XLA drops the model's own asserts, so without this an
        out-of-range id under ``jit_compile`` (Keras' default on GPU) would train on NaN rows, or on GPU outside
        XLA on silent zeros; here it stops the run with an InvalidArgumentError naming the input before any
        weight changes.
        """
        step = super()._autoconvert_optionals(step_func)

        def checked(data: Any) -> Any:
            with tf.control_dependencies(self._batch_asserts(data)):
                return step(data)

        return checked

    def _batch_asserts(self, data: Any) -> list[Any]:
        """Range asserts for the ``input_ids`` / ``token_type_ids`` and the class ``labels`` of a Keras batch ``x``
        or ``(x, y[, w])``, per replica for distributed batches."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data) if isinstance(data, (tuple, list)) else (data, None, None)
        fields = dict(x) if isinstance(x, dict) else {"input_ids": x}
        if isinstance(y, dict):
            fields.setdefault("labels", y.get("labels"))
        elif y is not None and self.head.label_args == ("labels",) and self._compile_loss is None:
            fields.setdefault("labels", y)
        asserts = []
        for name in (*ID_INPUTS, "labels"):
            for part in self._local_parts(fields.get(name)):
                if not (tf.is_tensor(part) and part.dtype.is_integer):
                    continue
                if name != "labels":
                    asserts += _id_range_asserts(name, part, self.config)
                    continue
                choices = None
                if self.head.name == "multiple_choice" and tf.is_tensor(fields.get("input_ids")):
                    choices = _shape(fields["input_ids"])[1]
                limit = losses.class_label_limit(self.head.name, self.config, True, choices)
                if limit is not None:
                    asserts += _class_label_asserts(losses.scored_labels(self.head.name, part), *limit)
        return asserts

    def _local_parts(self, value: Any) -> tuple[Any, ...]:
        """A batch field's per-replica parts (distributed values), else the field itself; () for None."""
        if value is None:
            return ()
        if isinstance(value, tf.distribute.DistributedValues):
            return tuple(self.distribute_strategy.experimental_local_results(value))
        return (value,)

    def _finish(self, return_dict: bool | None, **fields: Any) -> ModelOutput | tuple:
        output = _output_class(self.head)(**fields)
        use_dict = self.config.return_dict if return_dict is None else return_dict
        return output if use_dict else output.to_tuple()


@keras.saving.register_keras_serializable(package="roformer")
class TFRoFormerModel(TFRoFormerPreTrainedModel):
    """The bare RoFormer encoder (or decoder when ``config.is_decoder``): outputs the final hidden states and, with
    ``config.add_pooling_layer``, the pooled first position.

    Args:
        config: the model config.
        add_pooling_layer: build the pooler (``pooler.dense``) or not, whatever ``config.add_pooling_layer`` says;
            the model then keeps a copy of the config with this value (the caller's config is not changed).
        **kwargs: Keras ``Model`` arguments (``name``, ``dtype``, ...).
    """

    head = MODEL

    def __init__(self, config: RoFormerConfig, add_pooling_layer: bool | None = None, **kwargs: Any) -> None:
        if add_pooling_layer is not None and add_pooling_layer != config.add_pooling_layer:
            config = config.copy(add_pooling_layer=add_pooling_layer)
        super().__init__(config, **kwargs)
        self.embeddings = TFRoFormerEmbeddings(config, name="embeddings")
        self.embeddings_project = (
            _dense(config, config.hidden_size, config.embedding_size, "embeddings_project")
            if config.has_embeddings_project
            else None
        )
        self.encoder = TFRoFormerEncoder(config, name="encoder")
        self.pooler = TFRoFormerPooler(config, name="pooler") if config.add_pooling_layer else None

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.embeddings.word_embeddings

    def _attention_bias(
        self,
        mask: tf.Tensor | None,
        q_len: Any,
        k_len: Any,
        causal: bool,
        query_offset: Any,
        dtype: tf.DType,
        rule: tf.Tensor | None = None,
    ) -> tf.Tensor | None:
        """Additive bias ``[B, 1, Lq, Lk]`` (finfo.min where masked), or None when nothing is masked.

        Args:
            mask: ``[B, Lk]`` key padding or ``[B, Lq, Lk]`` (1 = attend), or None.
            causal: add the decoder's lower-triangular rule.
            query_offset: the absolute position of the first query (the cached length).
            rule: a bool ``[B, 1, Lq, Lk]`` rule ANDed with the mask (the UniLM rule, :func:`unilm_keep`), or None.
        """
        keep = rule
        if mask is not None:
            given = tf.cast(mask, tf.bool)
            given = given[:, None, None, :] if given.shape.rank == 2 else given[:, None, :, :]
            keep = given if keep is None else keep & given
        if causal and not (isinstance(q_len, int) and q_len == 1 and isinstance(query_offset, int)):
            rows = tf.range(q_len)[:, None] + tf.cast(query_offset, tf.int32)
            tri = tf.range(k_len)[None, :] <= rows  # [Lq, Lk]
            keep = tri[None, None] if keep is None else keep & tri
        if keep is None:
            return None
        fill = tf.constant(mask_fill_value(dtype.name), dtype)
        return tf.where(keep, tf.zeros((), dtype), fill)

    def _head_mask(self, head_mask: Any, dtype: tf.DType) -> list[tf.Tensor | None]:
        layers, heads = self.config.num_hidden_layers, self.config.num_attention_heads
        if head_mask is None:
            return [None] * layers
        head_mask = tf.convert_to_tensor(head_mask)
        if tuple(head_mask.shape) not in ((heads,), (layers, heads)):
            raise ValueError(f"head_mask must have shape [{heads}] or [{layers}, {heads}], got {head_mask.shape}")
        head_mask = tf.broadcast_to(tf.cast(head_mask, dtype), (layers, heads))
        return [head_mask[n][None, :, None, None] for n in range(layers)]  # each [1, H, 1, 1]

    def _check_mask(self, name: str, mask: tf.Tensor, batch: Any, length: Any, total: Any) -> None:
        sizes = (batch, length, total)
        if all(isinstance(s, int) for s in sizes) and None not in mask.shape.as_list():
            check_attention_mask(tuple(mask.shape), batch, length, total - length, name)
        elif mask.shape.rank not in (2, 3):
            raise ValueError(f"{name} must be [batch, length] or [batch, length, length], got rank {mask.shape.rank}")
        elif not _xla_compiling():
            tf.debugging.assert_equal(tf.shape(mask)[-1], total, message=f"{name} has the wrong length")

    def call(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        inputs_embeds: Any = None,
        encoder_hidden_states: Any = None,
        encoder_attention_mask: Any = None,
        past_key_values: PastKeyValues | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        cache_index: Any = None,
        training: bool = False,
    ) -> ModelOutput | tuple:
        """Encode (or decode, when ``config.is_decoder``).

        Args:
            input_ids: ``[B, L]`` int token ids in ``[0, vocab_size)`` (or give ``inputs_embeds [B, L, E]``); or one
                dict holding any of these arguments, as Keras passes a batch.
            attention_mask: ``[B, P + L]`` key padding mask (1 for tokens to attend to, 0 for padding) or an
                explicit ``[B, L, P + L]`` mask (1 where query i may attend key j); P is the cached length. With
                ``config.unilm`` it is combined with the UniLM rule of the token types, else, for decoders, with
                the causal rule.
            token_type_ids: ``[B, L]`` in ``[0, type_vocab_size)``; zeros by default. With ``config.unilm`` they
                are the segments of the UniLM rule (:func:`roformer_core.masks.unilm_mask`); the cached tokens
                all precede the new ones, so a cached step needs only the new tokens' types.
            head_mask: ``[H]`` or ``[num_layers, H]`` multipliers of the attention probabilities.
            encoder_hidden_states: ``[B, S, hidden]`` for cross-attention (decoders with add_cross_attention).
            encoder_attention_mask: ``[B, S]`` mask of the encoder states.
            past_key_values: the cache returned by a previous call (decoders only).
            use_cache: return the cache (decoders only; default ``config.use_cache``).
            output_attentions / output_hidden_states / return_dict: as in the reference.
            cache_index: int32 scalar for fixed-size caches (``generate``): ``past_key_values`` self-attention
                tensors are ``[B, H, Lmax, D]`` buffers, the new keys are written at this position, and
                ``attention_mask`` covers all ``Lmax`` positions.
            training: enable dropout.

        Returns:
            ``last_hidden_state [B, L, hidden]``, then ``pooler_output [B, hidden]`` (with a pooler),
            ``past_key_values``, ``hidden_states`` (num_layers + 1 of
            ``[B, L, hidden]``), ``attentions`` (``[B, H, L, P + L]`` each) and ``cross_attentions`` when present.
        """
        args = _merge_batch(
            input_ids,
            {
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
                "head_mask": head_mask,
                "inputs_embeds": inputs_embeds,
                "encoder_hidden_states": encoder_hidden_states,
                "encoder_attention_mask": encoder_attention_mask,
                "past_key_values": past_key_values,
            },
        )
        input_ids, attention_mask, token_type_ids = args["input_ids"], args["attention_mask"], args["token_type_ids"]
        inputs_embeds, past_key_values = args["inputs_embeds"], args["past_key_values"]
        encoder_hidden_states, encoder_attention_mask = args["encoder_hidden_states"], args["encoder_attention_mask"]
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        use_cache = bool((config.use_cache if use_cache is None else use_cache) and config.is_decoder)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        valid = []
        if input_ids is not None:
            input_ids = tf.convert_to_tensor(input_ids)
            input_ids, ok = self._check_ids("input_ids", input_ids)
            valid.append(ok)
            shape = _shape(input_ids)
        else:
            inputs_embeds = tf.convert_to_tensor(inputs_embeds)
            shape = _shape(inputs_embeds)[:-1]
        if len(shape) != 2:
            raise ValueError(f"input_ids must be [batch, length], got shape {list(shape)}")
        batch, length = shape
        if token_type_ids is not None:
            token_type_ids = tf.convert_to_tensor(token_type_ids)
            if token_type_ids.shape.rank != 2:
                raise ValueError(f"token_type_ids shape {token_type_ids.shape} differs from input shape [B, L]")
            token_type_ids, ok = self._check_ids("token_type_ids", token_type_ids)
            valid.append(ok)
        if past_key_values is not None and len(past_key_values) != config.num_hidden_layers:
            raise ValueError(
                f"past_key_values has {len(past_key_values)} layers, the model has {config.num_hidden_layers}"
            )
        if past_key_values:
            cached = _shape(past_key_values[0][0])[2]
            past_length = cached if cache_index is None else cache_index
            total = cached if cache_index is not None else cached + length
        else:
            past_length, total = 0, length
        if attention_mask is not None:
            attention_mask = tf.convert_to_tensor(attention_mask)
            self._check_mask("attention_mask", attention_mask, batch, length, total)

        hidden = self.embeddings.call(
            input_ids=input_ids, token_type_ids=token_type_ids, inputs_embeds=inputs_embeds, training=training
        )
        if self.embeddings_project is not None:
            hidden = self.embeddings_project(hidden)
        valid = [v for v in valid if v is not None]
        if valid:
            # XLA ignores asserts: make out-of-range ids visible as NaN rather than silently clamped rows
            ok = tf.reduce_all(tf.stack(valid), axis=0) if len(valid) > 1 else valid[0]
            hidden = tf.where(ok[..., None], hidden, tf.constant(float("nan"), hidden.dtype))
        dtype = hidden.dtype
        if config.unilm:  # the UniLM rule replaces the decoder's causal one; no types: one segment, bidirectional
            rule = None  # every key visible, unless a fixed-size cache has an unwritten tail to hide
            if token_type_ids is not None or cache_index is not None:
                types = token_type_ids if token_type_ids is not None else tf.zeros([batch, length], tf.int32)
                rule = unilm_keep(types, past_length, total)
            bias = self._attention_bias(attention_mask, length, total, False, past_length, dtype, rule)
        else:
            bias = self._attention_bias(attention_mask, length, total, config.is_decoder, past_length, dtype)
        cross_bias = None
        if encoder_hidden_states is not None and config.is_decoder:
            encoder_hidden_states = tf.cast(encoder_hidden_states, dtype)
            if encoder_attention_mask is not None:
                encoder_attention_mask = tf.convert_to_tensor(encoder_attention_mask)
                enc_len = _shape(encoder_hidden_states)[1]
                self._check_mask("encoder_attention_mask", encoder_attention_mask, batch, enc_len, enc_len)
                cross_bias = self._attention_bias(encoder_attention_mask, length, enc_len, False, 0, dtype)
        else:
            # the reference ignores encoder states given to an encoder
            encoder_hidden_states = None
        out = self.encoder.call(
            hidden,
            bias=bias,
            head_mask=self._head_mask(args["head_mask"], dtype),
            encoder_hidden_states=encoder_hidden_states,
            cross_bias=cross_bias,
            past_key_values=past_key_values,
            cache_index=cache_index,
            past_length=past_length,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            training=training,
        )
        if self.pooler is not None:
            out["pooler_output"] = self.pooler.call(out["last_hidden_state"])
        return self._finish(return_dict, **out)


def _base_kwargs(output_hidden_states: bool | None, output_attentions: bool | None) -> dict[str, Any]:
    return {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions, "return_dict": True}


def _passed_on(base: ModelOutput) -> dict[str, Any]:
    """The base model's outputs that a head returns unchanged (``pooler_output`` only with a pooler)."""
    return {
        "pooler_output": base.get("pooler_output"),
        "hidden_states": base.hidden_states,
        "attentions": base.attentions,
    }


class _TFLMModel(TFRoFormerPreTrainedModel):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.roformer = TFRoFormerModel(config, name="roformer")
        self.cls = TFRoFormerOnlyMLMHead(config, name="cls")

    def _logits(self, hidden: tf.Tensor) -> tf.Tensor:
        return self.cls.call(hidden, word_embeddings=self.roformer.embeddings.word_embeddings.embeddings)


@keras.saving.register_keras_serializable(package="roformer")
class TFRoFormerForMaskedLM(_TFLMModel):
    """Masked language model: logits ``[B, L, V]``; loss over positions whose label is not -100."""

    head = MASKED_LM

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        if config.is_decoder:
            logger.warning("TFRoFormerForMaskedLM with is_decoder=True attends causally; set is_decoder=False")
        super().__init__(config, **kwargs)

    def call(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        inputs_embeds: Any = None,
        encoder_hidden_states: Any = None,
        encoder_attention_mask: Any = None,
        labels: Any = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        training: bool = False,
    ) -> ModelOutput | tuple:
        """Args as :meth:`TFRoFormerModel.call`; ``labels [B, L]`` in ``[0, V)`` or -100 (ignored)."""
        args = _merge_batch(
            input_ids,
            {
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
                "head_mask": head_mask,
                "inputs_embeds": inputs_embeds,
                "encoder_hidden_states": encoder_hidden_states,
                "encoder_attention_mask": encoder_attention_mask,
                "labels": labels,
            },
        )
        labels = args.pop("labels")
        base = self.roformer(**args, **_base_kwargs(output_hidden_states, output_attentions), training=training)
        logits = self._logits(base["last_hidden_state"])
        loss = None if labels is None else _cross_entropy(logits, labels, self.head.name)
        return self._finish(return_dict, loss=loss, logits=logits, **_passed_on(base))


@keras.saving.register_keras_serializable(package="roformer")
class TFRoFormerForCausalLM(TFGenerationMixin, _TFLMModel):
    """Causal language model (needs ``config.is_decoder=True``): next-token logits ``[B, L, V]`` and a KV cache."""

    head = CAUSAL_LM

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        if not config.is_decoder:
            logger.warning("TFRoFormerForCausalLM with is_decoder=False is bidirectional; set is_decoder=True")
        super().__init__(config, **kwargs)

    def call(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        inputs_embeds: Any = None,
        encoder_hidden_states: Any = None,
        encoder_attention_mask: Any = None,
        head_mask: Any = None,
        cross_attn_head_mask: Any = None,
        past_key_values: PastKeyValues | None = None,
        labels: Any = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        cache_index: Any = None,
        training: bool = False,
    ) -> ModelOutput | tuple:
        """Args as :meth:`TFRoFormerModel.call` (in the reference's order for this class).

        ``labels [B, L]``: the input ids themselves; position t is scored against label t + 1 (-100 ignored).
        ``cross_attn_head_mask`` is accepted and unused, as in the reference.
        """
        args = _merge_batch(
            input_ids,
            {
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
                "inputs_embeds": inputs_embeds,
                "encoder_hidden_states": encoder_hidden_states,
                "encoder_attention_mask": encoder_attention_mask,
                "head_mask": head_mask,
                "past_key_values": past_key_values,
                "labels": labels,
            },
        )
        labels = args.pop("labels")
        base = self.roformer(
            **args,
            use_cache=use_cache,
            cache_index=cache_index,
            **_base_kwargs(output_hidden_states, output_attentions),
            training=training,
        )
        logits = self._logits(base["last_hidden_state"])
        loss = None
        if labels is not None:
            loss = _cross_entropy(logits[:, :-1], tf.convert_to_tensor(labels)[:, 1:], self.head.name)
        return self._finish(
            return_dict,
            loss=loss,
            logits=logits,
            past_key_values=base.past_key_values,
            **_passed_on(base),
            cross_attentions=base.cross_attentions,
        )


_CLASSIFIER_ARGS = ("attention_mask", "token_type_ids", "head_mask", "inputs_embeds")


@keras.saving.register_keras_serializable(package="roformer")
class TFRoFormerForSequenceClassification(TFRoFormerPreTrainedModel):
    """Sequence classification / regression from the first token: logits ``[B, num_labels]``."""

    head = SEQUENCE_CLASSIFICATION

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.num_labels = config.num_labels
        self.roformer = TFRoFormerModel(config, name="roformer")
        self.classifier = TFRoFormerClassificationHead(config, name="classifier")

    def call(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        inputs_embeds: Any = None,
        labels: Any = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        training: bool = False,
    ) -> ModelOutput | tuple:
        """``labels``: ``[B]`` class ids (single-label), ``[B]`` floats (regression, num_labels == 1) or
        ``[B, num_labels]`` 0/1 floats (multi-label); the kind is ``config.problem_type`` or inferred (and stored
        in the config) on first use."""
        args = _merge_batch(
            input_ids,
            dict(zip(_CLASSIFIER_ARGS, (attention_mask, token_type_ids, head_mask, inputs_embeds)), labels=labels),
        )
        labels = args.pop("labels")
        base = self.roformer(**args, **_base_kwargs(output_hidden_states, output_attentions), training=training)
        logits = self.classifier.call(base["last_hidden_state"], training=training)
        loss = None
        if labels is not None:
            labels = tf.convert_to_tensor(labels)
            problem = losses.resolve_problem_type(self.config.problem_type, self.num_labels, labels.dtype.is_integer)
            self.config.problem_type = problem
            logits32 = tf.cast(logits, tf.float32)
            if problem == losses.REGRESSION:
                diff = tf.squeeze(logits32) - tf.squeeze(tf.cast(labels, tf.float32))
                loss = tf.reduce_mean(tf.square(diff))
            elif problem == losses.SINGLE_LABEL:
                loss = _cross_entropy(logits32, labels, self.head.name)
            else:
                loss = tf.reduce_mean(
                    tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits32)
                )
        return self._finish(return_dict, loss=loss, logits=logits, **_passed_on(base))


@keras.saving.register_keras_serializable(package="roformer")
class TFRoFormerForMultipleChoice(TFRoFormerPreTrainedModel):
    """Multiple choice: inputs ``[B, C, L]``, logits ``[B, C]``.

    Like the reference, each choice is summarized by its **last** position (even when that is padding).
    """

    head = MULTIPLE_CHOICE

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.roformer = TFRoFormerModel(config, name="roformer")
        self.classifier = _dense(config, 1, config.hidden_size, "classifier")

    def call(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        inputs_embeds: Any = None,
        labels: Any = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        training: bool = False,
    ) -> ModelOutput | tuple:
        """``input_ids``/``attention_mask``/``token_type_ids`` ``[B, C, L]`` (or ``inputs_embeds [B, C, L, E]``);
        ``labels [B]`` in ``[0, C)``."""
        args = _merge_batch(
            input_ids,
            dict(zip(_CLASSIFIER_ARGS, (attention_mask, token_type_ids, head_mask, inputs_embeds)), labels=labels),
        )
        labels = args.pop("labels")
        ids, embeds = args["input_ids"], args["inputs_embeds"]
        ref = ids if ids is not None else embeds
        if ref is None:
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        ref = tf.convert_to_tensor(ref)
        expected = 3 if ids is not None else 4
        if ref.shape.rank != expected:
            raise ValueError(f"multiple-choice inputs must be [batch, choices, length], got shape {ref.shape}")
        num_choices = _shape(ref)[1]

        def flat(x: Any) -> tf.Tensor | None:
            if x is None:
                return None
            x = tf.convert_to_tensor(x)
            return tf.reshape(x, [-1, *_shape(x)[2:]])

        for key in ("input_ids", "attention_mask", "token_type_ids", "inputs_embeds"):
            args[key] = flat(args[key])
        base = self.roformer(**args, **_base_kwargs(output_hidden_states, output_attentions), training=training)
        logits = tf.reshape(self.classifier(base["last_hidden_state"][:, -1]), [-1, num_choices])
        loss = None if labels is None else _cross_entropy(logits, labels, self.head.name)
        return self._finish(return_dict, loss=loss, logits=logits, **_passed_on(base))


@keras.saving.register_keras_serializable(package="roformer")
class TFRoFormerForTokenClassification(TFRoFormerPreTrainedModel):
    """Per-token classification: logits ``[B, L, num_labels]``."""

    head = TOKEN_CLASSIFICATION

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.num_labels = config.num_labels
        self.roformer = TFRoFormerModel(config, name="roformer")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.classifier = _dense(config, config.num_labels, config.hidden_size, "classifier")

    def call(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        inputs_embeds: Any = None,
        labels: Any = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        training: bool = False,
    ) -> ModelOutput | tuple:
        """``labels [B, L]`` in ``[0, num_labels)`` or -100 (ignored; the attention mask does not filter)."""
        args = _merge_batch(
            input_ids,
            dict(zip(_CLASSIFIER_ARGS, (attention_mask, token_type_ids, head_mask, inputs_embeds)), labels=labels),
        )
        labels = args.pop("labels")
        base = self.roformer(**args, **_base_kwargs(output_hidden_states, output_attentions), training=training)
        logits = self.classifier(self.dropout(base["last_hidden_state"], training=training))
        loss = None if labels is None else _cross_entropy(logits, labels, self.head.name)
        return self._finish(return_dict, loss=loss, logits=logits, **_passed_on(base))


@keras.saving.register_keras_serializable(package="roformer")
class TFRoFormerForQuestionAnswering(TFRoFormerPreTrainedModel):
    """Extractive QA: ``start_logits``, ``end_logits`` ``[B, L]``.

    Like the reference, the constructor sets ``config.num_labels = 2`` on the config it is given.
    """

    head = QUESTION_ANSWERING

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.roformer = TFRoFormerModel(config, name="roformer")
        self.qa_outputs = _dense(config, 2, config.hidden_size, "qa_outputs")

    def call(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        inputs_embeds: Any = None,
        start_positions: Any = None,
        end_positions: Any = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        training: bool = False,
    ) -> ModelOutput | tuple:
        """``start_positions``/``end_positions [B]``: answer span; positions outside ``[0, L)`` are ignored."""
        args = _merge_batch(
            input_ids,
            dict(
                zip(_CLASSIFIER_ARGS, (attention_mask, token_type_ids, head_mask, inputs_embeds)),
                start_positions=start_positions,
                end_positions=end_positions,
            ),
        )
        start_positions, end_positions = args.pop("start_positions"), args.pop("end_positions")
        base = self.roformer(**args, **_base_kwargs(output_hidden_states, output_attentions), training=training)
        logits = self.qa_outputs(base["last_hidden_state"])
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = losses.qa_ignored_index(_shape(start_logits)[1])
            parts = []
            for part_logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
                positions = tf.clip_by_value(
                    tf.reshape(tf.cast(positions, tf.int64), [-1]), 0, tf.cast(ignored, tf.int64)
                )
                parts.append(_cross_entropy(part_logits, positions, ignore_index=ignored))
            loss = (parts[0] + parts[1]) / 2
        return self._finish(
            return_dict,
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            **_passed_on(base),
        )
