"""Loss rules of every head, once: the constants, the decisions, and float64 numpy definitions.

Ports implement these with their framework's ops; the shared tests compare each port with the functions here.

* Ignored targets are ``IGNORE_INDEX`` (-100) for the masked LM, the causal LM and token classification; losses
  are the mean over the targets that are not ignored.
* Causal LM: position ``t`` predicts token ``t + 1``: ``logits[:, :-1]`` against ``labels[:, 1:]``.
* Sequence classification: ``problem_type`` is taken from the config or, when unset, resolved on the first call
  by :func:`resolve_problem_type` and written back into the config, as the reference does.
* Multiple choice: cross-entropy over the ``[B, C]`` choice logits.
* Question answering: start / end positions (an extra trailing axis of size 1 is dropped) are clamped to
  ``[0, L]``; ``L`` is then the ignored index, so an answer outside the sequence costs nothing. The loss is
  ``(start_loss + end_loss) / 2``.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = -100

REGRESSION = "regression"
SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"


def resolve_problem_type(problem_type: str | None, num_labels: int, labels_are_integer: bool) -> str:
    """The sequence-classification loss to use.

    Args:
        problem_type: the config's value (returned as is when set).
        num_labels: number of labels.
        labels_are_integer: whether the labels have an integer dtype.
    """
    if problem_type is not None:
        return problem_type
    if num_labels == 1:
        return REGRESSION
    return SINGLE_LABEL if labels_are_integer else MULTI_LABEL


def qa_ignored_index(seq_len: int) -> int:
    """The ignored index for question-answering targets of a sequence of length ``seq_len`` (clamp bound)."""
    return seq_len


# Heads whose labels are class indices, each with where the class count comes from (for messages). Sequence
# classification only for single-label problems; question answering's positions are clamped, never out of range.
CLASS_LABEL_FIELDS: dict[str, str] = {
    "masked_lm": "vocab_size",
    "causal_lm": "vocab_size",
    "token_classification": "num_labels",
    "sequence_classification": "num_labels",
    "multiple_choice": "the number of choices",
}


def class_label_limit(
    head_name: str, config, labels_are_integer: bool = True, num_choices: int | None = None
) -> tuple[int, str] | None:
    """``(classes, field)`` where ``head_name``'s labels are class indices: each label other than IGNORE_INDEX must
    lie in ``[0, classes)``, ``field`` (:data:`CLASS_LABEL_FIELDS`) naming where ``classes`` comes from. None where
    labels are not class indices (regression, multi-label, the bare model, question answering), and for multiple
    choice when ``num_choices`` is unknown.
    """
    field = CLASS_LABEL_FIELDS.get(head_name)
    if field is None:
        return None
    problem = resolve_problem_type(config.problem_type, config.num_labels, labels_are_integer)
    if head_name == "sequence_classification" and problem != SINGLE_LABEL:
        return None
    if head_name == "multiple_choice":
        return None if num_choices is None else (num_choices, field)
    return getattr(config, field), field


def scored_labels(head_name: str, labels):
    """The labels a loss scores: the causal LM's position ``t`` predicts token ``t + 1``, so its first label is
    never a target (``labels[:, 1:]``); every other head scores all of them. Works on any array type."""
    return labels[:, 1:] if head_name == "causal_lm" else labels


def target_count(head_name: str, batch, config):
    """How many targets the mean loss of ``batch`` averages over: the weight of that mean when micro-batch or
    per-device means are combined into the mean over a whole batch.

    Written with array operators and ``.sum()`` only, so it runs on numpy and JAX arrays (traced too).

    Args:
        head_name: the head (``"masked_lm"``, ...).
        batch: the forward arguments (``labels``, ``input_ids`` or ``inputs_embeds``, ...).
        config: the model's RoFormerConfig (for the sequence-classification problem type).

    Returns:
        targets not equal to IGNORE_INDEX (the LMs, from position 1 for the causal LM; token classification;
        multiple choice; single-label classification), else examples (regression and multi-label
        classification average a fixed number of values per example; question answering averages its start and
        end losses, so examples is exact when every answer lies inside the sequence).
    """
    labels = batch.get("labels")
    if head_name in ("masked_lm", "causal_lm", "token_classification", "multiple_choice"):
        return (scored_labels(head_name, labels) != IGNORE_INDEX).sum()
    if head_name == "sequence_classification":
        integer = np.issubdtype(np.dtype(labels.dtype), np.integer)
        if resolve_problem_type(config.problem_type, config.num_labels, integer) == SINGLE_LABEL:
            return (labels != IGNORE_INDEX).sum()
    ref = batch["input_ids"] if batch.get("input_ids") is not None else batch["inputs_embeds"]
    return ref.shape[0]


# ---- float64 numpy definitions (test oracle) ------------------------------------------------------------------


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray, ignore_index: int = IGNORE_INDEX) -> float:
    """Mean cross-entropy of ``logits [N, C]`` against ``labels [N]``, skipping ``ignore_index``."""
    logits = np.asarray(logits).reshape(-1, np.shape(logits)[-1])
    labels = np.asarray(labels).reshape(-1)
    keep = labels != ignore_index
    if not keep.any():
        return float("nan")
    logp = _log_softmax(logits[keep])
    return float(-logp[np.arange(keep.sum()), labels[keep]].mean())


def masked_lm_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """``logits [B, L, V]``, ``labels [B, L]``."""
    return cross_entropy(logits, labels)


def causal_lm_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Next-token loss: ``logits[:, :-1] [B, L-1, V]`` against ``labels[:, 1:]``."""
    return cross_entropy(logits[:, :-1], labels[:, 1:])


def sequence_classification_loss(logits: np.ndarray, labels: np.ndarray, problem_type: str) -> float:
    """``logits [B, num_labels]``; labels ``[B]`` (int or float) or ``[B, num_labels]`` (multi-label)."""
    logits = np.asarray(logits, dtype=np.float64)
    if problem_type == REGRESSION:
        return float(np.mean((logits.squeeze() - np.asarray(labels, dtype=np.float64).squeeze()) ** 2))
    if problem_type == SINGLE_LABEL:
        return cross_entropy(logits, labels)
    if problem_type == MULTI_LABEL:
        y = np.asarray(labels, dtype=np.float64)
        # numerically stable binary cross-entropy with logits
        return float(np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))))
    raise ValueError(f"unknown problem_type {problem_type!r}")


def multiple_choice_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """``logits [B, C]``, ``labels [B]``."""
    return cross_entropy(logits, labels)


def token_classification_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """``logits [B, L, num_labels]``, ``labels [B, L]``."""
    return cross_entropy(logits, labels)


def question_answering_loss(
    start_logits: np.ndarray, end_logits: np.ndarray, start_positions: np.ndarray, end_positions: np.ndarray
) -> float:
    """``start_logits``/``end_logits [B, L]``; positions ``[B]`` or ``[B, 1]``."""
    seq_len = np.shape(start_logits)[1]
    ignored = qa_ignored_index(seq_len)
    losses = []
    for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
        positions = np.clip(np.asarray(positions).reshape(-1), 0, seq_len)
        losses.append(cross_entropy(logits, positions, ignore_index=ignored))
    return (losses[0] + losses[1]) / 2
