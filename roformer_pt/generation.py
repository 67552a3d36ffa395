"""Decoding for the causal LM: greedy and top-k/top-p sampling in an eager loop over the KV cache, everything else
(beam search, logits processors) through the core's host-driven loop with a cache reordered by beam index."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from roformer_core.decoding import decode_on_host
from roformer_core.generation import (
    GenerationConfig,
    GenerationConfigMixin,
    GenerationPlan,
    generated_token_type,
    plan_generation,
)


def _filter_top_k(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    if top_k <= 0 or top_k >= scores.shape[-1]:
        return scores
    kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
    return scores.masked_fill(scores < kth, float("-inf"))


def _filter_top_p(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    if top_p >= 1.0:
        return scores
    sorted_scores, order = torch.sort(scores, dim=-1, descending=False, stable=True)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - top_p)
    remove_sorted[:, -1] = False  # always keep the most likely token
    remove = remove_sorted.scatter(1, order, remove_sorted)
    return scores.masked_fill(remove, float("-inf"))


def _new_token_types(config: Any, step_ids: torch.Tensor) -> torch.Tensor | None:
    """Token types ``[N, 1]`` of generated tokens (roformer_core.generation.generated_token_type); None for 0."""
    kind = generated_token_type(config)
    return torch.full_like(step_ids, kind) if kind else None


class GenerationMixin(GenerationConfigMixin):
    """``generate()`` for :class:`RoFormerForCausalLM`, and its ``generation_config.json``."""

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        *,
        generator: torch.Generator | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Continue each prompt, as transformers' ``generate`` does, using the KV cache.

        Greedy decoding, sampling (``do_sample``, ``temperature``, ``top_k``, ``top_p``) and beam search
        (``num_beams``, ``length_penalty``, ``early_stopping``, ``num_return_sequences``), with
        ``repetition_penalty``, ``no_repeat_ngram_size``, ``bad_words_ids``, ``min_new_tokens`` / ``min_length``,
        ``max_new_tokens`` / ``max_length``, ``eos_token_id`` and ``pad_token_id``: the fields of
        :class:`roformer_core.GenerationConfig`, with transformers' meaning. Greedy and beam results equal
        transformers'.

        Args:
            input_ids: prompts ``[B, L]``; with ``attention_mask`` they may be padded on either side.
            attention_mask: ``[B, L]`` 1 for prompt tokens, 0 for padding.
            generation_config: settings to start from (default: :attr:`generation_config`, else transformers'
                defaults); special ids left None come from the model config.
            generator: random generator for sampling, for reproducible draws.
            token_type_ids: ``[B, L]`` prompt token types (default 0); new tokens get type 0, or 1 with
                ``config.unilm`` (RoFormer-Sim: the prompt is the source segment, encoded bidirectionally once, and
                the new tokens the target segment, each seeing the prompt and the new tokens before it).
            **kwargs: settings that override ``generation_config`` (e.g. ``max_new_tokens=8, num_beams=4``).

        Returns:
            ``[B * num_return_sequences, L + n]`` int64: the prompts followed by the new tokens; after a row's
            end-of-sequence id, ``pad_token_id``. Right-padded prompts are returned left-aligned (padding first) so
            every row continues right after its own text; rotary attention only sees relative positions, so left
            padding does not change the continuation.
        """
        given = [None if x is None else x.detach().cpu().numpy() for x in (input_ids, attention_mask, token_type_ids)]
        plan = plan_generation(self.config, generation_config or self.generation_config, kwargs, *given)
        was_training = self.training
        self.eval()
        try:
            if plan.uses_host_loop:
                return torch.as_tensor(decode_on_host(plan, _Decoder(self, generator)), device=self.device)
            return self._decode_loop(plan, generator)
        finally:
            self.train(was_training)

    def _decode_loop(self, plan: GenerationPlan, generator: torch.Generator | None) -> torch.Tensor:
        """Greedy or top-k/top-p sampled decoding of ``plan`` with the cache; returns ``[N, L + n]``."""
        settings, device = plan.settings, self.device
        input_ids, attention_mask, token_type_ids = (
            None if x is None else torch.as_tensor(x, device=device)
            for x in (plan.input_ids, plan.attention_mask, plan.token_type_ids)
        )
        batch = input_ids.shape[0]
        eos = torch.tensor(plan.eos_ids, device=device, dtype=torch.long) if plan.eos_ids else None
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        sequences = input_ids
        step_ids, step_types, past = input_ids, token_type_ids, None
        for _ in range(plan.max_new_tokens):
            out = self(
                step_ids,
                attention_mask=attention_mask,
                token_type_ids=step_types,
                past_key_values=past,
                use_cache=True,
                return_dict=True,
            )
            past = out.past_key_values
            scores = out.logits[:, -1, :].float()
            if settings.do_sample:
                scores = scores / settings.temperature
                scores = _filter_top_k(scores, settings.top_k or 0)
                scores = _filter_top_p(scores, 1.0 if settings.top_p is None else settings.top_p)
                next_ids = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
            else:
                next_ids = scores.argmax(dim=-1)
            next_ids = torch.where(finished, torch.full_like(next_ids, plan.pad_token_id), next_ids)
            sequences = torch.cat((sequences, next_ids[:, None]), dim=1)
            if eos is not None:
                finished = finished | torch.isin(next_ids, eos)
                if bool(finished.all()):
                    break
            attention_mask = torch.cat((attention_mask, attention_mask.new_ones((batch, 1))), dim=1)
            step_ids = next_ids[:, None]
            step_types = _new_token_types(self.config, step_ids)
        return sequences


class _Decoder:
    """The PyTorch side of :func:`roformer_core.decoding.decode_on_host`: the model's growing cache (per layer
    ``(key, value)`` of ``[N, H, P, D]``) and draws from the caller's generator."""

    def __init__(self, model: torch.nn.Module, generator: torch.Generator | None) -> None:
        self.model, self.generator, self.device = model, generator, model.device
        self.mask: torch.Tensor | None = None
        self.past: Any = None

    def prefill(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None, capacity: int
    ) -> np.ndarray:
        self.mask = torch.as_tensor(attention_mask, device=self.device)
        types = None if token_type_ids is None else torch.as_tensor(token_type_ids, device=self.device)
        return self._run(torch.as_tensor(input_ids, device=self.device), types)

    def extend(self, next_ids: np.ndarray, beam_order: np.ndarray | None) -> np.ndarray:
        if beam_order is not None:
            order = torch.as_tensor(beam_order, device=self.device)
            self.past = tuple(tuple(t.index_select(0, order) for t in layer) for layer in self.past)
        self.mask = torch.cat((self.mask, self.mask.new_ones((self.mask.shape[0], 1))), dim=1)
        step_ids = torch.as_tensor(next_ids, device=self.device)[:, None]
        return self._run(step_ids, _new_token_types(self.model.config, step_ids))

    def _run(self, ids: torch.Tensor, types: torch.Tensor | None) -> np.ndarray:
        out = self.model(
            ids,
            attention_mask=self.mask,
            token_type_ids=types,
            past_key_values=self.past,
            use_cache=True,
            return_dict=True,
        )
        self.past = out.past_key_values
        return out.logits[:, -1].float().cpu().numpy()

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        device = self.generator.device if self.generator is not None else "cpu"
        return torch.rand(shape, generator=self.generator, dtype=torch.float64, device=device).cpu().numpy()
