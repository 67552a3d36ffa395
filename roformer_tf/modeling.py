"""RoFormer in TensorFlow / Keras 3: the bare model and the six heads.

Layer attributes follow the reference's module names, so every canonical parameter name of
:mod:`roformer_core.schema` resolves to one Keras variable (see :func:`_resolve_variable`); the only rename is
``output`` -> ``output_layer`` because Keras layers reserve ``output``. The rotary layout is documented once, in
:mod:`roformer_core.rotary`. Unlike the reference's TF port, the rotary table is not a weight (it is computed in
the graph, for any length), the causal LM is causal, head_mask works, losses are scalar means and tuple outputs
keep every field.
"""

from __future__ import annotations

import contextvars
import logging
import math
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
from roformer_core.rotary import rotary_denominators, sinusoidal_table
from roformer_core.schema import INITIALIZERS, ROTARY_TABLE, model_schema, resolve_checkpoint, zeroed_row
from roformer_core.validation import ID_INPUTS, check_attention_mask, check_class_labels, check_id_range, id_limit

from .generation import TFGenerationMixin

logger = logging.getLogger(__name__)

# Cache layout (as roformer_pt): a tuple over layers of (self_key, self_value) or, with cross-attention,
# (self_key, self_value, cross_key, cross_value); each [B, H, L, D]. Keys (and values with rotary_value) are
# stored already rotated. With ``cache_index`` the self-attention tensors are fixed-size buffers [B, H, Lmax, D]
# written in place (the XLA-friendly layout generate() uses).
PastKeyValues = tuple[tuple[tf.Tensor, ...], ...]

# Keras layers reserve ``output`` (a property); every other attribute is the canonical module name.
_ATTRIBUTE_NAMES = {"output": "output_layer"}


def _gelu_fast(x: tf.Tensor) -> tf.Tensor:
    return 0.5 * x * (1.0 + tf.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _gelu_exact(x: tf.Tensor) -> tf.Tensor:
    # The erf form, as PyTorch computes it. tf.nn.gelu(approximate=False) uses erfc, whose XLA lowering evaluates
    # two polynomials, an exp and a division per element: 1.5x the time of this form (the FFN's bias + GELU pass at
    # [2048, 3072] on the 2-core development CPU: 3.6 ms -> 2.3 ms, i.e. memory-bound).
    return 0.5 * x * (1.0 + tf.math.erf(x * tf.cast(math.sqrt(0.5), x.dtype)))


def _quick_gelu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.sigmoid(1.702 * x)


# Every name of roformer_core.activations.ACTIVATIONS ("gelu" is the exact erf GELU, as in the reference).
ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "gelu": _gelu_exact,
    "gelu_new": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_fast": _gelu_fast,
    "quick_gelu": _quick_gelu,
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "mish": lambda x: x * tf.tanh(tf.nn.softplus(x)),
    "linear": lambda x: x,
}


def _shape(x: tf.Tensor) -> list[Any]:
    """Static sizes where known, dynamic scalars elsewhere."""
    static = x.shape.as_list()
    dynamic = tf.shape(x)
    return [dynamic[i] if size is None else size for i, size in enumerate(static)]


# While set (``from_state_dict``), weights are created as zeros instead of random draws: the checkpoint overwrites
# them, and only the parameters it lacks are then drawn (by schema kind, ``_initialize``).
_DEFER_INIT = contextvars.ContextVar("roformer_tf_defer_init", default=False)


def _normal(config: RoFormerConfig, zero_row: int | None = None) -> keras.initializers.Initializer:
    """The initializer of ``"normal"`` parameters (``roformer_core.schema.INITIALIZERS``), or zeros while deferred."""
    if _DEFER_INIT.get():
        return keras.initializers.Zeros()
    return _PaddingRowZeroNormal(config.initializer_range, zero_row)


def _dense(config: RoFormerConfig, units: int, in_features: int, name: str) -> keras.layers.Dense:
    layer = keras.layers.Dense(units, kernel_initializer=_normal(config), name=name)
    layer.build((None, in_features))
    return layer


def _layer_norm(config: RoFormerConfig, width: int, name: str) -> keras.layers.LayerNormalization:
    layer = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name)
    layer.build((None, width))
    return layer


