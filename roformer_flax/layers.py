"""The building blocks of the Flax port (``flax.linen``): activations, the decoding cache, rotary helpers, the norm
and dense helpers every variant shares, embeddings, attention, layers, the encoder, the bare module and the head
layers. :mod:`roformer_flax.modeling` wraps them into the seven model classes.

The rotary layout is documented once, in :mod:`roformer_core.rotary`; here the table is a float32 constant, not a
parameter, computed for whatever length a call needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from roformer_core.config import RoFormerConfig
from roformer_core.constants import mask_fill_value
from roformer_core.rotary import sinusoidal_table

Array = jax.Array


def _gelu_fast(x: Array) -> Array:
    return 0.5 * x * (1.0 + jnp.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x: Array) -> Array:
    return x * jax.nn.sigmoid(1.702 * x)


def _mish(x: Array) -> Array:
    return x * jnp.tanh(jax.nn.softplus(x))


# Every name of roformer_core.activations.ACTIVATIONS; "gelu" is the exact (erf) GELU, as in the reference.
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "gelu": partial(jax.nn.gelu, approximate=False),
    "gelu_new": partial(jax.nn.gelu, approximate=True),
    "gelu_pytorch_tanh": partial(jax.nn.gelu, approximate=True),
    "gelu_fast": _gelu_fast,
    "quick_gelu": _quick_gelu,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "mish": _mish,
    "linear": lambda x: x,
}


# ---- the decoding cache -----------------------------------------------------------------------------------------


@struct.dataclass
class FlaxRoFormerCache:
    """Keys and values of every layer for incremental decoding, in fixed-capacity buffers (jit- and loop-friendly).

    Attributes:
        keys / values: per layer ``[B, H, C, D]``; positions ``>= index`` are unused. Keys (and values with
            ``rotary_value``) are stored already rotated, at their absolute positions.
        index: int32 scalar, the number of cached positions ``P``.
        cross_keys / cross_values: per layer ``[B, H, S, D]`` projections of the encoder states (decoders with
            cross-attention), computed on the first call and reused; None before.
        segments: with ``config.unilm``, int32 ``[B, C]`` the cumulative token types ``cumsum(token_type_ids)``
            of the cached positions (0 in unused slots), which the UniLM rule of later tokens compares with;
            None otherwise.
    """

    keys: tuple[Array, ...]
    values: tuple[Array, ...]
    index: Array
    cross_keys: tuple[Array, ...] | None = None
    cross_values: tuple[Array, ...] | None = None
    segments: Array | None = None

    @property
    def capacity(self) -> int:
        """``C``, the number of positions the buffers hold."""
        return self.keys[0].shape[2]

    @classmethod
    def empty(cls, config: RoFormerConfig, batch_size: int, capacity: int, dtype: Any = jnp.float32):
        """A cache with room for ``capacity`` positions, none filled."""
        shape = (batch_size, config.num_attention_heads, capacity, config.head_dim)
        zeros = tuple(jnp.zeros(shape, dtype) for _ in range(config.num_hidden_layers))
        segments = jnp.zeros((batch_size, capacity), jnp.int32) if config.unilm else None
        return cls(keys=zeros, values=zeros, index=jnp.zeros((), jnp.int32), segments=segments)

    def grown(self, capacity: int) -> FlaxRoFormerCache:
        """The same cache with buffers padded to ``capacity`` positions."""
        extra = capacity - self.capacity
        if extra <= 0:
            return self
        pad = ((0, 0), (0, 0), (0, extra), (0, 0))
        return self.replace(
            keys=tuple(jnp.pad(k, pad) for k in self.keys),
            values=tuple(jnp.pad(v, pad) for v in self.values),
            segments=None if self.segments is None else jnp.pad(self.segments, ((0, 0), (0, extra))),
        )

    def reordered(self, order: Array) -> FlaxRoFormerCache:
        """The cache of the rows ``order [N]`` (beam search keeps the rows of the surviving beams)."""
        return self.replace(
            keys=tuple(k[order] for k in self.keys),
            values=tuple(v[order] for v in self.values),
            segments=None if self.segments is None else self.segments[order],
        )


# ---- building blocks --------------------------------------------------------------------------------------------


def rotary_table(length: int, dim: int, offset: Array | int = 0, capacity: int | None = None) -> Array:
    """Float32 sin/cos rows for positions ``offset .. offset + length - 1`` (``[L, D]``).

    With a traced ``offset`` (cached decoding) the rows are sliced from a constant table of ``capacity`` rows.
    """
    if isinstance(offset, int):
        return jnp.asarray(sinusoidal_table(length, dim, np.float32, offset=offset))
    table = jnp.asarray(sinusoidal_table(capacity, dim, np.float32))
    return jax.lax.dynamic_slice_in_dim(table, offset, length, axis=0)


def rotate_pairs(x: Array) -> Array:
    """``[x0, x1, x2, x3, ...] -> [-x1, x0, -x3, x2, ...]`` along the last axis."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    return jnp.stack((-pairs[..., 1], pairs[..., 0]), axis=-1).reshape(x.shape)


