"""Greedy and sampled decoding with the KV cache for the causal LM, as one jit-compiled ``lax.while_loop``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from roformer_core.generation import check_generate_args, prepare_prompts

# Shapes and branches are static; the temperature is a traced value, so changing it does not recompile.
_GENERATE_STATIC = ("max_new_tokens", "do_sample", "top_k", "top_p", "eos_ids", "pad_token_id")


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


class FlaxGenerationMixin:
    """``generate()`` for :class:`~roformer_flax.FlaxRoFormerForCausalLM`: arguments as the PyTorch port's."""

    def generate(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = 50,
        top_p: float | None = 1.0,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        generator: jax.Array | int | None = None,
        token_type_ids: Any = None,
        params: Any = None,
    ) -> np.ndarray:
        """Continue each prompt with up to ``max_new_tokens`` tokens, using the KV cache.

        The prompt pass and the decoding loop (``jax.lax.while_loop``, stopping early once every row has
        emitted an end-of-sequence id) run as one compiled function, cached per prompt shape and per setting that
        changes the program (``max_new_tokens``, ``do_sample``, ``top_k``, ``top_p``, the eos and pad ids; greedy
        decoding ignores the sampling settings, and ``temperature`` never recompiles).

        Args:
            input_ids: prompts ``[B, L]``; with ``attention_mask`` they may be padded on either side.
            attention_mask: ``[B, L]`` 1 for prompt tokens, 0 for padding.
            max_new_tokens: tokens to add.
            do_sample: sample (with ``temperature``, then ``top_k``, then ``top_p`` filtering) instead of greedy.
            eos_token_id: stop a row when it emits this id (or any of these ids); later positions get
                ``pad_token_id``.
            pad_token_id: filler after a row stopped; defaults to ``config.pad_token_id``.
            generator: a ``jax.random`` key or an int seed for sampling (the PyTorch port's ``generator``).
            token_type_ids: ``[B, L]`` prompt token types; new tokens get type 0.
            params: parameters to use instead of ``self.params``.

        Returns:
            int64 numpy ``[B, L + n]``: the prompts followed by the new tokens (``n <= max_new_tokens``).
            Right-padded prompts are returned left-aligned (padding first), as the PyTorch port does.
        """
        eos_ids, pad_token_id = check_generate_args(
            self.config, max_new_tokens, do_sample, temperature, top_k, top_p, eos_token_id, pad_token_id
        )
        ids, mask, types = prepare_prompts(self.config, input_ids, attention_mask, token_type_ids, pad_token_id)
        if max_new_tokens == 0:
            return ids
        if not do_sample:  # greedy: the sampling settings are unused, so they must not key a new compilation
            temperature, top_k, top_p = 1.0, 0, 1.0
        if generator is None:
            generator = 0
        key = jax.random.PRNGKey(generator) if isinstance(generator, int) else generator
        if self._jit_generate is None:
            self._jit_generate = jax.jit(self._generate_loop, static_argnames=_GENERATE_STATIC)
        sequences, steps = self._jit_generate(
            self.params if params is None else params,
            jnp.asarray(ids, jnp.int32),
            jnp.asarray(mask, jnp.int32),
            None if types is None else jnp.asarray(types, jnp.int32),
            key,
            jnp.float32(temperature),
            max_new_tokens=max_new_tokens,
            do_sample=bool(do_sample),
            top_k=int(top_k or 0),
            top_p=1.0 if top_p is None else float(top_p),
            eos_ids=tuple(eos_ids),
            pad_token_id=pad_token_id,
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
            scores, cache = step(next_ids[:, None], None, cache)
            return n + 1, sequences, cache, finished, scores, key

        state = (jnp.zeros((), jnp.int32), sequences, cache, jnp.zeros((batch,), bool), scores, key)
        n, sequences, *_ = jax.lax.while_loop(cond, body, state)
        return sequences, n