class _PaddingRowZeroNormal(keras.initializers.Initializer):
    """Normal(0, stddev) with one row zeroed (the reference's padding_idx embedding initialization)."""

    def __init__(self, stddev: float, zero_row: int | None) -> None:
        self.stddev, self.zero_row = stddev, zero_row

    def __call__(self, shape, dtype=None):
        values = keras.random.normal(shape, stddev=self.stddev, dtype=dtype)
        if self.zero_row is None:
            return values
        keep = tf.cast(tf.range(shape[0]) != self.zero_row, values.dtype)[:, None]
        return values * keep

    def get_config(self) -> dict[str, Any]:
        return {"stddev": self.stddev, "zero_row": self.zero_row}


def _in_graph() -> bool:
    return not tf.executing_eagerly()


class _BuiltAtConstruction:
    """Every weight is created with its final shape in ``__init__``, so the layer is always built.

    Keras would otherwise try to build the models by tracing them on symbolic or averaged inputs (e.g. float
    ``input_ids`` under a distribution strategy).
    """

    @property
    def built(self) -> bool:
        return True

    @built.setter
    def built(self, value: bool) -> None:
        pass  # always built: see the class docstring


class _Block(_BuiltAtConstruction, keras.layers.Layer):
    """A sub-block of the model.

    Blocks are invoked through ``.call``: Keras 3's ``__call__`` rejects the non-tensor and mixed arguments
    (caches, flags, ``None`` entries) they take. Keras' own leaf layers (Dense, LayerNormalization, Embedding,
    Dropout) and the nested ``roformer`` model are called normally.
    """


# ---- building blocks --------------------------------------------------------------------------------------------