def apply_rotary(x: Array, table: Array) -> Array:
    """Rotate ``x [B, H, L, D]`` by the positions of ``table [L, D]`` (float32), in float32; result in ``x``'s dtype."""
    half = table.shape[-1] // 2
    sin_pos = jnp.repeat(table[:, :half], 2, axis=-1)  # [L, D]
    cos_pos = jnp.repeat(table[:, half:], 2, axis=-1)  # [L, D]
    x32 = x.astype(jnp.float32)
    return (x32 * cos_pos + rotate_pairs(x32) * sin_pos).astype(x.dtype)


def _normal(config: RoFormerConfig, zero_row: int | None = None) -> Callable:
    """Normal(0, initializer_range); with ``zero_row`` that row zeroed (PyTorch's embedding ``padding_idx``)."""
    normal = jax.nn.initializers.normal(stddev=config.initializer_range)
    if zero_row is None:
        return normal
    return lambda key, shape, dtype=jnp.float32: normal(key, shape, dtype).at[zero_row].set(0)


def _dense(
    config: RoFormerConfig, features: int, dtype: Any, name: str | None = None, use_bias: bool = True
) -> nn.Dense:
    """A Linear layer ``[in, out]`` kernel (+ bias); the encoder's own projections pass ``config.use_bias``."""
    return nn.Dense(
        features, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32, kernel_init=_normal(config), name=name
    )


def _layer_norm(config: RoFormerConfig, dtype: Any) -> nn.LayerNorm:
    # eps from the config (Flax's default differs); the two-pass variance, as torch computes it.
    return nn.LayerNorm(epsilon=config.layer_norm_eps, dtype=dtype, param_dtype=jnp.float32, use_fast_variance=False)


class FlaxRoFormerRMSNorm(nn.Module):
    """RoFormer-V2's norm ``x / sqrt(mean(x^2) + eps)``: no centring, no parameters; computed in float32."""

    epsilon: float
    dtype: Any = jnp.float32

    def __call__(self, x: Array) -> Array:
        x32 = x.astype(jnp.float32)
        return (x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.epsilon)).astype(self.dtype)


def _norm(config: RoFormerConfig, dtype: Any) -> nn.Module:
    """The encoder's norm (after the embeddings, the attention and the feed-forward block): LayerNorm or, with
    ``config.norm_type == "rms_norm"``, V2's weightless RMS norm; eps is ``config.layer_norm_eps`` for both."""
    if config.norm_type == "rms_norm":
        return FlaxRoFormerRMSNorm(epsilon=config.layer_norm_eps, dtype=dtype)
    return _layer_norm(config, dtype)


