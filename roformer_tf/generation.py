"""Decoding for the causal LM: greedy and top-k/top-p sampling as one XLA-compiled loop over a fixed-size KV cache;
everything else (beam search, logits processors) through the core's host-driven loop, over the same fixed-size cache
reordered by beam index."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import tensorflow as tf

from roformer_core.config import RoFormerConfig
from roformer_core.decoding import decode_on_host
from roformer_core.generation import (
    GenerationConfig,
    GenerationConfigMixin,
    generated_token_type,
    plan_generation,
)

# model -> its compiled decoding function (kept off the model so SavedModel export does not trace it)
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# model -> its compiled one-token step of the host-driven loop (reorder the cache, then run one token)
_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _new_token_types(config: RoFormerConfig, next_ids: tf.Tensor) -> tf.Tensor | None:
    """Token types ``[N, 1]`` of generated tokens (:func:`roformer_core.generation.generated_token_type`: UniLM's
    target segment with ``config.unilm``); None for type 0, the default."""
    kind = generated_token_type(config)
    return tf.fill(tf.shape(next_ids), kind) if kind else None


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


class TFGenerationMixin(GenerationConfigMixin):
    """``generate()`` for :class:`TFRoFormerForCausalLM`, and its ``generation_config.json``."""

    def generate(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        generation_config: GenerationConfig | None = None,
        *,
        generator: tf.random.Generator | None = None,
        token_type_ids: Any = None,
        **kwargs: Any,
    ) -> tf.Tensor:
        """Continue each prompt, as transformers' ``generate`` does, using the KV cache.

        The settings are the PyTorch port's (the fields of :class:`roformer_core.GenerationConfig`), with the same
        results. Greedy decoding and top-k/top-p sampling run as one ``tf.function(jit_compile=True)`` (prompt
        pass, then one token per step into a cache preallocated for ``L + max_new_tokens`` positions), compiled
        once per batch/prompt shape and per setting. Beam search and the logits processors
        (``repetition_penalty``, ``no_repeat_ngram_size``, ``bad_words_ids``, ``min_new_tokens``) run the core's
        host-driven loop, one compiled step per token.

        Args:
            input_ids: prompts ``[B, L]``; with ``attention_mask`` they may be padded on either side.
            attention_mask: ``[B, L]`` 1 for prompt tokens, 0 for padding.
            generation_config: settings to start from (default: :attr:`generation_config`, else transformers'
                defaults); special ids left None come from the model config.
            generator: ``tf.random.Generator`` the sampling draws come from, for reproducible draws
                (default: the global generator).
            token_type_ids: ``[B, L]`` prompt token types; new tokens get type 0, or with ``config.unilm``
                (RoFormer-Sim: the prompt, encoded bidirectionally once, is the source segment) type 1, the target
                segment of the UniLM rule.
            **kwargs: settings that override ``generation_config`` (e.g. ``max_new_tokens=8, num_beams=4``).

        Returns:
            ``[B * num_return_sequences, L + n]`` int64: the prompts followed by the new tokens; after a row's
            end-of-sequence id, ``pad_token_id``. Right-padded prompts are returned left-aligned (padding first)
            so every row continues right after its own text.
        """
        plan = plan_generation(
            self.config, generation_config or self.generation_config, kwargs, input_ids, attention_mask, token_type_ids
        )
        source = generator if generator is not None else tf.random.get_global_generator()
        if plan.uses_host_loop:
            return tf.constant(decode_on_host(plan, _Decoder(self, source)))
        ids, settings = plan.input_ids, plan.settings
        if plan.max_new_tokens == 0:
            return tf.constant(ids)
        seed = source.make_seeds(1)[:, 0] if settings.do_sample else tf.zeros([2], tf.int64)
        compiled = _COMPILED.get(self)
        if compiled is None:
            compiled = _COMPILED[self] = tf.function(self._decode_loop, jit_compile=True)
        types = plan.token_type_ids
        sequences, steps = compiled(
            tf.constant(ids),
            tf.constant(plan.attention_mask),
            None if types is None else tf.constant(types),
            seed,
            max_new_tokens=plan.max_new_tokens,
            do_sample=bool(settings.do_sample),
            temperature=float(settings.temperature),
            top_k=int(settings.top_k or 0),
            top_p=1.0 if settings.top_p is None else float(settings.top_p),
            eos_ids=plan.eos_ids,
            pad_token_id=plan.pad_token_id,
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
        # future positions are hidden by the causal (or UniLM) rule, so the mask can already cover them
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
                    token_type_ids=_new_token_types(config, next_ids[:, None]),
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

    def _host_step(
        self, next_ids: tf.Tensor, attention_mask: tf.Tensor, past: tuple, cache_index: tf.Tensor, order: tf.Tensor
    ) -> tuple[tf.Tensor, tuple]:
        """One token per row ``[N, 1]`` after gathering the cache rows by ``order [N]``: ``(logits [N, V], cache)``."""
        past = tuple(tuple(tf.gather(t, order) for t in layer) for layer in past)
        out = self(
            next_ids,
            attention_mask=attention_mask,
            token_type_ids=_new_token_types(self.config, next_ids),
            past_key_values=past,
            use_cache=True,
            cache_index=cache_index,
            training=False,
        )
        return tf.cast(out.logits[:, -1], tf.float32), tuple(tuple(layer) for layer in out.past_key_values)


class _Decoder:
    """The TensorFlow side of :func:`roformer_core.decoding.decode_on_host`: fixed-size cache buffers
    ``[N, H, C, D]`` written at ``cache_index`` (one compiled step serves every token), rows gathered by beam index,
    draws from a ``tf.random.Generator``."""

    def __init__(self, model: tf.keras.Model, generator: tf.random.Generator) -> None:
        self.model, self.generator = model, generator
        self.step = _STEPS.get(model)
        if self.step is None:
            self.step = _STEPS[model] = tf.function(model._host_step, jit_compile=True)

    def prefill(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None, capacity: int
    ) -> np.ndarray:
        config, (batch, length) = self.model.config, input_ids.shape
        shape = (batch, config.num_attention_heads, capacity, config.head_dim)
        dtype = self.model.compute_dtype
        self.past = tuple((tf.zeros(shape, dtype), tf.zeros(shape, dtype)) for _ in range(config.num_hidden_layers))
        # positions not filled yet are hidden by the causal (or UniLM) rule, so the mask can already cover them
        self.mask = tf.constant(np.pad(attention_mask, ((0, 0), (0, capacity - length)), constant_values=1))
        self.index = length
        out = self.model(
            tf.constant(input_ids),
            attention_mask=self.mask,
            token_type_ids=None if token_type_ids is None else tf.constant(token_type_ids),
            past_key_values=self.past,
            use_cache=True,
            cache_index=tf.constant(0, tf.int32),
            training=False,
        )
        self.past = tuple(tuple(layer) for layer in out.past_key_values)
        return np.asarray(out.logits[:, -1], np.float32)

    def extend(self, next_ids: np.ndarray, beam_order: np.ndarray | None) -> np.ndarray:
        order = np.arange(len(next_ids)) if beam_order is None else beam_order
        logits, self.past = self.step(
            tf.constant(next_ids[:, None]), self.mask, self.past, tf.constant(self.index, tf.int32), tf.constant(order)
        )
        self.index += 1
        return np.asarray(logits, np.float32)

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.generator.uniform(shape, dtype=tf.float64).numpy()
