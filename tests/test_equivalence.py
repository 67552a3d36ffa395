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


def assert_backends_agree(outputs: dict[str, dict], fields: list[str]) -> None:
    """Every pair of backends' outputs within float32 tolerance on every field; all disagreements reported."""
    problems = []
    for (first, out_a), (second, out_b) in itertools.combinations(outputs.items(), 2):
        for field in fields:
            diff = float(np.max(np.abs(np.asarray(out_a[field], np.float64) - np.asarray(out_b[field], np.float64))))
            if not diff <= ATOL["float32"]:
                problems.append(f"{field}: {first} vs {second} differ by {diff:.3g}")
    assert not problems, "; ".join(problems)


def run_backends(head: str, config, state, inputs) -> dict[str, dict]:
    """Each installed backend's outputs (hidden states and attentions included), each backend run once."""
    flags = {"output_hidden_states": True, "output_attentions": True}
    outputs = {}
    for name in BACKEND_NAMES:
        backend = load_backend(name)
        outputs[name] = backend.run(backend.build(head, config.copy(), state), inputs, **flags)
    return outputs


@pytest.mark.skipif(len(BACKEND_NAMES) < 2, reason="needs two backends")
@pytest.mark.parametrize("case_name, head", CASE_HEADS)
def test_backends_agree(case_name: str, head: str) -> None:
    """Every pair of backends (pt-tf, pt-flax, tf-flax), each run once on the case."""
    config, state, inputs, expected = case_setup(case_name, head)
    assert_backends_agree(run_backends(head, config, state, inputs), list(expected))


FAMILY_HEADS = [
    pytest.param(variant, head.name, id=f"{variant}-{head.name}") for variant in ("v2", "sim") for head in HEADS
]


@pytest.mark.skipif(len(BACKEND_NAMES) < 2, reason="needs two backends")
@pytest.mark.parametrize("variant, head", FAMILY_HEADS)
def test_backends_agree_on_the_family(variant: str, head: str) -> None:
    """The matrix on RoFormer-V2 and RoFormer-Sim (pooler, UniLM mask by segments): every head, every output field
    present in both (pooler_output included), hidden states and attentions."""
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
    outputs = run_backends(head, config, state, inputs)
    field_sets = [{f for f in out if f != "past_key_values"} for out in outputs.values()]
    assert all(fields == field_sets[0] for fields in field_sets), field_sets
    assert ("pooler_output" in field_sets[0]) == (variant == "sim")
    assert_backends_agree(outputs, sorted(field_sets[0]))