class FlaxRoFormerEmbeddings(nn.Module):
    """Word + token-type embeddings, LayerNorm, dropout (no absolute positions). Output ``[B, L, E]``."""

    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.word_embeddings = nn.Embed(
            config.vocab_size,
            config.embedding_size,
            embedding_init=_normal(config, config.pad_token_id),
            dtype=self.dtype,
        )
        self.token_type_embeddings = nn.Embed(
            config.type_vocab_size, config.embedding_size, embedding_init=_normal(config), dtype=self.dtype
        )
        self.LayerNorm = _norm(config, self.dtype)
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)

    def __call__(
        self,
        input_ids: Array | None,
        token_type_ids: Array | None,
        inputs_embeds: Array | None,
        deterministic: bool = True,
    ) -> Array:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids.astype(jnp.int32))
        if token_type_ids is None:
            token_type_ids = jnp.zeros(inputs_embeds.shape[:2], jnp.int32)
        embeddings = inputs_embeds.astype(self.dtype) + self.token_type_embeddings(token_type_ids.astype(jnp.int32))
        return self.dropout(self.LayerNorm(embeddings), deterministic=deterministic)


class FlaxRoFormerSelfAttention(nn.Module):
    """Multi-head attention with rotary positions (self-attention) or without (cross-attention)."""

    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        width, bias = self.config.hidden_size, self.config.use_bias
        self.query = _dense(self.config, width, self.dtype, use_bias=bias)
        self.key = _dense(self.config, width, self.dtype, use_bias=bias)
        self.value = _dense(self.config, width, self.dtype, use_bias=bias)
        self.dropout = nn.Dropout(rate=self.config.attention_probs_dropout_prob)

    def _split(self, x: Array) -> Array:
        B, L, _ = x.shape
        return x.reshape(B, L, self.config.num_attention_heads, self.config.head_dim).transpose(0, 2, 1, 3)

    def __call__(
        self,
        hidden_states: Array,
        bias: Array | None,
        rotary: Array | None,
        head_mask: Array | None,
        kv_states: Array | None = None,
        cache: tuple[Array, Array] | None = None,
        cache_index: Array | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
    ) -> tuple[Array, tuple[Array, Array] | None, Array | None]:
        """Attend.

        Args:
            hidden_states: queries' source ``[B, Lq, E]``.
            bias: additive mask broadcastable to ``[B, H, Lq, Lk]`` (the mask fill value where masked) or None.
            rotary: float32 table rows ``[Lq, D]`` for self-attention; None for cross-attention.
            head_mask: ``[H]`` multiplier of the attention probabilities, or None.
            kv_states: cross-attention source ``[B, Lk, E]`` (None for self-attention).
            cache: self-attention: ``(key, value)`` buffers ``[B, H, C, D]`` the new keys are written into at
                ``cache_index``; cross-attention: the cached ``(key, value)`` to reuse.
            cache_index: int32 scalar, first position to write (self-attention with a cache).
            deterministic: no dropout.
            output_attentions: return the probabilities ``[B, H, Lq, Lk]``.

        Returns:
            context ``[B, Lq, E]``, the ``(key, value)`` to cache (or None) and the probabilities (or None).
        """
        q = self._split(self.query(hidden_states))  # [B, H, Lq, D]
        if kv_states is not None and cache is not None:
            k, v = cache
        else:
            source = hidden_states if kv_states is None else kv_states
            k = self._split(self.key(source))  # [B, H, Lk, D]
            v = self._split(self.value(source))
            if rotary is not None:
                k = apply_rotary(k, rotary)
                if self.config.rotary_value:
                    v = apply_rotary(v, rotary)
                if cache is not None:
                    k = jax.lax.dynamic_update_slice(cache[0], k.astype(cache[0].dtype), (0, 0, cache_index, 0))
                    v = jax.lax.dynamic_update_slice(cache[1], v.astype(cache[1].dtype), (0, 0, cache_index, 0))
        new_cache = (k, v) if (cache is not None or kv_states is not None) else None
        if rotary is not None:
            q = apply_rotary(q, rotary)
        q = q / jnp.asarray(math.sqrt(self.config.head_dim), q.dtype)
        k, v = k.astype(q.dtype), v.astype(q.dtype)
        dropout = not deterministic and self.config.attention_probs_dropout_prob > 0
        probs = None
        if output_attentions or dropout:
            scores = jnp.einsum("bhqd,bhkd->bhqk", q, k)
            if bias is not None:
                scores = scores + bias.astype(scores.dtype)
            probs = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(self.dtype)
            probs = self.dropout(probs, deterministic=deterministic)
            if head_mask is not None:
                probs = probs * head_mask.astype(probs.dtype)[None, :, None, None]
            context = jnp.einsum("bhqk,bhkd->bhqd", probs, v)  # [B, H, Lq, D]
        else:
            context = _attend_by_query_chunks(q, k, v, bias)
            if head_mask is not None:  # a per-head factor on the probabilities is one on their average of v
                context = context * head_mask.astype(context.dtype)[None, :, None, None]
        context = context.transpose(0, 2, 1, 3)
        context = context.reshape(*context.shape[:2], -1)  # [B, Lq, H * D]
        return context, new_cache, probs


