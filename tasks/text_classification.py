"""text-classification: labels with scores, as transformers' ``TextClassificationPipeline`` returns them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task, as_feature, check_text
from .fill_mask import softmax

#: ``function_to_apply=`` values.
FUNCTIONS = ("softmax", "sigmoid", "none")
# "top_k not given" (transformers' legacy output: the best label as a dict), distinct from top_k=None (all labels)
_LEGACY = "legacy"


def default_function(config) -> str:
    """transformers' rule: none for regression, sigmoid for multi-label or one label, else softmax."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


class TextClassificationTask(Task):
    """``pipe("text")`` -> ``[{"label", "score"}]`` (the best label); with ``top_k`` (None: every label) the
    ``top_k`` best, sorted. An item is a text or ``{"text": ..., "text_pair": ...}``."""

    name = "text-classification"
    head = "sequence_classification"

    def collect(self, inputs, results, is_list, *, top_k: int | None | str = _LEGACY, **_: Any):
        if isinstance(inputs, str) and top_k == _LEGACY:
            return [results[0]]  # transformers wraps a single text's best label in a list (not a pair's)
        return results if is_list else results[0]

    def preprocess(self, tokenizer, item, *, tokenizer_kwargs: dict[str, Any] | None = None, **_: Any):
        kwargs = tokenizer_kwargs or {}
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if "text" not in item or unknown:
                raise ValueError(
                    f"text-classification: a pair is a dict with the keys 'text' and 'text_pair'; got {sorted(item)}"
                )
            pair = item.get("text_pair")
            encoded = tokenizer(
                check_text(self.name, item["text"]),
                None if pair is None else check_text(self.name, pair),
                **kwargs,
            )
        else:
            encoded = tokenizer(check_text(self.name, item), **kwargs)
        return [as_feature(encoded)]

    def postprocess(
        self,
        tokenizer,
        item,
        features,
        outputs,
        *,
        top_k: int | None | str = _LEGACY,
        function_to_apply: str | None = None,
        **_: Any,
    ):
        """Scores of the labels of ``config.id2label`` after ``function_to_apply`` (default by problem type)."""
        function = default_function(self.config) if function_to_apply is None else str(function_to_apply).lower()
        if function not in FUNCTIONS:
            raise ValueError(
                f"text-classification: unknown function_to_apply {function_to_apply!r}; choose {', '.join(FUNCTIONS)}"
            )
        if top_k not in (_LEGACY, None) and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"text-classification: top_k must be a positive int or None, got {top_k!r}")
        logits = outputs[0]["logits"].astype(np.float32)
        if function == "softmax":
            scores = softmax(logits).astype(np.float32)
        elif function == "sigmoid":
            scores = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        else:
            scores = logits
        labels = self.config.id2label
        if top_k == _LEGACY:
            best = int(scores.argmax())
            return {"label": labels[best], "score": float(scores[best])}
        ranked = sorted(
            ({"label": labels[i], "score": float(s)} for i, s in enumerate(scores)),
            key=lambda x: x["score"],
            reverse=True,
        )
        return ranked if top_k is None else ranked[:top_k]
