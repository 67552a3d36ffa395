"""Host-driven decoding shared by the ports: transformers' logits processors, sampling and beam search, in numpy.

A port supplies a :class:`Decoder` (a prompt pass and a one-token step over its KV cache, the cache rows reordered by
beam index first, and uniform draws from its random generator); everything else is here, so the three ports make the
same choices from the same logits. Each step copies the last position's logits ``[N, V]`` to the host once. Plain
greedy decoding and top-k/top-p sampling skip this loop: each port runs them in its own compiled loop
(see :attr:`roformer_core.generation.GenerationPlan.uses_host_loop`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .generation import GenerationPlan

# transformers' "very large negative" score in the beam bookkeeping (finished, exhausted or padding candidates)
_BEAM_FLOOR = -1.0e9
# cache capacities are rounded up to a multiple of this, so that a port's compiled step serves nearby lengths too
_CAPACITY_STEP = 32


class Decoder(Protocol):
    """What a port provides to :func:`decode_on_host`."""

    def prefill(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None, capacity: int
    ) -> np.ndarray:
        """Run the prompts ``[N, L]`` into a fresh cache with room for at least ``capacity`` positions; return the
        float logits ``[N, V]`` of the last position. Later positions are attended to (mask 1) as they are filled."""
        ...

    def extend(self, next_ids: np.ndarray, beam_order: np.ndarray | None) -> np.ndarray:
        """Reorder the cache rows (row ``i`` becomes old row ``beam_order[i]``; None keeps them), then feed one
        token per row (``next_ids [N]``, of type ``generation.generated_token_type``); return the logits ``[N, V]``."""
        ...

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        """float64 draws from U[0, 1) of ``shape``, from the generator the caller passed to ``generate``."""
        ...


def process_scores(plan: GenerationPlan, sequences: np.ndarray, scores: np.ndarray, new_tokens: int) -> np.ndarray:
    """transformers' logits processors, in its order: repetition penalty, n-gram ban, bad words, minimum length;
    then, when sampling, temperature, top-k and top-p.

    Args:
        sequences: int64 ``[N, T]`` prompts and tokens so far (padding included, as transformers sees them).
        scores: float64 ``[N, V]``: logits (greedy, sampling) or log-probabilities (beam search).
        new_tokens: tokens generated so far.

    Returns:
        float64 ``[N, V]``; banned tokens are ``-inf``.
    """
    s = plan.settings
    scores = scores.copy()
    if s.repetition_penalty != 1.0:
        seen = np.zeros(scores.shape, bool)
        np.put_along_axis(seen, sequences, True, axis=1)
        penalized = np.where(scores < 0, scores * s.repetition_penalty, scores / s.repetition_penalty)
        scores = np.where(seen, penalized, scores)
    if s.no_repeat_ngram_size > 0:
        for row, banned in enumerate(_repeated_ngram_ends(sequences, s.no_repeat_ngram_size)):
            scores[row, banned] = -np.inf
    if s.bad_words_ids is not None:
        scores[_bad_word_ends(sequences, s.bad_words_ids, plan.eos_ids, scores.shape[1])] = -np.inf
    if new_tokens < plan.min_new_tokens and plan.eos_ids:
        scores[:, list(plan.eos_ids)] = -np.inf
    if s.do_sample:
        # beams keep one token more than there are eos ids, so that a beam can always continue
        keep = (len(plan.eos_ids) + 1 if plan.eos_ids else 2) if s.num_beams > 1 else 1
        if s.temperature != 1.0:
            scores = scores / s.temperature
        if s.top_k:
            k = min(max(s.top_k, keep), scores.shape[1])
            kth = -np.sort(-scores, axis=1)[:, k - 1 : k]
            scores = np.where(scores < kth, -np.inf, scores)
        if s.top_p is not None and s.top_p < 1.0:
            order = np.argsort(scores, axis=1, kind="stable")  # ascending
            cumulative = np.cumsum(_softmax(np.take_along_axis(scores, order, axis=1)), axis=1)
            remove_sorted = cumulative <= 1 - s.top_p
            remove_sorted[:, -keep:] = False
            remove = np.zeros_like(remove_sorted)
            np.put_along_axis(remove, order, remove_sorted, axis=1)
            scores = np.where(remove, -np.inf, scores)
    return scores


def decode_on_host(plan: GenerationPlan, decoder: Decoder) -> np.ndarray:
    """Greedy, sampled or beam-search decoding of a plan, with transformers' rules and results.

    Returns:
        int64 ``[B * num_return_sequences, L + n]``: each prompt's sequences next to each other (beam search: best
        first), the prompts followed by up to ``max_new_tokens`` tokens; positions after a sequence's end hold
        ``pad_token_id``.
    """
    s = plan.settings
    if plan.max_new_tokens == 0:
        length = plan.input_ids.shape[1]
        grouped = plan.input_ids.reshape(plan.batch_size, -1, length)
        return grouped[:, : s.num_return_sequences].reshape(-1, length)
    if s.num_beams > 1:
        return _beam_search(plan, decoder)
    return _greedy_or_sample(plan, decoder)


def _greedy_or_sample(plan: GenerationPlan, decoder: Decoder) -> np.ndarray:
    """transformers' ``_sample``: one token per row and step; rows that emitted an eos id get ``pad_token_id``."""
    sequences = plan.input_ids
    eos = np.asarray(plan.eos_ids, np.int64)
    logits = decoder.prefill(sequences, plan.attention_mask, plan.token_type_ids, _capacity(plan))
    finished = np.zeros(sequences.shape[0], bool)
    for step in range(plan.max_new_tokens):
        scores = process_scores(plan, sequences, np.asarray(logits, np.float64), step)
        next_ids = _draw(scores, decoder) if plan.settings.do_sample else np.argmax(scores, axis=1)
        next_ids = np.where(finished, plan.pad_token_id, next_ids).astype(np.int64)
        sequences = np.concatenate([sequences, next_ids[:, None]], axis=1)
        finished |= np.isin(next_ids, eos)
        if finished.all() or step + 1 == plan.max_new_tokens:
            break
        logits = decoder.extend(next_ids, None)
    return sequences