# Queries per block of the fused attention path: the [block, Lk] scores of one block stay in cache, which makes
# long sequences several times faster on CPU than materializing [Lq, Lk] at once.
_QUERY_CHUNK = 128


def _attend_by_query_chunks(q: Array, k: Array, v: Array, bias: Array | None) -> Array:
    """``softmax(q k^T + bias) v`` block by block of queries (no attention maps, no dropout).

    Args:
        q: ``[B, H, Lq, D]`` already scaled; k, v: ``[B, H, Lk, D]``.
        bias: additive mask ``[B or 1, 1, Lq or 1, Lk]`` or None.

    Returns:
        context ``[B, H, Lq, D]``.
    """

    def attend(q_block: Array, bias_block: Array | None) -> Array:
        scores = jnp.einsum("bhqd,bhkd->bhqk", q_block, k).astype(jnp.float32)
        if bias_block is not None:
            scores = scores + bias_block.astype(jnp.float32)
        weights = jnp.exp(scores - jnp.max(scores, axis=-1, keepdims=True))
        context = jnp.einsum("bhqk,bhkd->bhqd", weights.astype(v.dtype), v).astype(jnp.float32)
        return (context / jnp.sum(weights, axis=-1, keepdims=True)).astype(q.dtype)

    B, H, Lq, D = q.shape
    if Lq <= _QUERY_CHUNK:
        return attend(q, bias)
    blocks = -(-Lq // _QUERY_CHUNK)
    pad = blocks * _QUERY_CHUNK - Lq

    def split(x: Array) -> Array:  # [b, h, Lq, n] -> [blocks, b, h, chunk, n]
        x = jnp.pad(x, ((0, 0), (0, 0), (0, pad), (0, 0)))
        return x.reshape(x.shape[0], x.shape[1], blocks, _QUERY_CHUNK, x.shape[-1]).transpose(2, 0, 1, 3, 4)

    per_query_bias = bias is not None and bias.shape[2] != 1
    xs = (split(q), split(bias) if per_query_bias else None)
    out = jax.lax.map(lambda x: attend(x[0], x[1] if per_query_bias else bias), xs)  # [blocks, B, H, chunk, D]
    return out.transpose(1, 2, 0, 3, 4).reshape(B, H, blocks * _QUERY_CHUNK, D)[:, :, :Lq]


class FlaxRoFormerSelfOutput(nn.Module):
    """Output projection, dropout and post-norm residual of an attention block."""

    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = _dense(self.config, self.config.hidden_size, self.dtype, use_bias=self.config.use_bias)
        self.LayerNorm = _norm(self.config, self.dtype)
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)

    def __call__(self, hidden_states: Array, residual: Array, deterministic: bool = True) -> Array:
        return self.LayerNorm(self.dropout(self.dense(hidden_states), deterministic=deterministic) + residual)


