"""Decoding for the causal LM: greedy and top-k/top-p sampling as one jit-compiled ``lax.while_loop`` over the KV
cache; everything else (beam search, logits processors) through the core's host-driven loop, one jit-compiled step
per token over the same fixed-size cache, reordered by beam index."""

from __future__ import annotations

import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from roformer_core.decoding import decode_on_host
from roformer_core.generation import (
    GenerationConfig,
    GenerationConfigMixin,
    generated_token_type,
    plan_generation,
)

# Shapes and branches are static; the temperature is a traced value, so changing it does not recompile.
_GENERATE_STATIC = ("max_new_tokens", "do_sample", "top_k", "top_p", "eos_ids", "pad_token_id")
# model -> the compiled prompt pass and one-token step (reorder the cache, then run one token) of the host-driven loop
_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _filter_top_k(scores: jax.Array, top_k: int) -> jax.Array:
    if top_k <= 0 or top_k >= scores.shape[-1]:
        return scores
    kth = jax.lax.top_k(scores, top_k)[0][:, -1:]
    return jnp.where(scores < kth, -jnp.inf, scores)


def _filter_top_p(scores: jax.Array, top_p: float) -> jax.Array:
    if top_p >= 1.0:
        return scores
    order = jnp.argsort(scores, axis=-1)  # ascending
    sorted_scores = jnp.take_along_axis(scores, order, axis=-1)
    cumulative = jnp.cumsum(jax.nn.softmax(sorted_scores, axis=-1), axis=-1)
    remove_sorted = (cumulative <= (1 - top_p)).at[:, -1].set(False)  # always keep the most likely token
    rows = jnp.arange(scores.shape[0])[:, None]
    remove = jnp.zeros_like(remove_sorted).at[rows, order].set(remove_sorted)
    return jnp.where(remove, -jnp.inf, scores)