class TFRoFormerSinusoidalPositionalEmbedding(_Block):
    """The rotary sin/cos rows for any positions, computed in the graph (not a weight, never trained).

    Angles are formed in float64 from the core's frequencies, as :func:`roformer_core.rotary.sinusoidal_table`
    does, so rows equal the core's table (and the stored ``encoder.embed_positions.weight``) for every position,
    including positions past ``max_position_embeddings``.
    """

    def __init__(self, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        self._denominators = rotary_denominators(dim)  # float64 [D / 2]

    def call(self, past_length: Any, length: Any, dtype: tf.DType = tf.float32) -> tuple[tf.Tensor, tf.Tensor]:
        """``sin_pos, cos_pos`` ``[L, D]`` (each value repeated in place) for positions ``past_length + 0 .. L-1``."""
        positions = tf.cast(tf.range(length), tf.float64) + tf.cast(past_length, tf.float64)
        angles = positions[:, None] / tf.constant(self._denominators, tf.float64)[None, :]  # [L, D/2]
        sin_pos = tf.repeat(tf.cast(tf.sin(angles), dtype), 2, axis=-1)
        cos_pos = tf.repeat(tf.cast(tf.cos(angles), dtype), 2, axis=-1)
        return sin_pos, cos_pos


def rotate_pairs(x: tf.Tensor) -> tf.Tensor:
    """``[x0, x1, x2, x3, ...] -> [-x1, x0, -x3, x2, ...]`` along the last axis."""
    shape = _shape(x)
    pairs = tf.reshape(x, shape[:-1] + [shape[-1] // 2, 2])
    return tf.reshape(tf.stack((-pairs[..., 1], pairs[..., 0]), axis=-1), shape)


def apply_rotary(x: tf.Tensor, sin_pos: tf.Tensor, cos_pos: tf.Tensor) -> tf.Tensor:
    """Rotate ``x [B, H, L, D]`` by ``sin_pos, cos_pos [L, D]`` (see roformer_core.rotary)."""
    return x * cos_pos + rotate_pairs(x) * sin_pos


class TFRoFormerEmbeddings(_Block):
    """Word + token-type embeddings, LayerNorm, dropout (no absolute positions). Output ``[B, L, E]``."""

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        E = config.embedding_size
        self.word_embeddings = keras.layers.Embedding(
            config.vocab_size,
            E,
            embeddings_initializer=_normal(config, config.pad_token_id),
            name="word_embeddings",
        )
        self.word_embeddings.build()
        self.token_type_embeddings = keras.layers.Embedding(
            config.type_vocab_size,
            E,
            embeddings_initializer=_normal(config),
            name="token_type_embeddings",
        )
        self.token_type_embeddings.build()
        self.LayerNorm = _layer_norm(config, E, "LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(
        self,
        input_ids: tf.Tensor | None,
        token_type_ids: tf.Tensor | None,
        inputs_embeds: tf.Tensor | None,
        training: bool = False,
    ) -> tf.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        inputs_embeds = tf.cast(inputs_embeds, self.compute_dtype)
        if token_type_ids is None:
            types = tf.cast(self.token_type_embeddings.embeddings[0], self.compute_dtype)
        else:
            types = self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(inputs_embeds + types), training=training)


class TFRoFormerSelfAttention(_Block):
    """Multi-head attention with rotary positions (self-attention) or without (cross-attention)."""

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.rotary_value = config.rotary_value
        width = config.hidden_size
        self.query = _dense(config, width, width, "query")
        self.key = _dense(config, width, width, "key")
        self.value = _dense(config, width, width, "value")
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob)

    def _split(self, x: tf.Tensor) -> tf.Tensor:
        B, L = _shape(x)[:2]
        return tf.transpose(tf.reshape(x, [B, L, self.num_heads, self.head_dim]), [0, 2, 1, 3])  # [B, H, L, D]

    def call(
        self,
        hidden_states: tf.Tensor,
        bias: tf.Tensor | None,
        rotary: tuple[tf.Tensor, tf.Tensor] | None,
        head_mask: tf.Tensor | None,
        kv_states: tf.Tensor | None = None,
        past: tuple[tf.Tensor, tf.Tensor] | None = None,
        cache_index: tf.Tensor | None = None,
        output_attentions: bool = False,
        training: bool = False,
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor], tf.Tensor | None]:
        """Attend.

        Args:
            hidden_states: queries' source ``[B, Lq, E]``.
            bias: additive mask broadcastable to ``[B, H, Lq, Lk]`` (``finfo.min`` where masked) or None.
            rotary: ``(sin_pos, cos_pos)`` ``[Lq, D]`` for self-attention; unused for cross-attention.
            head_mask: ``[1, H, 1, 1]`` multiplier of the attention probabilities, or None.
            kv_states: cross-attention source ``[B, Lk, E]`` (None for self-attention).
            past: cached ``(key, value)``: prepended (or, with ``cache_index``, written into the fixed-size
                buffers at that position) for self-attention, reused as is for cross-attention.
            cache_index: int32 scalar, the first position of the new keys in fixed-size ``past`` buffers.
            output_attentions: return the probabilities ``[B, H, Lq, Lk]``.

        Returns:
            context ``[B, Lq, E]``, the ``(key, value)`` to cache, and the probabilities or None.
        """
        if kv_states is None:  # self-attention: rotary positions, cache appended to
            # three matmuls: as fast as one on the concatenated kernel, without copying the kernels per call
            q, k, v = (self._split(layer(hidden_states)) for layer in (self.query, self.key, self.value))
            sin_pos, cos_pos = rotary
            q, k = apply_rotary(q, sin_pos, cos_pos), apply_rotary(k, sin_pos, cos_pos)
            if self.rotary_value:
                v = apply_rotary(v, sin_pos, cos_pos)
            if past is not None and cache_index is None:
                k = tf.concat((tf.cast(past[0], k.dtype), k), axis=2)
                v = tf.concat((tf.cast(past[1], v.dtype), v), axis=2)
            elif past is not None:
                start = (0, 0, cache_index, 0)
                k = keras.ops.slice_update(tf.cast(past[0], k.dtype), start, k)
                v = keras.ops.slice_update(tf.cast(past[1], v.dtype), start, v)
        else:  # cross-attention: no positions, keys and values computed once
            q = self._split(self.query(hidden_states))
            k, v = past if past is not None else (self._split(self.key(kv_states)), self._split(self.value(kv_states)))
        # scaling q ([Lq, D]) rather than the scores ([Lq, Lk]) is cheaper and equal to rounding
        q = q * tf.cast(1.0 / math.sqrt(self.head_dim), q.dtype)
        probs = None
        if output_attentions or head_mask is not None:
            scores = tf.matmul(q, k, transpose_b=True)
            if bias is not None:
                scores = scores + bias
            probs = self.dropout(tf.nn.softmax(scores, axis=-1), training=training)
            if head_mask is not None:
                probs = probs * head_mask
            context = tf.matmul(probs, v)  # [B, H, Lq, D]
        elif (blocks := _attention_blocks(q.shape, k.shape)) and not (training and self.dropout.rate > 0):
            context = _attend_in_blocks(q, k, v, bias, *blocks)
        else:
            context = _attend(q, k, v, bias, lambda weights: self.dropout(weights, training=training))
        B, _, Lq, _ = _shape(context)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B, Lq, self.num_heads * self.head_dim])
        return context, (k, v), (probs if output_attentions else None)


