"""Extractive question answering: the most likely span of the context, as character offsets into it.

The rules are those of transformers' ``QuestionAnsweringPipeline`` (4.57) with a fast tokenizer: question first,
the context cut into windows of ``max_seq_len`` tokens overlapping by ``doc_stride`` (``truncation="only_second"``
with overflow), start and end logits turned into probabilities over the context tokens (and ``[CLS]``) of each
window, span scores ``p_start * p_end`` with ``start <= end < start + max_answer_len``, spans widened to whole words,
equal answers found in several windows adding up their scores, and the "no answer" score from ``[CLS]``. Everything
here is numpy; the forward pass belongs to the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Task

#: transformers' window length when the tokenizer allows longer inputs.
DEFAULT_MAX_SEQ_LEN = 384
#: transformers' largest default overlap between windows.
DEFAULT_MAX_DOC_STRIDE = 128
# The logit given to tokens that cannot be part of an answer (question, special tokens but [CLS]), as transformers.
_EXCLUDED_LOGIT = -10000.0
# The starting "no answer" score: any window's [CLS] score is lower.
_NO_NULL_SCORE = 1000000.0
_MODEL_KEYS = ("input_ids", "token_type_ids", "attention_mask")


class QuestionAnsweringTask(Task):
    """``pipe({"question": ..., "context": ...})`` -> its best answer (a list of such dicts -> one per item).

    An answer is ``{"score": float, "start": int, "end": int, "answer": str}`` with ``context[start:end] ==
    answer``; ``top_k > 1`` gives a list of up to ``top_k`` answers, best first (as in transformers, a single
    answer comes as a dict).

    Options:
        top_k: how many answers to return (default 1).
        doc_stride: tokens shared by consecutive windows of a long context (default ``min(max_seq_len // 2, 128)``).
        max_answer_len: longest answer in tokens (default 15).
        max_seq_len: tokens per window, question and special tokens included (default: the smallest of 384, the
            tokenizer's ``model_max_length`` and the model's ``max_position_embeddings``).
        max_question_len: accepted for transformers compatibility; as there with a fast tokenizer, the question is
            never truncated (a question that leaves no room for the context is a ValueError).
        handle_impossible_answer: also offer the empty answer ``{"start": 0, "end": 0, "answer": ""}``, scored by
            the lowest ``[CLS]`` start-and-end probability of the windows.
        align_to_words: widen spans to whole words (default True): a jieba word kept whole, a Chinese character, or
            a Latin word with its ``##`` continuations.
    """

    name = "question-answering"
    head = "question_answering"

    #: an item's fields, also accepted as keywords: ``qa(question=..., context=...)``
    input_fields = ("question", "context")

    def split_inputs(self, inputs: Any) -> tuple[list[Any], bool]:
        if isinstance(inputs, (list, tuple)) and not inputs:
            raise ValueError(
                f'{self.name}: got an empty list; pass {{"question": ..., "context": ...}} or a non-empty list of them'
            )
        return super().split_inputs(inputs)

    def preprocess(
        self,
        tokenizer: Any,
        item: Mapping[str, str],
        *,
        top_k: int = 1,
        doc_stride: int | None = None,
        max_answer_len: int = 15,
        max_seq_len: int | None = None,
        max_question_len: int = 64,
        **_: Any,
    ) -> list[dict[str, np.ndarray]]:
        """One question and context -> one feature per window of the context.

        Returns:
            Features with input_ids, token_type_ids, attention_mask ([L] int64), and for postprocess: p_mask
            ([L] int64, 1 where no answer can be: the question and special tokens but [CLS]), offset_mapping
            ([L, 2] int64, character offsets into the context for its tokens) and word_ids ([L] int64, the word of
            each context token within the window, -1 elsewhere).
        """
        for key, value, least in (
            ("top_k", top_k, 1),
            ("max_answer_len", max_answer_len, 1),
            ("max_question_len", max_question_len, 1),
            ("doc_stride", doc_stride, 0),
            ("max_seq_len", max_seq_len, 1),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ValueError(f"{self.name}: {key} must be an int >= {least}, got {value!r}")
        question, context = _question_and_context(item)
        position_limit = self.config.max_position_embeddings
        if max_seq_len is None:
            max_seq_len = min(tokenizer.model_max_length, DEFAULT_MAX_SEQ_LEN, position_limit)
        elif max_seq_len > position_limit:
            raise ValueError(
                f"{self.name}: max_seq_len={max_seq_len} is longer than the model's {position_limit} positions "
                f"(max_position_embeddings); pass max_seq_len <= {position_limit}"
            )
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, DEFAULT_MAX_DOC_STRIDE)
        question_length = len(tokenizer(question, add_special_tokens=False)["input_ids"])
        room = max_seq_len - question_length - tokenizer.num_special_tokens_to_add(pair=True)
        if room <= 0:
            raise ValueError(
                f"{self.name}: the question is {question_length} tokens long, which leaves no room for the context "
                f"in windows of max_seq_len={max_seq_len} tokens (the model takes at most {position_limit}); pass a "
                "shorter question or a larger max_seq_len"
            )
        if doc_stride >= room:
            raise ValueError(
                f"{self.name}: doc_stride={doc_stride} must be smaller than the {room} context tokens each window "
                f"holds (max_seq_len={max_seq_len} minus the question's {question_length} tokens and the special "
                f"tokens); pass doc_stride < {room} or a larger max_seq_len"
            )
        encoding = tokenizer(
            question,
            context,
            truncation="only_second",
            max_length=max_seq_len,
            stride=doc_stride,
            return_token_type_ids=True,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        features = []
        for window, input_ids in enumerate(encoding["input_ids"]):
            in_context = np.array([sequence == 1 for sequence in encoding.sequence_ids(window)])
            offsets = np.asarray(encoding["offset_mapping"][window], dtype=np.int64).reshape(-1, 2)
            # keep [CLS] answerable: its score is the "no answer" score
            p_mask = (~in_context).astype(np.int64)
            p_mask[np.asarray(input_ids) == tokenizer.cls_token_id] = 0
            features.append(
                {
                    **{key: np.asarray(encoding[key][window], dtype=np.int64) for key in _MODEL_KEYS},
                    "p_mask": p_mask,
                    "offset_mapping": offsets,
                    "word_ids": _word_ids(tokenizer.convert_ids_to_tokens(input_ids), offsets, in_context),
                }
            )
        return features

    def postprocess(
        self,
        tokenizer: Any,
        item: Mapping[str, str],
        features: list[dict[str, np.ndarray]],
        outputs: list[dict[str, np.ndarray]],
        *,
        top_k: int = 1,
        max_answer_len: int = 15,
        handle_impossible_answer: bool = False,
        align_to_words: bool = True,
        **_: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """The best answer(s) over all windows of one question.

        Args:
            features: what :meth:`preprocess` made for ``item``.
            outputs: per feature, ``{"start_logits": [L], "end_logits": [L]}`` (float32).

        Returns:
            One answer dict, or a list of them, best first (see the class docstring).
        """
        _, context = _question_and_context(item)
        null_score = _NO_NULL_SCORE
        answers: list[dict[str, Any]] = []
        for feature, output in zip(features, outputs):
            starts, ends, scores, null_score = _best_spans(
                np.asarray(output["start_logits"], dtype=np.float32),
                np.asarray(output["end_logits"], dtype=np.float32),
                feature["p_mask"],
                feature["attention_mask"],
                null_score,
                # widening to words merges spans, so transformers draws more candidates first
                top_k * 2 + 10 if align_to_words else top_k,
                handle_impossible_answer,
                max_answer_len,
            )
            for start, end, score in zip(starts, ends, scores):
                first, last = _char_span(feature, int(start), int(end), align_to_words)
                text = context[first:last]
                same = next((answer for answer in answers if answer["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score.item()
                else:
                    answers.append({"score": score.item(), "start": first, "end": last, "answer": text})
        if handle_impossible_answer:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def _question_and_context(item: Any) -> tuple[str, str]:
    if not isinstance(item, Mapping) or "question" not in item or "context" not in item:
        raise ValueError(
            f'question-answering takes {{"question": str, "context": str}} (or a list of them), got {item!r}'
        )
    question, context = item["question"], item["context"]
    for key, value in (("question", question), ("context", context)):
        if not isinstance(value, str):
            raise TypeError(f"the {key} must be a string, got {type(value).__name__}: {value!r}")
        if not value.strip():
            raise ValueError(f"the {key} is empty; pass a non-empty string")
    return question, context


def _word_ids(tokens: list[str], offsets: np.ndarray, in_context: np.ndarray) -> np.ndarray:
    """The word of each context token ([L] int64, -1 outside the context).

    A word is what the tokenizer's pre-tokenizer hands to WordPiece (a jieba word kept whole, a Chinese
    character, a run of other characters): its tokens are a first piece and the "##" pieces glued to it.
    """
    word_ids = np.full(len(tokens), -1, dtype=np.int64)
    word = -1
    for index, token in enumerate(tokens):
        if not in_context[index]:
            continue
        continues = (
            token.startswith("##")
            and index > 0
            and in_context[index - 1]
            and offsets[index, 0] == offsets[index - 1, 1]
        )
        if not continues:
            word += 1
        word_ids[index] = word
    return word_ids


def _char_span(feature: dict[str, np.ndarray], start: int, end: int, align: bool) -> tuple[int, int]:
    """Token span [start, end] -> character span [first, last) in the context."""
    offsets, word_ids = feature["offset_mapping"], feature["word_ids"]
    if align and word_ids[start] >= 0 and word_ids[end] >= 0:
        first = offsets[word_ids == word_ids[start], 0].min()
        last = offsets[word_ids == word_ids[end], 1].max()
        return int(first), int(last)
    # [CLS] belongs to no word: transformers falls back to the tokens' own offsets
    return int(offsets[start, 0]), int(offsets[end, 1])


def _best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    p_mask: np.ndarray,
    attention_mask: np.ndarray,
    null_score: float,
    top_k: int,
    handle_impossible_answer: bool,
    max_answer_len: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The ``top_k`` best (start, end) token spans of one window and their scores, best first.

    Args:
        start_logits, end_logits: [L] float32.
        p_mask: [L], 1 where no answer can be.
        attention_mask: [L].
        null_score: the lowest [CLS] score seen so far (updated when ``handle_impossible_answer``).

    Returns:
        starts [K], ends [K] (token indices), scores [K] float32 and the updated null score.
    """
    allowed = (1 - np.asarray(p_mask)) & np.asarray(attention_mask)
    excluded = allowed == 0
    start = np.where(excluded, _EXCLUDED_LOGIT, start_logits)
    end = np.where(excluded, _EXCLUDED_LOGIT, end_logits)
    start = np.exp(start - start.max())
    start = start / start.sum()
    end = np.exp(end - end.max())
    end = end / end.sum()
    if handle_impossible_answer:
        null_score = min(null_score, (start[0] * end[0]).item())
    start[0] = end[0] = 0.0
    # [L, L] scores of every span; zero where end < start or the span is longer than max_answer_len
    candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
    flat = candidates.flatten()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) < top_k:
        order = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, top_k)[:top_k]
        order = best[np.argsort(-flat[best])]
    starts, ends = np.unravel_index(order, candidates.shape)
    keep = allowed[starts].astype(bool) & allowed[ends].astype(bool)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[starts, ends], null_score
