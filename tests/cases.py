"""The shared test cases: tiny configs and their inputs, used by the golden-fixture script and every backend.

Each case names a config, the heads it applies to, and a deterministic input builder. ``scripts/make_golden.py``
runs the reference (transformers 4.57.6, PyTorch) on every (case, head) and stores weights, inputs and outputs in
``tests/fixtures/golden/<case>.npz``; the backend tests load those files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ALL_HEADS = (
    "model",
    "masked_lm",
    "causal_lm",
    "sequence_classification",
    "multiple_choice",
    "token_classification",
    "question_answering",
)
ENCODER_HEADS = tuple(h for h in ALL_HEADS if h != "causal_lm")

BASE_CONFIG: dict[str, Any] = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "hidden_act": "gelu",
    "max_position_embeddings": 64,
    "type_vocab_size": 16,
    "num_labels": 3,
    "initializer_range": 0.02,
}
BATCH, LENGTH, CHOICES = 2, 7, 3
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def golden_path(name: str) -> Path:
    """A committed golden file written by ``scripts/make_golden.py``."""
    return FIXTURES / "golden" / name


@dataclass(frozen=True)
class Case:
    name: str
    config: dict[str, Any]
    heads: tuple[str, ...]
    padding: bool = True
    token_types: bool = True
    head_mask: bool = False
    cross_attention: bool = False
    float_labels: bool = False
    length: int = LENGTH
    reference_config: dict[str, Any] = field(default_factory=dict)  # what the reference needs on top of config

    def full_config(self) -> dict[str, Any]:
        return {**BASE_CONFIG, **self.config}


CASES: tuple[Case, ...] = (
    Case("basic", {}, ALL_HEADS),
    Case("no_mask", {}, ENCODER_HEADS, padding=False, token_types=False),
    Case(
        "embedding_project_rotary_value",
        {"embedding_size": 24, "rotary_value": True, "hidden_act": "gelu_new"},
        ALL_HEADS,
    ),
    Case("head_mask", {"hidden_act": "relu"}, ALL_HEADS, head_mask=True),
    Case(
        "decoder_cross_attention",
        {"is_decoder": True, "add_cross_attention": True},
        ("model", "causal_lm"),
        cross_attention=True,
    ),
    Case("regression", {"num_labels": 1}, ("sequence_classification",), float_labels=True),
    Case(
        "multi_label",
        {"problem_type": "multi_label_classification", "num_labels": 4},
        ("sequence_classification",),
        float_labels=True,
    ),
    Case("untied_embeddings", {"tie_word_embeddings": False, "hidden_act": "silu"}, ("masked_lm",)),
    # The reference cannot run past max_position_embeddings; its golden values come from a config with a larger
    # table, which (the table not being learned) ours must match while keeping the smaller config.
    Case(
        "longer_than_max_positions",
        {"max_position_embeddings": 16},
        ("model", "masked_lm", "causal_lm"),
        length=40,
        reference_config={"max_position_embeddings": 64},
    ),
    Case("causal_padded", {"is_decoder": True}, ("model", "causal_lm")),
)
CASES_BY_NAME = {case.name: case for case in CASES}


def make_inputs(case: Case, head: str) -> dict[str, np.ndarray]:
    """Deterministic numpy inputs (and targets) for one case and head."""
    cfg = case.full_config()
    rng = np.random.default_rng(_seed(case.name, head))
    L = case.length
    shape = (BATCH, CHOICES, L) if head == "multiple_choice" else (BATCH, L)
    inputs: dict[str, np.ndarray] = {"input_ids": rng.integers(1, cfg["vocab_size"], size=shape, dtype=np.int64)}
    if case.padding:
        mask = np.ones(shape, dtype=np.int64)
        mask[1, ..., L - 3 :] = 0  # the second example (all its choices) ends with padding
        inputs["attention_mask"] = mask
    if case.token_types:
        types = np.zeros(shape, dtype=np.int64)
        types[..., L // 2 :] = 1
        types[..., -1] = 3
        inputs["token_type_ids"] = types
    if case.head_mask:
        inputs["head_mask"] = np.array([[1.0, 0.0, 0.5, 1.0], [0.25, 1.0, 1.0, 0.0]], dtype=np.float32)
    if case.cross_attention:
        inputs["encoder_hidden_states"] = rng.standard_normal((BATCH, 5, cfg["hidden_size"])).astype(np.float32)
        enc_mask = np.ones((BATCH, 5), dtype=np.int64)
        enc_mask[0, 3:] = 0
        inputs["encoder_attention_mask"] = enc_mask
    # targets
    if head in ("masked_lm", "causal_lm", "token_classification"):
        high = cfg["vocab_size"] if head != "token_classification" else cfg["num_labels"]
        labels = rng.integers(0, high, size=shape, dtype=np.int64)
        labels[0, 2] = -100
        labels[1, -1] = -100
        inputs["labels"] = labels
    elif head == "sequence_classification":
        n = cfg["num_labels"]
        if n == 1:
            inputs["labels"] = rng.standard_normal(BATCH).astype(np.float32)
        elif case.float_labels:
            inputs["labels"] = rng.integers(0, 2, size=(BATCH, n)).astype(np.float32)
        else:
            inputs["labels"] = rng.integers(0, n, size=BATCH, dtype=np.int64)
    elif head == "multiple_choice":
        inputs["labels"] = rng.integers(0, CHOICES, size=BATCH, dtype=np.int64)
    elif head == "question_answering":
        inputs["start_positions"] = np.array([1, L + 4], dtype=np.int64)  # second is out of range: ignored
        inputs["end_positions"] = np.array([3, 2], dtype=np.int64)
    return inputs


def _seed(*parts: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate("/".join(parts))) % (2**31)


def make_params(case: Case, head: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Random parameters for a case: the encoder's (shared by the case's heads, no prefix) and the head's own."""
    from roformer_core import RoFormerConfig
    from roformer_core.numpy_model import init_params

    config = RoFormerConfig(**case.full_config())
    encoder = init_params(config, "model", seed=_seed(case.name), scale=0.2)
    own = init_params(config, head, seed=_seed(case.name, head), scale=0.2)
    return encoder, {k: v for k, v in own.items() if not k.startswith("roformer.")}


def canonical_params(head: str, encoder: dict[str, np.ndarray], own: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stored state dict of a head model from the encoder's and the head's parameters."""
    prefix = "" if head == "model" else "roformer."
    return {**{prefix + k: v for k, v in encoder.items()}, **own}