def _beam_search(plan: GenerationPlan, decoder: Decoder) -> np.ndarray:
    """transformers' (4.57) vectorized beam search, step for step: the same candidates, bookkeeping and stopping.

    Shapes: ``B`` prompts, ``K`` beams, ``C`` candidates kept per step, ``T`` the maximal length, ``V`` the vocab.
    """
    s = plan.settings
    batch, beams = plan.batch_size, s.num_beams
    prompt_length = plan.input_ids.shape[1]
    max_length = prompt_length + plan.max_new_tokens
    eos = np.asarray(plan.eos_ids, np.int64)
    candidates = max(2, 1 + len(eos)) * beams  # enough that K beams can continue even if K candidates end
    in_top_beams = np.arange(candidates) < beams  # [C]: only these may become finished hypotheses
    rows = np.arange(batch)[:, None]

    running = np.full((batch, beams, max_length), plan.pad_token_id, np.int64)  # [B, K, T]
    running[:, :, :prompt_length] = plan.input_ids.reshape(batch, beams, prompt_length)
    running_scores = np.zeros((batch, beams))
    running_scores[:, 1:] = _BEAM_FLOOR  # the beams start identical: only the first one expands
    running_origin = np.full((batch, beams, plan.max_new_tokens), -1, np.int64)  # flat source row per new token
    finished_seqs, finished_scores = running.copy(), np.full((batch, beams), _BEAM_FLOOR)
    finished_origin, is_finished = running_origin.copy(), np.zeros((batch, beams), bool)
    improvable = np.ones((batch, 1), bool)

    logits = decoder.prefill(plan.input_ids, plan.attention_mask, plan.token_type_ids, _capacity(plan))
    for length in range(prompt_length, max_length):
        new = length - prompt_length
        log_probs = _log_softmax(np.asarray(logits, np.float64))
        log_probs = process_scores(plan, running[:, :, :length].reshape(batch * beams, length), log_probs, new)
        vocab = log_probs.shape[1]
        totals = (log_probs.reshape(batch, beams, vocab) + running_scores[:, :, None]).reshape(batch, -1)

        # the C best (or, sampling, C drawn without replacement by Gumbel keys) continuations over all beams
        keys = totals
        if s.do_sample:
            uniform = np.clip(decoder.uniform(totals.shape), np.finfo(np.float64).tiny, 1.0)
            keys = totals - np.log(-np.log(uniform))
        top = _top(keys, candidates)  # [B, C] flat (beam, token) indices
        top_scores = np.take_along_axis(totals, top, axis=1)
        source, tokens = top // vocab, top % vocab
        top_seqs = running[rows, source]  # [B, C, T]
        top_seqs[:, :, length] = tokens
        top_origin = running_origin[rows, source]
        top_origin[:, :, new] = source + rows * beams
        ends = np.isin(tokens, eos) | (length + 1 >= max_length)  # [B, C]

        # the K best candidates that did not end keep running
        running_candidates = top_scores + ends * _BEAM_FLOOR
        keep = _top(running_candidates, beams)
        running, running_scores = top_seqs[rows, keep], np.take_along_axis(running_candidates, keep, axis=1)
        running_origin = top_origin[rows, keep]

        # candidates among the top K that ended become finished hypotheses if they beat the current ones
        just_finished = ends & in_top_beams[None, :]
        scored = top_scores / ((length + 1 - prompt_length) ** s.length_penalty)
        full = is_finished.all(axis=1, keepdims=True) & (s.early_stopping is True)
        scored = scored + full * _BEAM_FLOOR + ~improvable * _BEAM_FLOOR + ~just_finished * _BEAM_FLOOR
        merged_scores = np.concatenate([finished_scores, scored], axis=1)
        best = _top(merged_scores, beams)
        finished_seqs = np.concatenate([finished_seqs, top_seqs], axis=1)[rows, best]
        finished_scores = np.take_along_axis(merged_scores, best, axis=1)
        finished_origin = np.concatenate([finished_origin, top_origin], axis=1)[rows, best]
        is_finished = np.take_along_axis(np.concatenate([is_finished, just_finished], axis=1), best, axis=1)

        # can a running beam still beat the worst finished hypothesis? (transformers' heuristic per early_stopping)
        if s.early_stopping == "never" and s.length_penalty > 0.0:
            best_length = max_length - prompt_length
        else:
            best_length = length + 1 - prompt_length
        best_running = running_scores[:, :1] / (best_length**s.length_penalty)
        worst_finished = np.where(is_finished, finished_scores.min(axis=1, keepdims=True), _BEAM_FLOOR)
        improvable = improvable & (best_running > worst_finished).any(axis=1, keepdims=True)
        all_done = is_finished.all() and s.early_stopping is True
        if not improvable.any() or all_done or ends.all():
            break
        logits = decoder.extend(running[:, :, length].reshape(-1), running_origin[:, :, new].reshape(-1))

    returned = s.num_return_sequences
    origin = finished_origin[:, :returned].reshape(batch * returned, -1)
    generated = int((origin >= 0).sum(axis=1).max())
    return finished_seqs[:, :returned].reshape(batch * returned, max_length)[:, : prompt_length + generated]


def _capacity(plan: GenerationPlan) -> int:
    needed = plan.input_ids.shape[1] + plan.max_new_tokens
    return -(-needed // _CAPACITY_STEP) * _CAPACITY_STEP


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values per row, largest first (ties: lower index first)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _draw(scores: np.ndarray, decoder: Decoder) -> np.ndarray:
    """One token per row from ``softmax(scores)``, by inverting the cumulative distribution at a uniform draw."""
    probs = _softmax(scores)
    cumulative = np.cumsum(probs, axis=1)
    target = decoder.uniform((scores.shape[0],)) * cumulative[:, -1]
    picked = (cumulative <= target[:, None]).sum(axis=1)  # the first token whose cumulative mass exceeds the draw
    last_possible = scores.shape[1] - 1 - np.argmax(probs[:, ::-1] > 0, axis=1)  # against rounding at the top
    return np.minimum(picked, last_possible).astype(np.int64)


def _repeated_ngram_ends(sequences: np.ndarray, size: int) -> list[list[int]]:
    """Per row, the tokens that would repeat an n-gram of ``size`` tokens already in the row."""
    length = sequences.shape[1]
    if length + 1 < size:
        return [[] for _ in range(sequences.shape[0])]
    banned = []
    for row in sequences.tolist():
        prefix = tuple(row[length + 1 - size :])
        banned.append([gram[-1] for gram in zip(*(row[i:] for i in range(size))) if gram[:-1] == prefix])
    return banned


def _bad_word_ends(sequences: np.ndarray, bad_words: list[list[int]], eos_ids: tuple[int, ...], vocab: int):
    """``[N, V]`` mask of the tokens that would complete a bad word (a single eos id is never banned)."""
    banned = np.zeros((sequences.shape[0], vocab), bool)
    length = sequences.shape[1]
    for word in bad_words:
        word = [int(t) for t in word]
        if len(word) == 1 and word[0] in eos_ids:
            continue
        if len(word) == 1:
            banned[:, word[0]] = True
        elif len(word) <= length:
            matches = (sequences[:, length - len(word) + 1 :] == np.asarray(word[:-1])).all(axis=1)
            banned[matches, word[-1]] = True
    return banned