# Score matrices of more than this many elements in all (8 MiB in float32) are computed one block at a time (a few
# heads of one sequence, or a slice of one head's queries) so that each block stays in cache. On the 2-core
# development CPU, against the batched form: 4 x 512 +7%, 2 x 1024 +11%, 1 x 2048 +12% (one head per step) and a
# further +6% (half the queries per step), 8 x 256 +2%. Below it, and for one-token decoding steps, the batched form
# is used.
_SCORE_BLOCK_ELEMENTS = 1 << 21
_MIN_QUERY_SLICE = 128


def _attention_blocks(q_shape: tf.TensorShape, k_shape: tf.TensorShape) -> tuple[int, int] | None:
    """The block :func:`_attend_in_blocks` should use for ``q [B, H, Lq, D]`` and ``k [B, H, Lk, D]``:
    ``(heads, queries)`` per step, the most heads of one sequence (a divisor of H) whose scores fit in the block,
    else one head and the most queries (a divisor of Lq) that fit; None for the batched form (all scores fit in
    the block anyway, few queries as in decoding steps, or shapes that are not static)."""
    B, H, Lq, Lk = q_shape[0], q_shape[1], q_shape[2], k_shape[2]
    if None in (B, H, Lq, Lk) or B * H * Lq * Lk <= _SCORE_BLOCK_ELEMENTS or Lq < _MIN_QUERY_SLICE:
        return None
    if Lq * Lk <= _SCORE_BLOCK_ELEMENTS:
        return max(p for p in range(1, H + 1) if H % p == 0 and p * Lq * Lk <= _SCORE_BLOCK_ELEMENTS), Lq
    queries = max(c for c in range(1, Lq + 1) if Lq % c == 0 and c * Lk <= _SCORE_BLOCK_ELEMENTS)
    # a length with no mid-sized divisor (a prime) takes whole heads rather than thousands of tiny steps
    return 1, (queries if queries >= _MIN_QUERY_SLICE else Lq)


def _attend(
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    bias: tf.Tensor | None,
    dropout: Callable,
    bias_after_max: bool = False,
) -> tf.Tensor:
    """Softmax attention of scaled ``q [..., Lq, D]`` over ``k, v [..., Lk, D]``, without materializing the
    probabilities: the row sums normalize the ``[Lq, D]`` context instead of the ``[Lq, Lk]`` weights (one pass
    less over the largest tensor; dropout commutes with the per-row scaling).

    With ``bias_after_max`` the row maxima are taken from the raw scores and the bias is added inside the
    exponential, so the biased scores are never written out (one more pass less); only valid where every row's
    largest raw score is a kept one (see :func:`_mask_keys_for_raw_max`).
    """
    scores = tf.matmul(q, k, transpose_b=True)
    late_bias = bias if bias_after_max else None
    if bias is not None and not bias_after_max:
        scores = scores + bias
    shift = tf.stop_gradient(tf.reduce_max(scores, axis=-1, keepdims=True))
    weights = tf.exp(scores - shift if late_bias is None else scores + late_bias - shift)
    total = tf.reduce_sum(weights, axis=-1, keepdims=True)
    return tf.matmul(dropout(weights), v) / total


