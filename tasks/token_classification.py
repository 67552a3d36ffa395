"""Token classification (named entities): a label per token, or entities grouped from B-/I- labels, with
character spans into the original text.

The rules are those of transformers' ``TokenClassificationPipeline`` (4.57) with a fast tokenizer: softmax scores
per token, special tokens dropped, "subwords" found by comparing a token with the text it covers, the five
aggregation strategies, ``ignore_labels``, and, with ``stride``, long texts cut into overlapping windows whose
entities are merged by span. Everything here is numpy; the forward pass belongs to the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Task, as_feature, check_text

#: ``aggregation_strategy`` values, as transformers names them.
AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")
#: Strategies that first merge the tokens of a word (a token and the "##" continuations after it).
_WORD_STRATEGIES = frozenset({"first", "average", "max"})
_FEATURE_KEYS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping")


class TokenClassificationTask(Task):
    """``pipe("text")`` -> a list of token or entity dicts (a list of texts -> one such list per text).

    With ``aggregation_strategy="none"`` (default) every token whose label is not ignored gives
    ``{"entity", "score", "index", "word", "start", "end"}`` (``index``: the token's position in the model input,
    ``[CLS]`` being 0); with ``"simple"``, ``"first"``, ``"average"`` or ``"max"``, adjacent tokens (or, for the
    last three, whole words) of one entity type are grouped into ``{"entity_group", "score", "word", "start",
    "end"}``. ``start``/``end`` are character offsets into the text as given: ``text[start:end]`` is the entity as
    written, whatever the tokenizer's lower-casing or accent stripping. Scores are numpy float32, as in
    transformers. Labels come from the config's ``id2label``; B-/I- prefixes delimit entities.

    Options: ``aggregation_strategy``; ``ignore_labels`` (labels left out, default ``["O"]``); ``stride``: cut a
    text longer than the model into windows overlapping by this many tokens, instead of truncating it, and merge
    the windows' entities (needs an aggregation strategy other than ``"none"``).
    """

    name = "token-classification"
    head = "token_classification"

    def max_length(self, tokenizer: Any) -> int:
        """Tokens per model input: the tokenizer's limit, capped by the model's position table."""
        return min(tokenizer.model_max_length, self.config.max_position_embeddings)

    def preprocess(
        self,
        tokenizer: Any,
        item: str,
        *,
        aggregation_strategy: str = "none",
        ignore_labels: Sequence[str] | None = None,
        stride: int | None = None,
        **_: Any,
    ) -> list[dict[str, np.ndarray]]:
        """One text -> one feature (truncated to the model's length), or one per window with ``stride``.

        Returns:
            Features with input_ids, token_type_ids, attention_mask, special_tokens_mask ([L] int64) and
            offset_mapping ([L, 2] int64, character offsets into ``item``).
        """
        _check_options(aggregation_strategy, ignore_labels, stride)
        check_text(self.name, item)
        max_length = self.max_length(tokenizer)
        windows: dict[str, Any] = {}
        if stride is not None:
            room = max_length - tokenizer.num_special_tokens_to_add()
            if stride >= room:
                raise ValueError(
                    f"{self.name}: stride={stride} leaves no new tokens per window: a window holds {room} tokens "
                    f"of text (max length {max_length} minus the special tokens); pass a stride below {room}"
                )
            windows = {"return_overflowing_tokens": True, "stride": stride}
        encoding = tokenizer(
            item,
            truncation=True,
            max_length=max_length,
            return_special_tokens_mask=True,
            return_offsets_mapping=True,
            **windows,
        )
        # one text gives flat rows; with windows, every key holds one row per window
        rows = (
            [{key: encoding[key][i] for key in _FEATURE_KEYS} for i in range(len(encoding["input_ids"]))]
            if windows
            else [{key: encoding[key] for key in _FEATURE_KEYS}]
        )
        return [as_feature(row) for row in rows]

    def postprocess(
        self,
        tokenizer: Any,
        item: str,
        features: list[dict[str, np.ndarray]],
        outputs: list[dict[str, np.ndarray]],
        *,
        aggregation_strategy: str = "none",
        ignore_labels: Sequence[str] | None = None,
        stride: int | None = None,
        **_: Any,
    ) -> list[dict[str, Any]]:
        """Scores, labels and spans of one text.

        Args:
            features: what :meth:`preprocess` made for ``item``.
            outputs: per feature, ``{"logits": [L, C] float32}``.

        Returns:
            A list of token dicts (strategy ``"none"``) or entity-group dicts, see the class docstring.
        """
        strategy = _check_options(aggregation_strategy, ignore_labels, stride)
        ignore = ["O"] if ignore_labels is None else list(ignore_labels)
        id2label = self.config.id2label
        entities: list[dict[str, Any]] = []
        for feature, output in zip(features, outputs):
            logits = np.asarray(output["logits"], dtype=np.float32)
            if logits.shape[-1] != len(id2label):
                raise ValueError(
                    f"{self.name}: the model gives {logits.shape[-1]} scores per token but its config names "
                    f"{len(id2label)} labels (id2label); load a config whose id2label matches the checkpoint"
                )
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            scores = shifted / shifted.sum(axis=-1, keepdims=True)
            tokens = _gather_tokens(tokenizer, item, feature, scores)
            grouped = _aggregate(tokenizer, id2label, tokens, strategy)
            entities += [e for e in grouped if e.get("entity", e.get("entity_group")) not in ignore]
        if len(features) > 1:
            entities = _merge_overlapping(entities)
        return entities


def _check_options(aggregation_strategy: Any, ignore_labels: Any, stride: Any) -> str:
    """The strategy's name (lower case), after checking the options; ValueError/TypeError naming what to pass."""
    strategy = getattr(aggregation_strategy, "value", aggregation_strategy)  # transformers' AggregationStrategy
    strategy = strategy.lower() if isinstance(strategy, str) else strategy
    if strategy not in AGGREGATION_STRATEGIES:
        raise ValueError(
            f"token-classification: unknown aggregation_strategy {aggregation_strategy!r}; choose one of "
            f"{', '.join(AGGREGATION_STRATEGIES)}"
        )
    if ignore_labels is not None and (
        isinstance(ignore_labels, str) or not all(isinstance(label, str) for label in ignore_labels)
    ):
        raise TypeError(
            f"token-classification: ignore_labels must be a list of labels such as ['O'], got {ignore_labels!r}"
        )
    if stride is not None:
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
            raise ValueError(f"token-classification: stride must be a non-negative int, got {stride!r}")
        if strategy == "none":
            raise ValueError(
                "token-classification: stride merges the entities of overlapping windows, which needs grouped "
                'entities: pass aggregation_strategy="simple", "first", "average" or "max" with it'
            )
    return strategy


def _gather_tokens(
    tokenizer: Any, text: str, feature: dict[str, np.ndarray], scores: np.ndarray
) -> list[dict[str, Any]]:
    """The non-special tokens of one feature with their scores ([C]), spans and whether they continue a word."""
    tokens = []
    input_ids = feature["input_ids"]
    for index, token_scores in enumerate(scores):
        if feature["special_tokens_mask"][index]:
            continue
        token_id = int(input_ids[index])
        word = tokenizer.convert_ids_to_tokens(token_id)
        start, end = (int(x) for x in feature["offset_mapping"][index])
        covered = text[start:end]
        # WordPiece: a "##" continuation is longer than the characters it covers; an [UNK] stands for its text
        is_subword = len(word) != len(covered)
        if token_id == tokenizer.unk_token_id:
            word, is_subword = covered, False
        tokens.append(
            {"word": word, "scores": token_scores, "start": start, "end": end, "index": index, "is_subword": is_subword}
        )
    return tokens


def _aggregate(
    tokenizer: Any, id2label: dict[int, str], tokens: list[dict[str, Any]], strategy: str
) -> list[dict[str, Any]]:
    if strategy in _WORD_STRATEGIES:
        entities = _aggregate_words(tokenizer, id2label, tokens, strategy)
    else:
        entities = []
        for token in tokens:
            label = int(token["scores"].argmax())
            entities.append(
                {
                    "entity": id2label[label],
                    "score": token["scores"][label],
                    "index": token["index"],
                    "word": token["word"],
                    "start": token["start"],
                    "end": token["end"],
                }
            )
    if strategy == "none":
        return entities
    return _group_entities(tokenizer, entities)


def _aggregate_words(
    tokenizer: Any, id2label: dict[int, str], tokens: list[dict[str, Any]], strategy: str
) -> list[dict[str, Any]]:
    """Tokens -> words (a token and the subwords after it), each with one label chosen by ``strategy``."""
    groups: list[list[dict[str, Any]]] = []
    for token in tokens:
        if groups and token["is_subword"]:
            groups[-1].append(token)
        else:
            groups.append([token])
    words = []
    for group in groups:
        if strategy == "first":
            scores = group[0]["scores"]
        elif strategy == "max":
            scores = max(group, key=lambda token: token["scores"].max())["scores"]
        else:  # average
            scores = np.nanmean(np.stack([token["scores"] for token in group]), axis=0)
        label = int(scores.argmax())
        words.append(
            {
                "entity": id2label[label],
                "score": scores[label],
                "word": tokenizer.convert_tokens_to_string([token["word"] for token in group]),
                "start": group[0]["start"],
                "end": group[-1]["end"],
            }
        )
    return words


def _tag(label: str) -> tuple[str, str]:
    """ "B-PER" -> ("B", "PER"); a label without a B-/I- prefix continues an entity of its own name."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _group_entities(tokenizer: Any, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent entities of one type merge unless the later one is a B- (beginning) label."""
    groups: list[list[dict[str, Any]]] = []
    for entity in entities:
        bi, tag = _tag(entity["entity"])
        if groups and tag == _tag(groups[-1][-1]["entity"])[1] and bi != "B":
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return [
        {
            # transformers names the group after the first label with its prefix cut off ("B-PER" -> "PER")
            "entity_group": group[0]["entity"].split("-", 1)[-1],
            "score": np.mean(np.nanmean([entity["score"] for entity in group])),
            "word": tokenizer.convert_tokens_to_string([entity["word"] for entity in group]),
            "start": group[0]["start"],
            "end": group[-1]["end"],
        }
        for group in groups
    ]


def _merge_overlapping(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities of overlapping windows: of those whose starts fall inside one another's span, the longest wins
    (the higher score on a tie), as transformers merges chunks."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda entity: entity["start"])
    merged = []
    previous = entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged
