"""The building blocks of the Keras RoFormer models: embeddings, rotary self-attention, the encoder layers, the
norm and dense helpers, the pooler and the heads' blocks (the seven model classes are in :mod:`.modeling`).

Attributes follow the reference's module names, so every canonical parameter name of :mod:`roformer_core.schema`
resolves to one Keras variable; the only rename is ``output`` -> ``output_layer`` because Keras layers reserve
``output``. The rotary layout is documented once, in :mod:`roformer_core.rotary`. The family members (V2's RMS
norm and missing biases, Sim's pooler and UniLM rule) are config fields read by these shared blocks
(docs/variants.md).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.ops import control_flow_util

from roformer_core.config import RoFormerConfig
from roformer_core.rotary import rotary_denominators

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


def _dense(
    config: RoFormerConfig, units: int, in_features: int, name: str, use_bias: bool = True
) -> keras.layers.Dense:
    """A built dense layer; the encoder's own projections pass ``use_bias=config.use_bias`` (RoFormer-V2 has none),
    the pooler, classifiers and V1's LM transform keep their bias (docs/variants.md)."""
    layer = keras.layers.Dense(units, use_bias=use_bias, kernel_initializer=_normal(config), name=name)
    layer.build((None, in_features))
    return layer


def _layer_norm(config: RoFormerConfig, width: int, name: str) -> keras.layers.LayerNormalization:
    layer = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name)
    layer.build((None, width))
    return layer


class TFRoFormerRMSNorm(keras.layers.Layer):
    """RoFormer-V2's weightless norm ``x / sqrt(mean(x^2) + eps)`` over the last axis (no centring, no scale).

    Like Keras' LayerNormalization it normalizes in float32 under a float16 / bfloat16 policy and returns the
    compute dtype.
    """

    def __init__(self, epsilon: float, **kwargs: Any) -> None:
        super().__init__(autocast=False, **kwargs)
        self.epsilon = epsilon
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x32 = tf.cast(x, tf.float32)
        normed = x32 * tf.math.rsqrt(tf.reduce_mean(tf.square(x32), axis=-1, keepdims=True) + self.epsilon)
        return tf.cast(normed, self.compute_dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


def _norm(config: RoFormerConfig, width: int, name: str) -> keras.layers.Layer:
    """The encoder's norm, by ``config.norm_type``: LayerNorm with scale and shift (V1), or V2's weightless RMS norm
    (nothing in the state dict); eps is ``layer_norm_eps`` for both."""
    if config.norm_type == "layer_norm":
        return _layer_norm(config, width, name)
    return TFRoFormerRMSNorm(config.layer_norm_eps, name=name)


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


def _xla_compiling() -> bool:
    """Whether the graph being traced is compiled by XLA (``jit_compile``). XLA drops asserts, logging "Ignoring
    Assert operator" for each, so none are built there: Keras' steps check each batch before the compiled step
    (``_autoconvert_optionals``), and bad ids otherwise come out as NaN rows."""
    return _in_graph() and control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


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
        self.LayerNorm = _norm(config, E, "LayerNorm")
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
        self.query = _dense(config, width, width, "query", config.use_bias)
        self.key = _dense(config, width, width, "key", config.use_bias)
        self.value = _dense(config, width, width, "value", config.use_bias)
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
        self.dense = _dense(config, config.hidden_size, config.hidden_size, "dense", config.use_bias)
        self.LayerNorm = _norm(config, config.hidden_size, "LayerNorm")
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
        self.dense = _dense(config, config.intermediate_size, config.hidden_size, "dense", config.use_bias)
        self.act = ACTIVATIONS[config.hidden_act]

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.act(self.dense(hidden_states))


class TFRoFormerOutput(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config, config.hidden_size, config.intermediate_size, "dense", config.use_bias)
        self.LayerNorm = _norm(config, config.hidden_size, "LayerNorm")
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


class TFRoFormerPooler(_Block):
    """``pooler_activation(dense(hidden[:, 0]))``: ``[B, L, hidden] -> [B, hidden]`` (RoFormer-Sim's is linear)."""

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config, config.hidden_size, config.hidden_size, "dense")
        self.act = ACTIVATIONS[config.pooler_activation]

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.act(self.dense(hidden_states[:, 0]))


def unilm_keep(token_type_ids: tf.Tensor, past_length: Any, k_len: Any) -> tf.Tensor:
    """The UniLM rule (:func:`roformer_core.masks.unilm_mask`, its spec), in TensorFlow ops so that graphs and XLA
    keep it, for the ``L`` queries of one pass over ``k_len`` keys: bool ``[B, 1, L, k_len]``.

    Query i attends key j iff ``C[j] <= C[i]`` with ``C = cumsum(token_type_ids)``. The ``past_length`` cached keys
    precede every query and C never decreases, so they are always attended and the new tokens' types ``[B, L]``
    suffice. Keys past the new ones (the unwritten tail of ``generate``'s fixed-size cache buffers) are never
    attended: the rule, not a causal one, keeps the future out.
    """
    cumulative = tf.cumsum(tf.cast(token_type_ids, tf.int32), axis=1)  # [B, L]
    length = _shape(cumulative)[1]
    position = tf.range(k_len) - tf.cast(past_length, tf.int32)  # key j's index among the new tokens
    key_segment = tf.gather(cumulative, tf.clip_by_value(position, 0, length - 1), axis=1)  # [B, Lk]
    key_segment = tf.where(position < 0, tf.int32.min, tf.where(position >= length, tf.int32.max, key_segment))
    return (key_segment[:, None, :] <= cumulative[:, :, None])[:, None]


# ---- heads' blocks -----------------------------------------------------------------------------------------------


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
    """hidden ``[B, L, hidden]`` -> transform (down to E) -> decoder -> + bias: logits ``[B, L, V]``.

    RoFormer-V2 (``config.has_lm_transform`` false) has the decoder alone: no transform, no bias.
    """

    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transform = None
        self.bias = None
        if config.has_lm_transform:
            self.transform = TFRoFormerPredictionHeadTransform(config, name="transform")
            self.bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="bias")
        self.decoder = None if config.tie_word_embeddings else TFRoFormerDecoder(config, name="decoder")

    def call(self, hidden_states: tf.Tensor, word_embeddings: tf.Tensor) -> tf.Tensor:
        """``word_embeddings [V, E]`` is the decoder weight when tied."""
        x = hidden_states if self.transform is None else self.transform.call(hidden_states)
        weight = word_embeddings if self.decoder is None else self.decoder.weight
        logits = tf.tensordot(x, tf.cast(weight, x.dtype), [[x.shape.rank - 1], [1]])
        return logits if self.bias is None else logits + tf.cast(self.bias, x.dtype)


class TFRoFormerOnlyMLMHead(_Block):
    def __init__(self, config: RoFormerConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.predictions = TFRoFormerLMPredictionHead(config, name="predictions")

    def call(self, sequence_output: tf.Tensor, word_embeddings: tf.Tensor) -> tf.Tensor:
        return self.predictions.call(sequence_output, word_embeddings=word_embeddings)


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