class FlaxRoFormerAttention(nn.Module):
    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.self = FlaxRoFormerSelfAttention(self.config, dtype=self.dtype)
        self.output = FlaxRoFormerSelfOutput(self.config, dtype=self.dtype)

    def __call__(self, hidden_states: Array, *args: Any, deterministic: bool = True, **kwargs: Any):
        context, cache, probs = self.self(hidden_states, *args, deterministic=deterministic, **kwargs)
        return self.output(context, hidden_states, deterministic=deterministic), cache, probs


class FlaxRoFormerIntermediate(nn.Module):
    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = _dense(self.config, self.config.intermediate_size, self.dtype, use_bias=self.config.use_bias)
        self.act = ACTIVATIONS[self.config.hidden_act]

    def __call__(self, hidden_states: Array) -> Array:
        return self.act(self.dense(hidden_states))


class FlaxRoFormerOutput(FlaxRoFormerSelfOutput):
    """The feed-forward block's output: the same computation (Flax infers the input width from the data)."""


class FlaxRoFormerLayer(nn.Module):
    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.attention = FlaxRoFormerAttention(self.config, dtype=self.dtype)
        if self.config.add_cross_attention:
            self.crossattention = FlaxRoFormerAttention(self.config, dtype=self.dtype)
        self.intermediate = FlaxRoFormerIntermediate(self.config, dtype=self.dtype)
        self.output = FlaxRoFormerOutput(self.config, dtype=self.dtype)

    def __call__(
        self,
        hidden_states: Array,
        bias: Array | None,
        rotary: Array,
        head_mask: Array | None,
        encoder_hidden_states: Array | None,
        cross_bias: Array | None,
        cache: tuple[Array, ...] | None,
        cache_index: Array | None,
        deterministic: bool = True,
        output_attentions: bool = False,
    ):
        """One layer; ``cache`` is ``(key, value)`` or ``(key, value, cross_key, cross_value)`` (cross may be None)."""
        self_cache = cache[:2] if cache is not None else None
        x, new_cache, probs = self.attention(
            hidden_states,
            bias,
            rotary,
            head_mask,
            None,
            self_cache,
            cache_index,
            deterministic=deterministic,
            output_attentions=output_attentions,
        )
        cross_probs = None
        if encoder_hidden_states is not None:
            cross_cache = cache[2:4] if cache is not None and cache[2] is not None else None
            x, cross_kv, cross_probs = self.crossattention(
                x,
                cross_bias,
                None,
                head_mask,
                encoder_hidden_states,
                cross_cache,
                None,
                deterministic=deterministic,
                output_attentions=output_attentions,
            )
            if new_cache is not None:
                new_cache = new_cache + cross_kv
        x = self.output(self.intermediate(x), x, deterministic=deterministic)
        return x, new_cache, probs, cross_probs


