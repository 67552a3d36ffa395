"""feature-extraction: token vectors (transformers' ``FeatureExtractionPipeline``) or one pooled vector per text."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task, as_feature, check_text

#: ``pooling=`` values: the mean over the text's tokens, the first ([CLS]) token's vector, or the model's pooler.
POOLINGS = ("mean", "cls", "pooler")


def check_pooler(task: str, config) -> None:
    """ValueError unless the model has a pooler (``add_pooling_layer``, as RoFormer-Sim checkpoints do)."""
    if not config.add_pooling_layer:
        raise ValueError(
            f"{task}: the model has no pooler (config.add_pooling_layer is false); use a RoFormer-Sim checkpoint, "
            "or pass pooling='mean' or 'cls'"
        )


def pool(output: dict[str, np.ndarray], attention_mask: np.ndarray, pooling: str) -> np.ndarray:
    """One vector ``[E]`` from a text's outputs (``last_hidden_state [L, E]``, ``pooler_output [E]``)."""
    if pooling == "pooler":
        return output["pooler_output"]
    hidden = output["last_hidden_state"]
    if pooling == "cls":
        return hidden[0]
    weights = attention_mask.astype(np.float32)[:, None]
    return (hidden * weights).sum(axis=0) / weights.sum()


class FeatureExtractionTask(Task):
    """``pipe("text")`` -> ``[1, L, E]`` nested lists (the last hidden state, as transformers returns it), or with
    ``pooling`` one vector ``[E]`` per text; ``return_tensors=True`` returns numpy arrays instead of lists."""

    name = "feature-extraction"
    head = "model"

    def preprocess(self, tokenizer, item, *, tokenize_kwargs: dict[str, Any] | None = None, **_: Any):
        check_text(self.name, item)
        encoded = tokenizer(item, **(tokenize_kwargs or {}))
        return [as_feature(encoded)]

    def postprocess(
        self,
        tokenizer,
        item,
        features,
        outputs,
        *,
        pooling: str | None = None,
        normalize: bool = False,
        return_tensors: bool = False,
        **_: Any,
    ):
        """Args: pooling: None (token vectors), ``"mean"``, ``"cls"`` or ``"pooler"``; normalize: scale a pooled
        vector to unit length."""
        if pooling is None:
            if normalize:
                raise ValueError("feature-extraction: normalize=True needs pooling='mean', 'cls' or 'pooler'")
            value = outputs[0]["last_hidden_state"][None]  # [1, L, E]
        elif pooling not in POOLINGS:
            raise ValueError(f"feature-extraction: unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        else:
            if pooling == "pooler":
                check_pooler(self.name, self.config)
            mask = features[0].get("attention_mask", np.ones_like(features[0]["input_ids"]))
            value = pool(outputs[0], mask, pooling)
            if normalize:
                value = value / np.linalg.norm(value)
        return value if return_tensors else value.tolist()