class FlaxGenerationMixin(GenerationConfigMixin):
    """``generate()`` for :class:`~roformer_flax.FlaxRoFormerForCausalLM`, and its ``generation_config.json``."""

    def generate(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        generation_config: GenerationConfig | None = None,
        *,
        generator: jax.Array | int | None = None,
        token_type_ids: Any = None,
        params: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Continue each prompt, as transformers' ``generate`` does, using the KV cache.

        The settings are the PyTorch port's (the fields of :class:`roformer_core.GenerationConfig`), with the same
        results. Greedy decoding and top-k/top-p sampling run the prompt pass and the decoding loop
        (``jax.lax.while_loop``, stopping early once every row has emitted an end-of-sequence id) as one compiled
        function, cached per prompt shape and per setting that changes the program (``max_new_tokens``,
        ``do_sample``, ``top_k``, ``top_p``, the eos and pad ids; greedy decoding ignores the sampling settings,
        and ``temperature`` never recompiles). Beam search and the logits processors (``repetition_penalty``,
        ``no_repeat_ngram_size``, ``bad_words_ids``, ``min_new_tokens``) run the core's host-driven loop, one
        compiled step per token.

        Args:
            input_ids: prompts ``[B, L]``; with ``attention_mask`` they may be padded on either side.
            attention_mask: ``[B, L]`` 1 for prompt tokens, 0 for padding.
            generation_config: settings to start from (default: :attr:`generation_config`, else transformers'
                defaults); special ids left None come from the model config.
            generator: a ``jax.random`` key or an int seed for sampling (the PyTorch port's ``generator``).
            token_type_ids: ``[B, L]`` prompt token types (zeros when None); new tokens get type 0, or type 1
                with ``config.unilm`` (RoFormer-Sim: the prompt, encoded once, is the source segment and the new
                tokens the target segment).
            params: parameters to use instead of ``self.params``.
            **kwargs: settings that override ``generation_config`` (e.g. ``max_new_tokens=8, num_beams=4``).

        Returns:
            int64 numpy ``[B * num_return_sequences, L + n]``: the prompts followed by the new tokens; after a
            row's end-of-sequence id, ``pad_token_id``. Right-padded prompts are returned left-aligned (padding
            first), as the PyTorch port does.
        """
        plan = plan_generation(
            self.config, generation_config or self.generation_config, kwargs, input_ids, attention_mask, token_type_ids
        )
        params = self.params if params is None else params
        seed_or_key = 0 if generator is None else generator
        key = jax.random.PRNGKey(seed_or_key) if isinstance(seed_or_key, int) else seed_or_key
        if plan.uses_host_loop:
            return decode_on_host(plan, _Decoder(self, params, key))
        ids, settings = plan.input_ids, plan.settings
        if plan.max_new_tokens == 0:
            return ids
        temperature, top_k, top_p = settings.temperature, settings.top_k, settings.top_p
        if not settings.do_sample:  # greedy: the sampling settings are unused, so they must not key a new compilation
            temperature, top_k, top_p = 1.0, 0, 1.0
        if self._jit_generate is None:
            self._jit_generate = jax.jit(self._generate_loop, static_argnames=_GENERATE_STATIC)
        types = plan.token_type_ids
        sequences, steps = self._jit_generate(
            params,
            jnp.asarray(ids, jnp.int32),
            jnp.asarray(plan.attention_mask, jnp.int32),
            None if types is None else jnp.asarray(types, jnp.int32),
            key,
            jnp.float32(temperature),
            max_new_tokens=plan.max_new_tokens,
            do_sample=bool(settings.do_sample),
            top_k=int(top_k or 0),
            top_p=1.0 if top_p is None else float(top_p),
            eos_ids=plan.eos_ids,
            pad_token_id=plan.pad_token_id,
        )
        return np.asarray(sequences)[:, : ids.shape[1] + int(steps)].astype(np.int64)

    def _generate_loop(
        self,
        params: Any,
        input_ids: jax.Array,
        mask: jax.Array,
        token_type_ids: jax.Array | None,
        key: jax.Array,
        temperature: jax.Array,
        *,
        max_new_tokens: int,
        do_sample: bool,
        top_k: int,
        top_p: float,
        eos_ids: tuple[int, ...],
        pad_token_id: int,
    ) -> tuple[jax.Array, jax.Array]:
        """Traced body of :meth:`generate`: ``([B, L + max_new_tokens] ids, number of steps taken)``."""
        batch, length = input_ids.shape
        capacity = length + max_new_tokens
        full_mask = jnp.concatenate([mask, jnp.ones((batch, max_new_tokens), mask.dtype)], axis=1)  # [B, C]

        def step(ids: jax.Array, types: jax.Array | None, cache: Any) -> tuple[jax.Array, Any]:
            out = self.module.apply(
                {"params": params},
                input_ids=ids,
                attention_mask=full_mask,
                token_type_ids=types,
                cache=cache,
                deterministic=True,
            )
            return out["logits"][:, -1].astype(jnp.float32), out["past_key_values"]

        def choose(scores: jax.Array, key: jax.Array) -> jax.Array:
            if not do_sample:
                return jnp.argmax(scores, axis=-1).astype(jnp.int32)
            scores = _filter_top_p(_filter_top_k(scores / temperature, top_k), top_p)
            return jax.random.categorical(key, scores, axis=-1).astype(jnp.int32)

        scores, cache = step(input_ids, token_type_ids, self.init_cache(batch, capacity))
        sequences = jnp.full((batch, capacity), pad_token_id, jnp.int32).at[:, :length].set(input_ids)
        eos = jnp.asarray(eos_ids, jnp.int32) if eos_ids else None

        def cond(state: tuple) -> jax.Array:
            n, _, _, finished, _, _ = state
            return (n < max_new_tokens) & ~jnp.all(finished)

        def body(state: tuple) -> tuple:
            n, sequences, cache, finished, scores, key = state
            key, sample_key = jax.random.split(key)
            next_ids = jnp.where(finished, pad_token_id, choose(scores, sample_key))
            sequences = jax.lax.dynamic_update_slice(sequences, next_ids[:, None], (0, length + n))
            if eos is not None:
                finished = finished | jnp.isin(next_ids, eos)
            scores, cache = step(next_ids[:, None], self._generated_types(next_ids), cache)
            return n + 1, sequences, cache, finished, scores, key

        state = (jnp.zeros((), jnp.int32), sequences, cache, jnp.zeros((batch,), bool), scores, key)
        n, sequences, *_ = jax.lax.while_loop(cond, body, state)
        return sequences, n

    def _host_prefill(
        self, params: Any, input_ids: jax.Array, attention_mask: jax.Array, token_type_ids: jax.Array | None
    ) -> tuple[jax.Array, Any]:
        """Prompt pass ``[N, L]`` into a fresh cache of ``C`` positions (``attention_mask [N, C]``).

        Returns:
            the last position's logits ``[N, V]`` and the cache.
        """
        batch, capacity = attention_mask.shape
        out = self.module.apply(
            {"params": params},
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            cache=self.init_cache(batch, capacity),
            deterministic=True,
        )
        return out["logits"][:, -1].astype(jnp.float32), out["past_key_values"]

    def _host_step(
        self, params: Any, next_ids: jax.Array, attention_mask: jax.Array, cache: Any, order: jax.Array
    ) -> tuple[jax.Array, Any]:
        """One token per row ``[N, 1]`` after gathering the cache rows by ``order [N]``: ``(logits [N, V], cache)``."""
        out = self.module.apply(
            {"params": params},
            input_ids=next_ids,
            attention_mask=attention_mask,
            token_type_ids=self._generated_types(next_ids[:, 0]),
            cache=cache.reordered(order),
            deterministic=True,
        )
        return out["logits"][:, -1].astype(jnp.float32), out["past_key_values"]

    def _generated_types(self, next_ids: jax.Array) -> jax.Array:
        """Token types ``[N, 1]`` of generated tokens ``[N]`` (roformer_core.generation.generated_token_type)."""
        return jnp.full((next_ids.shape[0], 1), generated_token_type(self.config), jnp.int32)


class _Decoder:
    """The Flax side of :func:`roformer_core.decoding.decode_on_host`: a fixed-size :class:`FlaxRoFormerCache`
    (one compiled step serves every token), rows gathered by beam index, draws from split ``jax.random`` keys."""

    def __init__(self, model: Any, params: Any, key: jax.Array) -> None:
        self.model, self.params, self.key = model, params, key
        if model not in _STEPS:
            _STEPS[model] = (jax.jit(model._host_prefill), jax.jit(model._host_step))
        self.prefill_step, self.step = _STEPS[model]

    def prefill(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None, capacity: int
    ) -> np.ndarray:
        length = input_ids.shape[1]
        # positions not filled yet are hidden by the causal mask, so the mask can already cover them
        self.mask = jnp.asarray(np.pad(attention_mask, ((0, 0), (0, capacity - length)), constant_values=1), jnp.int32)
        types = None if token_type_ids is None else jnp.asarray(token_type_ids, jnp.int32)
        logits, self.cache = self.prefill_step(self.params, jnp.asarray(input_ids, jnp.int32), self.mask, types)
        return np.asarray(logits)

    def extend(self, next_ids: np.ndarray, beam_order: np.ndarray | None) -> np.ndarray:
        order = np.arange(len(next_ids)) if beam_order is None else beam_order
        logits, self.cache = self.step(
            self.params, jnp.asarray(next_ids[:, None], jnp.int32), self.mask, self.cache, jnp.asarray(order)
        )
        return np.asarray(logits)

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        self.key, draw = jax.random.split(self.key)
        return np.asarray(jax.random.uniform(draw, shape), np.float64)