class FlaxRoFormerLayerCollection(nn.Module):
    """The layers, named ``0 .. n-1`` (the reference's tree: ``encoder/layer/{n}``)."""

    config: RoFormerConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        layer_class = FlaxRoFormerLayer
        if self.gradient_checkpointing:
            # deterministic and output_attentions (positions 9 and 10 counting self) are Python bools
            layer_class = nn.remat(FlaxRoFormerLayer, static_argnums=(9, 10))
        self.layers = [
            layer_class(self.config, dtype=self.dtype, name=str(n)) for n in range(self.config.num_hidden_layers)
        ]

    def __call__(
        self,
        hidden_states: Array,
        bias: Array | None,
        rotary: Array,
        head_mask: Array | None,
        encoder_hidden_states: Array | None,
        cross_bias: Array | None,
        cache: FlaxRoFormerCache | None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> dict[str, Any]:
        all_hidden = [hidden_states] if output_hidden_states else None
        all_attn = [] if output_attentions else None
        all_cross = [] if output_attentions and encoder_hidden_states is not None else None
        new_keys, new_values, cross_keys, cross_values = [], [], [], []
        index = cache.index if cache is not None else None
        for n, layer in enumerate(self.layers):
            layer_cache = None
            if cache is not None:
                cross = (None, None) if cache.cross_keys is None else (cache.cross_keys[n], cache.cross_values[n])
                layer_cache = (cache.keys[n], cache.values[n], *cross)
            layer_head_mask = head_mask[n] if head_mask is not None else None
            hidden_states, layer_cache, probs, cross_probs = layer(
                hidden_states,
                bias,
                rotary,
                layer_head_mask,
                encoder_hidden_states,
                cross_bias,
                layer_cache,
                index,
                deterministic,
                output_attentions,
            )
            if cache is not None:
                new_keys.append(layer_cache[0])
                new_values.append(layer_cache[1])
                if len(layer_cache) == 4:
                    cross_keys.append(layer_cache[2])
                    cross_values.append(layer_cache[3])
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            if all_attn is not None:
                all_attn.append(probs)
            if all_cross is not None:
                all_cross.append(cross_probs)
        new_cache = None
        if cache is not None:
            new_cache = cache.replace(
                keys=tuple(new_keys),
                values=tuple(new_values),
                index=cache.index + hidden_states.shape[1],
                cross_keys=tuple(cross_keys) if cross_keys else cache.cross_keys,
                cross_values=tuple(cross_values) if cross_values else cache.cross_values,
            )
        return {
            "last_hidden_state": hidden_states,
            "past_key_values": new_cache,
            "hidden_states": tuple(all_hidden) if all_hidden is not None else None,
            "attentions": tuple(all_attn) if all_attn is not None else None,
            "cross_attentions": tuple(all_cross) if all_cross is not None else None,
        }


class FlaxRoFormerEncoder(nn.Module):
    """The rotary table (a float32 constant, any length) and the layers."""

    config: RoFormerConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.layer = FlaxRoFormerLayerCollection(
            self.config, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )

    def __call__(
        self,
        hidden_states: Array,
        bias: Array | None,
        head_mask: Array | None,
        encoder_hidden_states: Array | None,
        cross_bias: Array | None,
        cache: FlaxRoFormerCache | None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> dict[str, Any]:
        length = hidden_states.shape[1]
        if cache is None:
            rotary = rotary_table(length, self.config.head_dim)
        else:
            rotary = rotary_table(length, self.config.head_dim, cache.index, capacity=cache.capacity)
        return self.layer(
            hidden_states,
            bias,
            rotary,
            head_mask,
            encoder_hidden_states,
            cross_bias,
            cache,
            deterministic=deterministic,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )


def attention_bias(
    mask: Array | None,
    q_len: int,
    k_len: int,
    causal: bool,
    dtype: Any,
    offset: Array | int = 0,
    rule: Array | None = None,
) -> Array | None:
    """Additive bias ``[B or 1, 1, Lq, Lk]``: 0 where attended, the core's mask fill value where masked.

    Args:
        mask: ``[B, Lk]`` or ``[B, Lq, Lk]`` 0/1, or None.
        causal: also hide keys after each query; query ``i`` sits at absolute position ``offset + i``.
        offset: absolute position of the first query (the cached length; may be traced).
        rule: a boolean ``[B, Lq, Lk]`` rule combined with the mask (the UniLM rule of :func:`unilm_rule`).
    """
    keep = None if rule is None else rule[:, None]
    if mask is not None:
        given = mask.astype(bool)
        given = given[:, None, None, :] if given.ndim == 2 else given[:, None, :, :]
        keep = given if keep is None else keep & given
    if causal:
        rows = jnp.arange(q_len)[:, None] + offset
        tri = jnp.arange(k_len)[None, :] <= rows  # [Lq, Lk]
        keep = tri[None, None] if keep is None else keep & tri
    if keep is None:
        return None
    fill = mask_fill_value(jnp.dtype(dtype).name)
    return jnp.where(keep, jnp.zeros((), dtype), jnp.asarray(fill, dtype))


def unilm_rule(token_type_ids: Array, cache: FlaxRoFormerCache | None) -> tuple[Array, Array | None]:
    """The UniLM rule of :func:`roformer_core.masks.unilm_mask` (its spec) in jax ops, for a pass with or without
    a cache: query i attends key j iff ``C[j] <= C[i]`` with ``C = cumsum(token_type_ids)`` over the whole
    sequence, cached prefix included.

    Args:
        token_type_ids: int ``[B, L]``, the types of the new tokens.
        cache: the cache holding the prefix's cumulative types (``segments``), or None.

    Returns:
        bool ``[B, L, K]`` (``K = L`` without a cache, the capacity ``C`` with one; slots not filled yet are
        hidden) and the cache's updated ``segments [B, C]`` (None without a cache).
    """
    cumulative = jnp.cumsum(token_type_ids.astype(jnp.int32), axis=1)  # [B, L]
    if cache is None:
        return cumulative[:, None, :] <= cumulative[:, :, None], None
    # types are >= 0, so the prefix's total is its largest cumulative type (unused slots hold 0)
    queries = jnp.max(cache.segments, axis=1, keepdims=True) + cumulative  # [B, L]
    segments = jax.lax.dynamic_update_slice(cache.segments, queries, (0, cache.index))  # [B, C]
    filled = jnp.arange(cache.capacity) < cache.index + token_type_ids.shape[1]  # [C]
    return (segments[:, None, :] <= queries[:, :, None]) & filled, segments


class FlaxRoFormerPooler(nn.Module):
    """``pooler_activation(dense(hidden[:, 0]))``: ``[B, L, hidden] -> [B, hidden]`` (RoFormer-Sim's is linear)."""

    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = _dense(self.config, self.config.hidden_size, self.dtype)
        self.act = ACTIVATIONS[self.config.pooler_activation]

    def __call__(self, hidden_states: Array) -> Array:
        return self.act(self.dense(hidden_states[:, 0]))


class FlaxRoFormerModule(nn.Module):
    """The bare RoFormer encoder (or decoder when ``config.is_decoder``) as a ``flax.linen`` module."""

    config: RoFormerConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.embeddings = FlaxRoFormerEmbeddings(self.config, dtype=self.dtype)
        if self.config.has_embeddings_project:
            self.embeddings_project = _dense(self.config, self.config.hidden_size, self.dtype)
        self.encoder = FlaxRoFormerEncoder(
            self.config, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        if self.config.add_pooling_layer:
            self.pooler = FlaxRoFormerPooler(self.config, dtype=self.dtype)

    def __call__(
        self,
        input_ids: Array | None = None,
        attention_mask: Array | None = None,
        token_type_ids: Array | None = None,
        head_mask: Array | None = None,
        inputs_embeds: Array | None = None,
        encoder_hidden_states: Array | None = None,
        encoder_attention_mask: Array | None = None,
        cache: FlaxRoFormerCache | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> dict[str, Any]:
        """Encode (or decode).

        Args:
            input_ids: ``[B, L]`` int ids (or ``inputs_embeds [B, L, E]``).
            attention_mask: ``[B, K]`` or ``[B, L, K]`` 0/1, ``K = L`` without a cache and ``K = C`` (the cache
                capacity) with one.
            token_type_ids: ``[B, L]``; zeros when None. With ``config.unilm`` they also select the attention
                (the UniLM rule, instead of the decoder's causal one), combined with ``attention_mask``.
            head_mask: ``[num_layers, H]`` float multipliers of the attention probabilities, or None.
            encoder_hidden_states / encoder_attention_mask: ``[B, S, hidden]`` / ``[B, S]`` for cross-attention.
            cache: decoding cache; its ``index`` is the number of positions already cached.

        Returns:
            dict with ``last_hidden_state [B, L, hidden]``, ``past_key_values`` (the updated cache or None),
            ``hidden_states``, ``attentions``, ``cross_attentions`` (tuples or None) and, with
            ``config.add_pooling_layer``, ``pooler_output [B, hidden]``.
        """
        config = self.config
        hidden = self.embeddings(input_ids, token_type_ids, inputs_embeds, deterministic=deterministic)
        if config.has_embeddings_project:
            hidden = self.embeddings_project(hidden)
        length = hidden.shape[1]
        segments = None
        if config.unilm:
            types = jnp.zeros(hidden.shape[:2], jnp.int32) if token_type_ids is None else token_type_ids
            rule, segments = unilm_rule(types, cache)
            bias = attention_bias(attention_mask, length, rule.shape[-1], False, self.dtype, rule=rule)
        elif cache is None:
            bias = attention_bias(attention_mask, length, length, config.is_decoder, self.dtype)
        else:
            bias = attention_bias(attention_mask, length, cache.capacity, True, self.dtype, offset=cache.index)
        cross_bias = None
        if encoder_hidden_states is not None and config.is_decoder:
            encoder_hidden_states = encoder_hidden_states.astype(self.dtype)
            cross_bias = attention_bias(
                encoder_attention_mask, length, encoder_hidden_states.shape[1], False, self.dtype
            )
        else:
            encoder_hidden_states = None
        out = self.encoder(
            hidden,
            bias,
            head_mask,
            encoder_hidden_states,
            cross_bias,
            cache,
            deterministic=deterministic,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        if segments is not None:
            out["past_key_values"] = out["past_key_values"].replace(segments=segments)
        if config.add_pooling_layer:
            out["pooler_output"] = self.pooler(out["last_hidden_state"])
        return out


class FlaxRoFormerPredictionHeadTransform(nn.Module):
    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = _dense(self.config, self.config.embedding_size, self.dtype)
        self.act = ACTIVATIONS[self.config.hidden_act]
        self.LayerNorm = _layer_norm(self.config, self.dtype)

    def __call__(self, hidden_states: Array) -> Array:
        return self.LayerNorm(self.act(self.dense(hidden_states)))


class FlaxRoFormerLMPredictionHead(nn.Module):
    """hidden ``[B, L, hidden]`` -> transform (down to E) -> decoder (tied: the word embeddings) + bias ->
    ``[B, L, V]``; without ``config.has_lm_transform`` (RoFormer-V2) the decoder alone, no transform, no bias."""

    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        if config.has_lm_transform:
            self.transform = FlaxRoFormerPredictionHeadTransform(config, dtype=self.dtype)
            self.bias = self.param("bias", jax.nn.initializers.zeros, (config.vocab_size,), jnp.float32)
        if not config.tie_word_embeddings:
            self.decoder = _dense(config, config.vocab_size, self.dtype, use_bias=False)

    def __call__(self, hidden_states: Array, shared_embedding: Array | None = None) -> Array:
        if self.config.has_lm_transform:
            hidden_states = self.transform(hidden_states)
        if self.config.tie_word_embeddings:
            logits = hidden_states @ shared_embedding.T.astype(self.dtype)
        else:
            logits = self.decoder(hidden_states)
        if self.config.has_lm_transform:
            logits = logits + self.bias.astype(self.dtype)
        return logits


class FlaxRoFormerOnlyMLMHead(nn.Module):
    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.predictions = FlaxRoFormerLMPredictionHead(self.config, dtype=self.dtype)

    def __call__(self, sequence_output: Array, shared_embedding: Array | None = None) -> Array:
        return self.predictions(sequence_output, shared_embedding)


class FlaxRoFormerClassificationHead(nn.Module):
    """First position -> dropout -> dense -> hidden_act -> dropout -> out_proj: ``[B, num_labels]``."""

    config: RoFormerConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = _dense(self.config, self.config.hidden_size, self.dtype)
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)
        self.out_proj = _dense(self.config, self.config.num_labels, self.dtype)
        self.act = ACTIVATIONS[self.config.hidden_act]

    def __call__(self, features: Array, deterministic: bool = True) -> Array:
        x = self.dropout(features[:, 0], deterministic=deterministic)
        x = self.dropout(self.act(self.dense(x)), deterministic=deterministic)
        return self.out_proj(x)
