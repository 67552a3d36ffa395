"""fill-mask: the most likely tokens at each ``[MASK]``, as transformers' ``FillMaskPipeline`` returns them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task, as_feature, check_text


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis ``[..., V]`` (float64)."""
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class FillMaskTask(Task):
    """``pipe("今天[MASK]很好")`` -> ``[{"score", "token", "token_str", "sequence"}, ...]`` (``top_k`` of them);
    a text with several masks -> one such list per mask."""

    name = "fill-mask"
    head = "masked_lm"

    def collect(self, inputs: Any, results: list[Any], is_list: bool, **params: Any) -> Any:
        # transformers unwraps a one-text list too
        return results if is_list and len(results) > 1 else results[0]

    def preprocess(self, tokenizer, item, *, tokenizer_kwargs: dict[str, Any] | None = None, **_: Any):
        """``[CLS] text [SEP]`` ids, checked to hold at least one ``[MASK]``."""
        check_text(self.name, item)
        encoded = tokenizer(item, **(tokenizer_kwargs or {}))
        feature = as_feature(encoded)
        if not (feature["input_ids"] == tokenizer.mask_token_id).any():
            raise ValueError(
                f"fill-mask: no {tokenizer.mask_token} in {item!r}; write {tokenizer.mask_token} where a token "
                f"should be predicted, e.g. '今天{tokenizer.mask_token}很好'"
            )
        return [feature]

    def postprocess(
        self, tokenizer, item, features, outputs, *, top_k: int = 5, targets: str | list[str] | None = None, **_: Any
    ):
        """Per mask, the ``top_k`` tokens by probability (among ``targets`` when given)."""
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValueError(f"fill-mask: top_k must be a positive int, got {top_k!r}")
        input_ids = features[0]["input_ids"]
        masked = np.flatnonzero(input_ids == tokenizer.mask_token_id)
        probs = softmax(outputs[0]["logits"][masked]).astype(np.float32)  # [M, V]
        target_ids = None if targets is None else self._target_ids(tokenizer, targets)
        if target_ids is not None:
            probs = probs[:, target_ids]
        k = min(top_k, probs.shape[-1])
        single = len(masked) == 1
        result = []
        for position, row in zip(masked, probs):
            # ties keep the lower index first, as torch.topk does on CPU
            best = np.argsort(-row, kind="stable")[:k]
            proposals = []
            for index in best:
                token = int(index if target_ids is None else target_ids[index])
                tokens = input_ids.copy()
                tokens[position] = token
                tokens = tokens[tokens != tokenizer.pad_token_id]
                proposals.append(
                    {
                        "score": float(row[index]),
                        "token": token,
                        "token_str": tokenizer.decode([token]),
                        # other masks stay visible in each proposal's sequence
                        "sequence": tokenizer.decode(tokens, skip_special_tokens=single),
                    }
                )
            result.append(proposals)
        return result[0] if single else result

    @staticmethod
    def _target_ids(tokenizer, targets: str | list[str]) -> list[int]:
        """Vocabulary ids of ``targets``; a word outside the vocabulary counts as its first token."""
        targets = [targets] if isinstance(targets, str) else list(targets)
        vocab = tokenizer.get_vocab()
        ids = []
        for target in targets:
            if target in vocab:
                ids.append(vocab[target])
                continue
            pieces = tokenizer(target, add_special_tokens=False)["input_ids"]
            if pieces:
                ids.append(pieces[0])
        if not ids:
            raise ValueError(f"fill-mask: none of the targets {targets!r} is a token; pass words of the vocabulary")
        return list(set(ids))  # transformers' order
