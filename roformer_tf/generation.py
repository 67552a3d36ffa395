"""Greedy and sampled decoding for the causal LM: one XLA-compiled loop over a fixed-size KV cache."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import tensorflow as tf

from roformer_core.generation import check_generate_args, prepare_prompts

# model -> its compiled decoding function (kept off the model so SavedModel export does not trace it)
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _filter_top_k(scores: tf.Tensor, top_k: int) -> tf.Tensor:
    if top_k <= 0 or top_k >= scores.shape[-1]:
        return scores
    kth = tf.math.top_k(scores, top_k).values[:, -1:]
    return tf.where(scores < kth, tf.constant(-np.inf, scores.dtype), scores)


def _filter_top_p(scores: tf.Tensor, top_p: float) -> tf.Tensor:
    if top_p >= 1.0:
        return scores
    order = tf.argsort(scores, axis=-1, direction="ASCENDING", stable=True)
    sorted_scores = tf.gather(scores, order, batch_dims=1)
    cumulative = tf.cumsum(tf.nn.softmax(sorted_scores, axis=-1), axis=-1)
    remove_sorted = cumulative <= (1 - top_p)
    keep_last = tf.one_hot(
        tf.shape(scores)[-1] - 1, tf.shape(scores)[-1], on_value=False, off_value=True, dtype=tf.bool
    )
    remove_sorted = remove_sorted & keep_last[None, :]  # always keep the most likely token
    remove = tf.gather(remove_sorted, tf.argsort(order, axis=-1), batch_dims=1)
    return tf.where(remove, tf.constant(-np.inf, scores.dtype), scores)


class TFGenerationMixin:
    """``generate()`` for :class:`TFRoFormerForCausalLM`."""

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
        generator: tf.random.Generator | None = None,
        token_type_ids: Any = None,
    ) -> tf.Tensor:
        """Continue each prompt with up to ``max_new_tokens`` tokens, using the KV cache.

        The whole loop (prompt pass, then one token per step into a cache preallocated for
        ``L + max_new_tokens`` positions) runs as one ``tf.function(jit_compile=True)``, compiled once per
        batch/prompt shape and per setting.

        Args:
            input_ids: prompts ``[B, L]``; with ``attention_mask`` they may be padded on either side.
            attention_mask: ``[B, L]`` 1 for prompt tokens, 0 for padding.
            max_new_tokens: tokens to add.
            do_sample: sample (with ``temperature``, then ``top_k``, then ``top_p`` filtering) instead of greedy.
            eos_token_id: stop a row when it emits this id (or any of these ids); later positions get
                ``pad_token_id``. Decoding ends early when every row has stopped.
            pad_token_id: filler after a row stopped; defaults to ``config.pad_token_id``.
            generator: ``tf.random.Generator`` the sampling seed is drawn from, for reproducible draws
                (default: the global generator).
            token_type_ids: ``[B, L]`` prompt token types; new tokens get type 0.

        Returns:
            ``[B, L + n]`` int64: the prompts followed by the new tokens (``n <= max_new_tokens``). Right-padded
            prompts are returned left-aligned (padding first) so every row continues right after its own text.
        """
        eos_ids, pad_token_id = check_generate_args(
            self.config, max_new_tokens, do_sample, temperature, top_k, top_p, eos_token_id, pad_token_id
        )
        ids, mask, types = prepare_prompts(self.config, input_ids, attention_mask, token_type_ids, pad_token_id)
        if max_new_tokens == 0:
            return tf.constant(ids)
        if do_sample:
            source = generator if generator is not None else tf.random.get_global_generator()
            seed = source.make_seeds(1)[:, 0]
        else:
            seed = tf.zeros([2], tf.int64)
        compiled = _COMPILED.get(self)
        if compiled is None:
            compiled = _COMPILED[self] = tf.function(self._decode_loop, jit_compile=True)
        sequences, steps = compiled(
            tf.constant(ids),
            tf.constant(mask),
            None if types is None else tf.constant(types),
            seed,
            max_new_tokens=max_new_tokens,
            do_sample=bool(do_sample),
            temperature=float(temperature),
            top_k=int(top_k or 0),
            top_p=1.0 if top_p is None else float(top_p),
            eos_ids=tuple(eos_ids),
            pad_token_id=pad_token_id,
        )
        return sequences[:, : ids.shape[1] + int(steps)]

    def _decode_loop(
        self,
        input_ids: tf.Tensor,
        attention_mask: tf.Tensor,
        token_type_ids: tf.Tensor | None,
        seed: tf.Tensor,
        *,
        max_new_tokens: int,
        do_sample: bool,
        temperature: float,
        top_k: int,
        top_p: float,
        eos_ids: tuple[int, ...],
        pad_token_id: int,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Prompt pass then ``max_new_tokens`` cached steps; returns ``[B, L + max_new_tokens]`` and the step count."""
        config = self.config
        batch, length = input_ids.shape
        total = length + max_new_tokens
        buffer_shape = (batch, config.num_attention_heads, total, config.head_dim)
        dtype = self.compute_dtype
        past = tuple(
            (tf.zeros(buffer_shape, dtype), tf.zeros(buffer_shape, dtype)) for _ in range(config.num_hidden_layers)
        )
        # future positions are hidden by the causal mask, so the mask can already cover them
        full_mask = tf.concat([attention_mask, tf.ones((batch, max_new_tokens), attention_mask.dtype)], axis=1)
        out = self(
            input_ids,
            attention_mask=full_mask,
            token_type_ids=token_type_ids,
            past_key_values=past,
            use_cache=True,
            cache_index=tf.constant(0, tf.int32),
            training=False,
        )
        sequences = tf.concat([input_ids, tf.fill((batch, max_new_tokens), tf.constant(pad_token_id, tf.int64))], 1)
        eos = tf.constant(eos_ids or [-1], tf.int64)
        pad = tf.constant(pad_token_id, tf.int64)

        def choose(logits: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
            scores = tf.cast(logits, tf.float32)
            if not do_sample:
                return tf.argmax(scores, axis=-1, output_type=tf.int64)
            scores = _filter_top_p(_filter_top_k(scores / temperature, top_k), top_p)
            step_seed = seed + tf.stack([tf.constant(0, tf.int64), tf.cast(step, tf.int64)])
            # Gumbel-max sampling: XLA has no multinomial kernel but compiles uniform draws
            uniform = tf.random.stateless_uniform(tf.shape(scores), step_seed, minval=1e-20, maxval=1.0)
            return tf.argmax(scores - tf.math.log(-tf.math.log(uniform)), axis=-1, output_type=tf.int64)

        def cond(step, sequences, past, logits, finished):
            return (step < max_new_tokens) & ~tf.reduce_all(finished)

        def body(step, sequences, past, logits, finished):
            next_ids = tf.where(finished, pad, choose(logits, step))
            sequences = tf.tensor_scatter_nd_update(
                sequences,
                tf.stack([tf.range(batch, dtype=tf.int64), tf.fill([batch], tf.cast(length + step, tf.int64))], 1),
                next_ids,
            )
            if eos_ids:
                finished = finished | tf.reduce_any(next_ids[:, None] == eos[None, :], axis=1)

            def advance():
                out = self(
                    next_ids[:, None],
                    attention_mask=full_mask,
                    past_key_values=past,
                    use_cache=True,
                    cache_index=length + step,
                    training=False,
                )
                return tuple(tuple(layer) for layer in out.past_key_values), out.logits[:, -1]

            past, logits = tf.cond(step + 1 < max_new_tokens, advance, lambda: (past, logits))
            return step + 1, sequences, past, logits, finished

        step, sequences, _, _, _ = tf.while_loop(
            cond,
            body,
            (
                tf.constant(0, tf.int32),
                sequences,
                tuple(tuple(layer) for layer in out.past_key_values),
                out.logits[:, -1],
                tf.zeros([batch], tf.bool),
            ),
        )
        return sequences, step
