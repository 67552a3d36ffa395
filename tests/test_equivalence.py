"""The cross-framework equivalence matrix: every head x every pair of installed backends x the shared cases.

Each backend is already held to the reference (test_models.py); here the backends are held to each other,
directly, on every output field and the loss.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from roformer_core import HEADS, numpy_model
from roformer_core.variants import variant_config

from .backends import BACKEND_NAMES, load_backend
from .test_models import CASE_HEADS, case_setup
from .tolerances import ATOL

PAIRS = [pytest.param(a, b, id=f"{a}-{b}") for a, b in itertools.combinations(BACKEND_NAMES, 2)]


@pytest.mark.parametrize("first, second", PAIRS)
@pytest.mark.parametrize("case_name, head", CASE_HEADS)
def test_backends_agree(first: str, second: str, case_name: str, head: str) -> None:
    a, b = load_backend(first), load_backend(second)
    config, state, inputs, expected = case_setup(case_name, head)
    flags = {"output_hidden_states": True, "output_attentions": True}
    out_a = a.run(a.build(head, config.copy(), state), inputs, **flags)
    out_b = b.run(b.build(head, config.copy(), state), inputs, **flags)
    for field in expected:
        diff = float(np.max(np.abs(np.asarray(out_a[field], np.float64) - np.asarray(out_b[field], np.float64))))
        assert diff <= ATOL["float32"], f"{field}: {first} vs {second} differ by {diff:.3g}"


FAMILY_HEADS = [
    pytest.param(variant, head.name, id=f"{variant}-{head.name}") for variant in ("v2", "sim") for head in HEADS
]


@pytest.mark.parametrize("first, second", PAIRS)
@pytest.mark.parametrize("variant, head", FAMILY_HEADS)
def test_backends_agree_on_the_family(first: str, second: str, variant: str, head: str) -> None:
    """The matrix on RoFormer-V2 and RoFormer-Sim (pooler, UniLM mask by segments): every head, every output field
    present in both (pooler_output included), hidden states and attentions."""
    a, b = load_backend(first), load_backend(second)
    config = variant_config(
        variant,
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        hidden_act="relu" if variant == "v2" else "gelu",
    )
    state = numpy_model.init_params(config, head, seed=2, scale=0.3)
    rng = np.random.default_rng(4)
    ids = rng.integers(1, 99, (3, 10))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    types = (np.arange(10)[None, :] >= np.array([[6], [4], [10]])).astype(np.int64)  # source, then target
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if head == "multiple_choice":
        inputs = {k: np.stack([v, v[::-1]], axis=1) for k, v in inputs.items()}
    flags = {"output_hidden_states": True, "output_attentions": True}
    out_a = a.run(a.build(head, config.copy(), state), inputs, **flags)
    out_b = b.run(b.build(head, config.copy(), state), inputs, **flags)
    fields = [f for f in out_a if f != "past_key_values"]
    assert set(fields) == {f for f in out_b if f != "past_key_values"}
    assert ("pooler_output" in fields) == (variant == "sim")
    for field in fields:
        diff = float(np.max(np.abs(np.asarray(out_a[field], np.float64) - np.asarray(out_b[field], np.float64))))
        assert diff <= ATOL["float32"], f"{field}: {first} vs {second} differ by {diff:.3g}"
