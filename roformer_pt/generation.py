"""Greedy and sampled decoding with the KV cache for the causal LM."""

from __future__ import annotations

import torch

from roformer_core.generation import check_generate_args, prepare_prompts


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


class GenerationMixin:
    """``generate()`` for :class:`RoFormerForCausalLM`."""

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = 50,
        top_p: float | None = 1.0,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        generator: torch.Generator | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Continue each prompt with up to ``max_new_tokens`` tokens, using the KV cache.

        Args:
            input_ids: prompts ``[B, L]``; with ``attention_mask`` they may be padded on either side.
            attention_mask: ``[B, L]`` 1 for prompt tokens, 0 for padding.
            max_new_tokens: tokens to add.
            do_sample: sample (with ``temperature``, then ``top_k``, then ``top_p`` filtering) instead of greedy.
            eos_token_id: stop a row when it emits this id (or any of these ids); later positions get
                ``pad_token_id``. Decoding ends early when every row has stopped.
            pad_token_id: filler after a row stopped; defaults to ``config.pad_token_id``.
            generator: random generator for sampling, for reproducible draws.
            token_type_ids: ``[B, L]`` prompt token types; new tokens get type 0.

        Returns:
            ``[B, L + n]`` int64: the prompts followed by the new tokens (``n <= max_new_tokens``). Right-padded
            prompts are returned left-aligned (padding first) so every row continues right after its own text;
            rotary attention only sees relative positions, so left padding does not change the continuation.
        """
        eos_ids, pad_token_id = check_generate_args(
            self.config, max_new_tokens, do_sample, temperature, top_k, top_p, eos_token_id, pad_token_id
        )
        device = self.device
        # checked and left-aligned on the host, as the other ports do
        given = [None if x is None else x.detach().cpu().numpy() for x in (input_ids, attention_mask, token_type_ids)]
        prompts = prepare_prompts(self.config, *given, pad_token_id)
        input_ids, attention_mask, token_type_ids = (
            None if x is None else torch.as_tensor(x, device=device) for x in prompts
        )
        was_training = self.training
        self.eval()

        batch = input_ids.shape[0]
        eos = torch.tensor(eos_ids, device=device, dtype=torch.long) if eos_ids else None
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        sequences = input_ids
        step_ids, step_types, past = input_ids, token_type_ids, None
        try:
            for _ in range(max_new_tokens):
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
                if do_sample:
                    scores = scores / temperature
                    scores = _filter_top_k(scores, top_k or 0)
                    scores = _filter_top_p(scores, 1.0 if top_p is None else top_p)
                    next_ids = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
                else:
                    next_ids = scores.argmax(dim=-1)
                next_ids = torch.where(finished, torch.full_like(next_ids, pad_token_id), next_ids)
                sequences = torch.cat((sequences, next_ids[:, None]), dim=1)
                if eos is not None:
                    finished = finished | torch.isin(next_ids, eos)
                    if bool(finished.all()):
                        break
                attention_mask = torch.cat((attention_mask, attention_mask.new_ones((batch, 1))), dim=1)
                step_ids, step_types = next_ids[:, None], None
        finally:
            self.train(was_training)
        return sequences
