"""RoFormer-Sim tasks: sentence-similarity (cosine of normalized pooled vectors, retrieval over a corpus) and
paraphrase (sample similar sentences with the UniLM decoder, rank them by cosine with the source), as the authors'
``gen_synonyms`` does (roformer-sim ``generate.py``)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .base import Task, as_feature, check_text
from .feature_extraction import POOLINGS, check_pooler, pool
from .fill_mask import softmax


def check_sim(task: str, config, pooling: str = "pooler") -> None:
    """ValueError unless ``config`` describes a model whose pooled vectors are sentence vectors (RoFormer-Sim; with
    ``pooling="mean"`` / ``"cls"`` any bidirectional encoder)."""
    if pooling not in POOLINGS:
        raise ValueError(f"{task}: unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if pooling == "pooler":
        check_pooler(task, config)
    if config.is_decoder and not config.unilm:
        raise ValueError(
            f"{task}: config.is_decoder is set without unilm, so the encoder would be causal; a RoFormer-Sim "
            "checkpoint loads with model_kwargs={'unilm': True}"
        )


def unit_vectors(
    outputs: list[dict[str, np.ndarray]],
    features: list[dict[str, np.ndarray]] | None = None,
    pooling: str = "pooler",
) -> np.ndarray:
    """The pooled vectors ``[N, E]`` of several texts' outputs (:func:`~roformer_tasks.feature_extraction.pool`;
    ``features`` give the attention masks for ``"mean"``), each scaled to unit length."""
    if pooling == "pooler":
        vectors = np.stack([o["pooler_output"] for o in outputs]).astype(np.float64)
    else:
        masks = [f.get("attention_mask", np.ones_like(f["input_ids"])) for f in features]
        vectors = np.stack([pool(o, m, pooling) for o, m in zip(outputs, masks)]).astype(np.float64)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _encode(tokenizer, texts: list[str], task: str, max_length: int | None = None) -> list[dict[str, np.ndarray]]:
    """One feature per text, segments 0 (the Sim encoder's bidirectional mode)."""
    truncation = {"truncation": True, "max_length": max_length} if max_length is not None else {}
    features = []
    for text in texts:
        encoded = tokenizer(check_text(task, text), **truncation)
        features.append(as_feature(encoded))
    return features


def _texts(task: str, value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{task}: {name} must be a text or a non-empty list of texts, got {value!r}")
    return list(value)


class SentenceSimilarityTask(Task):
    """``pipe(["a", "b", "c"])`` -> the ``[3, 3]`` cosine matrix (nested lists) of the texts' normalized pooled
    vectors; ``pipe(query, corpus=[...], top_k=2)`` -> ``[{"corpus_id", "score", "text"}, ...]`` best first (a
    list of queries -> one such list per query)."""

    name = "sentence-similarity"
    head = "model"
    also_accepts = ("causal_lm", "masked_lm")

    def __init__(self, config, **params: Any) -> None:
        super().__init__(config, **params)
        check_sim(self.name, config, self.defaults.get("pooling", "pooler"))

    def check_model(self, config) -> None:
        """Checked with the default ``pooling`` in ``__init__`` and with a call's own in :meth:`preprocess`."""

    def split_inputs(self, inputs):
        return [inputs], False  # the whole call is one comparison

    def preprocess(self, tokenizer, item, *, corpus: list[str] | None = None, pooling: str = "pooler", **_: Any):
        """Args: pooling: ``"pooler"`` (RoFormer-Sim's sentence vector, the default), ``"mean"`` or ``"cls"`` (for
        an encoder without a pooler)."""
        check_sim(self.name, self.config, pooling)
        queries = _texts(self.name, item, "the input")
        if corpus is None and len(queries) < 2:
            raise ValueError(
                f"{self.name}: pass a list of at least two texts (a cosine matrix), or a query with corpus=[...]"
            )
        return _encode(tokenizer, queries + ([] if corpus is None else _texts(self.name, corpus, "corpus")), self.name)

    def postprocess(
        self, tokenizer, item, features, outputs, *, corpus=None, top_k: int | None = None, pooling="pooler", **_: Any
    ):
        vectors = unit_vectors(outputs, features, pooling)
        if corpus is None:
            return (vectors @ vectors.T).astype(np.float32).tolist()
        corpus = _texts(self.name, corpus, "corpus")
        queries = _texts(self.name, item, "the input")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"{self.name}: top_k must be a positive int or None, got {top_k!r}")
        scores = (vectors[: len(queries)] @ vectors[len(queries) :].T).astype(np.float32)  # [Q, N]
        hits = []
        for row in scores:
            best = np.argsort(-row, kind="stable")[:top_k]
            hits.append([{"corpus_id": int(i), "score": float(row[i]), "text": corpus[i]} for i in best])
        return hits[0] if isinstance(item, str) else hits


# no space between CJK characters or CJK / full-width punctuation and their neighbours (the authors' decoding)
_CJK = r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
_SPACE_NEXT_TO_CJK = re.compile(rf"(?<={_CJK}) | (?={_CJK})")


def join_tokens(tokenizer, ids: list[int]) -> str:
    """Ids -> text as bert4keras decodes Chinese: special tokens dropped, CJK characters and punctuation glued."""
    return _SPACE_NEXT_TO_CJK.sub("", tokenizer.decode(ids, skip_special_tokens=True)).strip()


def _keep_top(probs: np.ndarray, top_k: int | None, top_p: float | None) -> np.ndarray:
    """The authors' filters on probabilities ``[N, V]``: the top_k largest, then the smallest set of largest
    reaching top_p (the token that crosses it included); renormalized."""
    probs = probs.copy()
    order = np.argsort(-probs, axis=1, kind="stable")
    ranked = np.take_along_axis(probs, order, axis=1)
    drop = np.zeros_like(ranked, dtype=bool)
    if top_k is not None:
        drop[:, top_k:] = True
    if top_p is not None:
        reached = np.cumsum(np.where(drop, 0.0, ranked), axis=1) >= top_p
        drop |= np.concatenate([np.zeros_like(reached[:, :1]), reached[:, :-1]], axis=1)
    np.put_along_axis(probs, order, np.where(drop, 0.0, ranked), axis=1)
    return probs / probs.sum(axis=1, keepdims=True)


class ParaphraseTask(Task):
    """``pipe("text", n=100, k=20, seed=0)`` -> ``[{"text", "score"}, ...]``: ``n`` sentences sampled from a
    RoFormer-Sim causal LM (UniLM: the text is the source segment, each candidate the target), deduplicated, the
    text itself dropped, ranked by the cosine of their pooled vectors with the text's; the best ``k``.

    The sampling runs in numpy on the model's logits (one forward pass per step over every unfinished candidate,
    as the authors' decoder does), so a ``seed`` gives the same candidates in every framework.
    """

    name = "paraphrase"
    head = "causal_lm"

    def check_model(self, config) -> None:
        check_sim(self.name, config)
        if not config.unilm:
            raise ValueError(
                "paraphrase needs a RoFormer-Sim causal LM (config.unilm true): load it with "
                "model_kwargs={'unilm': True}"
            )

    def preprocess(self, tokenizer, item, *, max_source_length: int = 64, **_: Any):
        """``[CLS] text [SEP]``, cut to ``max_source_length`` tokens as the authors do."""
        (feature,) = _encode(tokenizer, [item], self.name, max_length=max_source_length)
        return [{**feature, "text": np.array(item, dtype=object)}]

    def run(
        self,
        pipe,
        features,
        *,
        n: int = 100,
        top_p: float | None = 0.95,
        top_k: int | None = None,
        max_new_tokens: int = 64,
        seed: int | None = None,
        **_: Any,
    ):
        """Sample ``n`` candidates per text and encode them; returns per text its texts (source first) and
        their unit pooled vectors."""
        for name, value in (("n", n), ("max_new_tokens", max_new_tokens)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"paraphrase: {name} must be a positive int, got {value!r}")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"paraphrase: top_p must be in (0, 1], got {top_p!r}")
        rng = np.random.default_rng(seed)
        results = []
        for (source,) in features:
            candidates = self._sample(pipe, source, n, top_p, top_k, max_new_tokens, rng)
            source_text = str(source["text"])
            texts = [source_text] + [c for c in dict.fromkeys(candidates) if c and c != source_text]
            encoded = _encode(pipe.tokenizer, texts, self.name)
            results.append([{"texts": np.array(texts, dtype=object), "vectors": unit_vectors(pipe.forward(encoded))}])
        return results

    @staticmethod
    def _sample(pipe, source, n, top_p, top_k, max_new_tokens, rng) -> list[str]:
        """``n`` target segments after ``source``: each step draws every unfinished row's next token from the
        last position's filtered distribution; a row ends at [SEP]."""
        end = pipe.tokenizer.sep_token_id
        ids = source["input_ids"]
        first = softmax(pipe.forward([_segments(ids, [])])[0]["logits"][-1])
        probs = np.repeat(first[None], n, axis=0)  # the first step's distribution is the same for every row
        generated: list[list[int]] = [[] for _ in range(n)]
        active = list(range(n))
        for step in range(max_new_tokens):
            if step:
                outputs = pipe.forward([_segments(ids, generated[row]) for row in active])
                probs = softmax(np.stack([o["logits"][-1] for o in outputs]))
            kept = _keep_top(probs, top_k, top_p)
            cumulative = np.cumsum(kept, axis=1)
            draws = (cumulative <= rng.random(len(active))[:, None]).sum(axis=1)
            draws = np.minimum(draws, kept.shape[1] - 1)
            still = []
            for row, token in zip(active, draws):
                if token != end:
                    generated[row].append(int(token))
                    still.append(row)
            active = still
            if not active:
                break
        return [join_tokens(pipe.tokenizer, tokens) for tokens in generated]

    def postprocess(self, tokenizer, item, features, outputs, *, k: int = 20, **_: Any):
        """The ``k`` candidates most similar to the text, best first."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"paraphrase: k must be a positive int, got {k!r}")
        texts, vectors = outputs[0]["texts"], outputs[0]["vectors"]
        scores = (vectors[1:] @ vectors[0]).astype(np.float32)
        best = np.argsort(-scores, kind="stable")[:k]
        return [{"text": str(texts[1 + i]), "score": float(scores[i])} for i in best]


def _segments(source_ids: np.ndarray, target: list[int]) -> dict[str, np.ndarray]:
    """The UniLM input: the source of type 0 followed by the target tokens of type 1."""
    ids = np.concatenate([source_ids, np.asarray(target, dtype=np.int64)])
    types = np.concatenate([np.zeros(len(source_ids), np.int64), np.ones(len(target), np.int64)])
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": np.ones(len(ids), np.int64)}
