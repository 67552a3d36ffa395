"""The cross-framework equivalence matrix: every head x every pair of installed backends x the shared cases.

Each backend is already held to the reference (test_models.py); here the backends are held to each other,
directly, on every output field and the loss.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

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