def _mask_keys_for_raw_max(k: tf.Tensor, bias: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Keys and key bias for :func:`_attend` with ``bias_after_max``, from ``k [B, H, Lk, D]`` and a bias per key
    ``[B or 1, 1, 1, Lk]`` (0 where kept, ``finfo.min`` where masked).

    Each masked key is replaced by its sequence's first kept key, so the largest raw score of every row is that of
    a kept key, exactly the maximum the masked softmax takes; the masked weights are still exactly 0 (the bias
    inside the exponential). A sequence with every key masked gets zero keys and no bias: uniform weights, as the
    reference gives (all its scores equal ``finfo.min``).
    """
    B, _, Lk, _ = _shape(k)
    keep = tf.broadcast_to(tf.equal(bias[:, 0, 0, :], 0), [B, Lk])
    any_kept = tf.reduce_any(keep, axis=-1)  # [B]
    first = tf.argmax(tf.cast(keep, tf.int32), axis=-1, output_type=tf.int32)  # first kept key (0 if none)
    first_key = tf.gather(k, first, axis=2, batch_dims=1)[:, :, None, :]  # [B, H, 1, D]
    first_key = first_key * tf.cast(any_kept, k.dtype)[:, None, None, None]
    k = tf.where(keep[:, None, :, None], k, first_key)
    bias = tf.where(any_kept[:, None, None, None], bias, tf.zeros((), bias.dtype))  # [B, 1, 1, Lk]
    return k, bias


def _attend_in_blocks(
    q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor | None, heads: int, queries: int
) -> tf.Tensor:
    """:func:`_attend` (without dropout) for ``[B, H, L, D]`` inputs, one block of ``heads`` heads of one sequence
    and ``queries`` queries per loop step (``heads`` divides H, ``queries`` divides Lq)."""
    B, H, Lq, D = _shape(q)
    Lk = _shape(k)[2]
    per_key = bias is not None and bias.shape[2] == 1  # padding only: the bias can wait until after the maxima
    if per_key:
        k, bias = _mask_keys_for_raw_max(k, bias)
    slices = Lq // queries  # query slices per head group
    groups_per_sequence = H // heads
    # [G, heads, slices, queries, D], G = B * H / heads; without slicing, the plain layout (a 5-d one makes XLA
    # write q in an order the per-step slices must then copy)
    qb = tf.reshape(q, [-1, heads, slices, queries, D] if slices > 1 else [-1, heads, Lq, D])
    kb, vb = tf.reshape(k, [-1, heads, Lk, D]), tf.reshape(v, [-1, heads, Lk, D])

    def one(i: tf.Tensor) -> tf.Tensor:
        group, part = i // slices, i % slices
        step_bias = None
        if bias is not None:  # [B or 1, 1, Lq or 1, Lk]: one per sequence, shared by its heads
            step_bias = bias[0 if bias.shape[0] == 1 else group // groups_per_sequence]
            if bias.shape[2] != 1:
                step_bias = step_bias[:, part * queries : (part + 1) * queries]
        step_q = qb[group, :, part] if slices > 1 else qb[group]
        return _attend(step_q, kb[group], vb[group], step_bias, lambda w: w, bias_after_max=per_key)

    steps = (B * H // heads) * slices
    context = tf.map_fn(one, tf.range(steps), fn_output_signature=tf.TensorSpec([heads, queries, D], q.dtype))
    context = tf.reshape(context, [-1, slices, heads, queries, D])  # [G, slices, heads, queries, D]
    return tf.reshape(tf.transpose(context, [0, 2, 1, 3, 4]), [B, H, Lq, D])


class TFRoFormerSelfOutput(_Block):
    """Output projection, dropout and post-LayerNorm residual of an attention block."""

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config, config.hidden_size, config.hidden_size, "dense")
        self.LayerNorm = _layer_norm(config, config.hidden_size, "LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states: tf.Tensor, residual: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states), training=training) + residual)


class TFRoFormerAttention(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.self = TFRoFormerSelfAttention(config, name="self")
        self.output_layer = TFRoFormerSelfOutput(config, name="output")

    def call(self, hidden_states: tf.Tensor, training: bool = False, **kwargs: Any):
        context, cache, probs = self.self.call(hidden_states, training=training, **kwargs)
        return self.output_layer.call(context, residual=hidden_states, training=training), cache, probs


class TFRoFormerIntermediate(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config, config.intermediate_size, config.hidden_size, "dense")
        self.act = ACTIVATIONS[config.hidden_act]

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.act(self.dense(hidden_states))


class TFRoFormerOutput(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config, config.hidden_size, config.intermediate_size, "dense")
        self.LayerNorm = _layer_norm(config, config.hidden_size, "LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states: tf.Tensor, residual: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states), training=training) + residual)


class TFRoFormerLayer(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chunk_size = config.chunk_size_feed_forward
        self.attention = TFRoFormerAttention(config, name="attention")
        self.crossattention = TFRoFormerAttention(config, name="crossattention") if config.add_cross_attention else None
        self.intermediate = TFRoFormerIntermediate(config, name="intermediate")
        self.output_layer = TFRoFormerOutput(config, name="output")

    def _feed_forward(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        return self.output_layer.call(self.intermediate.call(x), residual=x, training=training)

    def call(
        self,
        hidden_states: tf.Tensor,
        bias: tf.Tensor | None,
        rotary: tuple[tf.Tensor, tf.Tensor],
        head_mask: tf.Tensor | None,
        encoder_hidden_states: tf.Tensor | None,
        cross_bias: tf.Tensor | None,
        past: tuple[tf.Tensor, ...] | None,
        cache_index: tf.Tensor | None,
        output_attentions: bool,
        training: bool = False,
    ):
        self_past = tuple(past[:2]) if past is not None else None
        x, cache, probs = self.attention.call(
            hidden_states,
            bias=bias,
            rotary=rotary,
            head_mask=head_mask,
            past=self_past,
            cache_index=cache_index,
            output_attentions=output_attentions,
            training=training,
        )
        cross_probs = None
        if encoder_hidden_states is not None:
            if self.crossattention is None:
                raise ValueError(
                    "encoder_hidden_states were given to a decoder built without cross-attention: set "
                    "add_cross_attention=True in the config"
                )
            cross_past = tuple(past[2:4]) if past is not None and len(past) == 4 else None
            x, cross_cache, cross_probs = self.crossattention.call(
                x,
                bias=cross_bias,
                rotary=None,
                head_mask=head_mask,
                kv_states=encoder_hidden_states,
                past=cross_past,
                output_attentions=output_attentions,
                training=training,
            )
            cache = cache + cross_cache
        length = x.shape[1]
        if self.chunk_size and length is not None and length > self.chunk_size:
            chunks = [x[:, i : i + self.chunk_size] for i in range(0, length, self.chunk_size)]
            x = tf.concat([self._feed_forward(chunk, training) for chunk in chunks], axis=1)
        else:
            x = self._feed_forward(x, training)
        return x, cache, probs, cross_probs


class TFRoFormerEncoder(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.embed_positions = TFRoFormerSinusoidalPositionalEmbedding(config.head_dim, name="embed_positions")
        self.layer = [TFRoFormerLayer(config, name=f"layer_{n}") for n in range(config.num_hidden_layers)]

    def call(
        self,
        hidden_states: tf.Tensor,
        bias: tf.Tensor | None,
        head_mask: list[tf.Tensor | None],
        encoder_hidden_states: tf.Tensor | None,
        cross_bias: tf.Tensor | None,
        past_key_values: PastKeyValues | None,
        cache_index: tf.Tensor | None,
        past_length: Any,
        use_cache: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        training: bool = False,
    ) -> dict[str, Any]:
        rotary = self.embed_positions.call(
            past_length=past_length, length=_shape(hidden_states)[1], dtype=hidden_states.dtype
        )
        all_hidden = [hidden_states] if output_hidden_states else None
        all_attn = [] if output_attentions else None
        all_cross = [] if output_attentions and encoder_hidden_states is not None else None
        cache = [] if use_cache else None
        for n, layer in enumerate(self.layer):
            hidden_states, layer_cache, probs, cross_probs = layer.call(
                hidden_states,
                bias=bias,
                rotary=rotary,
                head_mask=head_mask[n],
                encoder_hidden_states=encoder_hidden_states,
                cross_bias=cross_bias,
                past=tuple(past_key_values[n]) if past_key_values else None,
                cache_index=cache_index,
                output_attentions=output_attentions,
                training=training,
            )
            if cache is not None:
                cache.append(layer_cache)
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            if all_attn is not None:
                all_attn.append(probs)
            if all_cross is not None:
                all_cross.append(cross_probs)
        return {
            "last_hidden_state": hidden_states,
            "past_key_values": tuple(cache) if cache is not None else None,
            "hidden_states": tuple(all_hidden) if all_hidden is not None else None,
            "attentions": tuple(all_attn) if all_attn is not None else None,
            "cross_attentions": tuple(all_cross) if all_cross is not None else None,
        }


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


def _replica_scaled(loss: tf.Tensor) -> tf.Tensor:
    """A per-replica mean loss scaled so that summing over replicas gives the global mean (as Keras losses do)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / tf.cast(replicas, loss.dtype)


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


class TFRoFormerPreTrainedModel(_BuiltAtConstruction, keras.Model):
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
            pretrained_path: checkpoint directory.
            config: use this config instead of the directory's ``config.json``.
            **config_overrides: config fields to change (e.g. ``max_position_embeddings=4096``, ``num_labels=5``).
        """
        file_config, state = load_checkpoint(pretrained_path, **config_overrides)
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

    # -- training (Keras) ---------------------------------------------------------------------------------------
    def _targets_from_y(self, y: Any) -> dict[str, Any]:
        if isinstance(y, dict):
            return {k: v for k, v in y.items() if k in self.head.label_args}
        if len(self.head.label_args) == 1:
            return {self.head.label_args[0]: y}
        raise ValueError(f"give {' and '.join(self.head.label_args)} as a dict (in x or as y)")

    def train_step(self, data: Any):
        """As Keras' own, except that targets given as ``y`` are passed to the model to compute its loss."""
        return super().train_step(self._move_targets(data))

    def test_step(self, data: Any):
        return super().test_step(self._move_targets(data))

    def _move_targets(self, data: Any) -> Any:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if self._compile_loss is None and y is not None and self.head.label_args:
            x = {**(x if isinstance(x, dict) else {"input_ids": x}), **self._targets_from_y(y)}
            y = None
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The model's own loss (``y_pred.loss``) unless ``compile`` was given a loss for the logits."""
        if self._compile_loss is not None:
            return super().compute_loss(x, y, self._main_output(y_pred), sample_weight, training=training)
        if not isinstance(y_pred, dict) or "loss" not in y_pred:
            names = " / ".join(self.head.label_args) or "targets"
            raise ValueError(
                f"{type(self).__name__} has no loss to train on: put {names} in the batch, or compile with a loss"
            )
        loss = _replica_scaled(tf.cast(y_pred["loss"], tf.float32))
        for extra in self.losses:
            loss = loss + self._aggregate_additional_loss(extra)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y, self._main_output(y_pred), sample_weight=sample_weight)

    def predict_step(self, data: Any) -> dict[str, tf.Tensor]:
        """``model.predict`` returns a dict of the main outputs (logits, or start/end logits, or hidden states)."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        out = self(x, training=False)
        return self._main_outputs(out)

    def _main_outputs(self, out: Any) -> dict[str, tf.Tensor]:
        return {k: out[k] for k in self.head.main_outputs}

    def _main_output(self, y_pred: Any) -> Any:
        """What a compiled Keras loss or metric sees: the main output, a tuple for start/end logits."""
        if not isinstance(y_pred, dict):
            return y_pred
        main = tuple(y_pred[k] for k in self.head.main_outputs)
        return main[0] if len(main) == 1 else main

    # -- serving ---------------------------------------------------------------------------------------------
    def serving_input_signature(self) -> list[tf.TensorSpec]:
        """``input_ids``, ``attention_mask``, ``token_type_ids``: int64 ``[B, L]`` (``[B, C, L]`` multiple choice)."""
        shape = [None, None, None] if self.head is MULTIPLE_CHOICE else [None, None]
        return [tf.TensorSpec(shape, tf.int64, name=n) for n in ("input_ids", "attention_mask", "token_type_ids")]

    def export_saved_model(self, export_dir: str | os.PathLike) -> Path:
        """Write a TensorFlow SavedModel with a ``serving_default`` signature.

        The signature takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64) and returns the main
        outputs by name (``logits``; ``start_logits``/``end_logits``; ``last_hidden_state``). Reload it with
        ``tf.saved_model.load(export_dir).signatures["serving_default"]`` (no roformer code needed).
        """

        def serve(input_ids: tf.Tensor, attention_mask: tf.Tensor, token_type_ids: tf.Tensor) -> dict[str, tf.Tensor]:
            out = self(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, training=False)
            return self._main_outputs(out)

        archive = keras.export.ExportArchive()
        archive.track(self)
        archive.add_endpoint("serving_default", serve, input_signature=self.serving_input_signature())
        archive.write_out(str(export_dir), verbose=False)
        return Path(export_dir)

    # -- inputs ------------------------------------------------------------------------------------------------
    def _check_ids(self, name: str, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
        """Check the ids of input ``name`` are in ``[0, size)`` (``roformer_core.validation.id_limit``).

        Eagerly a ValueError. In a graph, asserts that run before the ids are used (an InvalidArgumentError, also
        on GPU where gather would return zeros) plus, because XLA drops asserts, a validity mask ``[B, L]`` the
        caller turns into NaN outputs.

        Returns:
            the ids to use (guarded by the asserts in a graph) and the mask (None when eager).
        """
        if ids.dtype.is_floating:
            raise ValueError(f"{name} must be integers, got {ids.dtype.name}")
        if not _in_graph():
            if tf.size(ids) > 0:
                check_id_range(name, int(tf.reduce_min(ids)), int(tf.reduce_max(ids)), self.config)
            return ids, None
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


class TFRoFormerModel(TFRoFormerPreTrainedModel):
    """The bare RoFormer encoder (or decoder when ``config.is_decoder``): outputs the final hidden states."""

    head = MODEL

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.embeddings = TFRoFormerEmbeddings(config, name="embeddings")
        self.embeddings_project = (
            _dense(config, config.hidden_size, config.embedding_size, "embeddings_project")
            if config.has_embeddings_project
            else None
        )
        self.encoder = TFRoFormerEncoder(config, name="encoder")

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.embeddings.word_embeddings

    def _attention_bias(
        self, mask: tf.Tensor | None, q_len: Any, k_len: Any, causal: bool, query_offset: Any, dtype: tf.DType
    ) -> tf.Tensor | None:
        """Additive bias ``[B, 1, Lq, Lk]`` (finfo.min where masked), or None when nothing is masked.

        ``query_offset`` is the absolute position of the first query (the cached length).
        """
        keep = None
        if mask is not None:
            keep = tf.cast(mask, tf.bool)
            keep = keep[:, None, None, :] if keep.shape.rank == 2 else keep[:, None, :, :]
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
        else:
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
            attention_mask: ``[B, P + L]`` (or ``[B, L, P + L]``) with 1 for tokens to attend to, 0 for padding;
                P is the cached length.
            token_type_ids: ``[B, L]`` in ``[0, type_vocab_size)``; zeros by default.
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
            ``last_hidden_state [B, L, hidden]``, then ``past_key_values``, ``hidden_states`` (num_layers + 1 of
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
        return self._finish(return_dict, **out)


def _base_kwargs(output_hidden_states: bool | None, output_attentions: bool | None) -> dict[str, Any]:
    return {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions, "return_dict": True}


class TFRoFormerPredictionHeadTransform(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config, config.embedding_size, config.hidden_size, "dense")
        self.act = ACTIVATIONS[config.hidden_act]
        self.LayerNorm = _layer_norm(config, config.embedding_size, "LayerNorm")

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.LayerNorm(self.act(self.dense(hidden_states)))


class TFRoFormerDecoder(_Block):
    """The LM decoder weight ``[V, E]`` when it is not tied to the word embeddings (canonical layout)."""

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = self.add_weight(
            shape=(config.vocab_size, config.embedding_size),
            initializer=_normal(config),
            name="weight",
        )


class TFRoFormerLMPredictionHead(_Block):
    """hidden ``[B, L, hidden]`` -> transform (down to E) -> decoder -> logits ``[B, L, V]``."""

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transform = TFRoFormerPredictionHeadTransform(config, name="transform")
        self.decoder = None if config.tie_word_embeddings else TFRoFormerDecoder(config, name="decoder")
        self.bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="bias")

    def call(self, hidden_states: tf.Tensor, word_embeddings: tf.Tensor) -> tf.Tensor:
        """``word_embeddings [V, E]`` is the decoder weight when tied."""
        x = self.transform.call(hidden_states)
        weight = word_embeddings if self.decoder is None else self.decoder.weight
        weight = tf.cast(weight, x.dtype)
        return tf.tensordot(x, weight, [[x.shape.rank - 1], [1]]) + tf.cast(self.bias, x.dtype)


class TFRoFormerOnlyMLMHead(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.predictions = TFRoFormerLMPredictionHead(config, name="predictions")

    def call(self, sequence_output: tf.Tensor, word_embeddings: tf.Tensor) -> tf.Tensor:
        return self.predictions.call(sequence_output, word_embeddings=word_embeddings)


class _TFLMModel(TFRoFormerPreTrainedModel):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.roformer = TFRoFormerModel(config, name="roformer")
        self.cls = TFRoFormerOnlyMLMHead(config, name="cls")

    def _logits(self, hidden: tf.Tensor) -> tf.Tensor:
        return self.cls.call(hidden, word_embeddings=self.roformer.embeddings.word_embeddings.embeddings)


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
        return self._finish(
            return_dict, loss=loss, logits=logits, hidden_states=base.hidden_states, attentions=base.attentions
        )


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
            hidden_states=base.hidden_states,
            attentions=base.attentions,
            cross_attentions=base.cross_attentions,
        )


class TFRoFormerClassificationHead(_Block):
    """First position -> dropout -> dense -> hidden_act -> dropout -> out_proj: ``[B, num_labels]``."""

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config, config.hidden_size, config.hidden_size, "dense")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.out_proj = _dense(config, config.num_labels, config.hidden_size, "out_proj")
        self.act = ACTIVATIONS[config.hidden_act]

    def call(self, features: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = self.dropout(features[:, 0], training=training)
        x = self.dropout(self.act(self.dense(x)), training=training)
        return self.out_proj(x)


_CLASSIFIER_ARGS = ("attention_mask", "token_type_ids", "head_mask", "inputs_embeds")


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
        return self._finish(
            return_dict, loss=loss, logits=logits, hidden_states=base.hidden_states, attentions=base.attentions
        )


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
        return self._finish(
            return_dict, loss=loss, logits=logits, hidden_states=base.hidden_states, attentions=base.attentions
        )


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
        return self._finish(
            return_dict, loss=loss, logits=logits, hidden_states=base.hidden_states, attentions=base.attentions
        )


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
            hidden_states=base.hidden_states,
            attentions=base.attentions,
        )
