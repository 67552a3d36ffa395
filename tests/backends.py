"""Backend adapters: one small class per framework so every shared test runs on every installed backend.

An adapter builds a model class from canonical numpy weights, runs it on numpy inputs and returns numpy outputs.
Adapters live in ``tests/backend_<name>.py``; a backend whose framework is not installed is skipped, by name.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np
import pytest

from roformer_core import RoFormerConfig

BACKEND_NAMES = ("pt", "tf", "flax")


class Backend(Protocol):
    name: str

    def build(self, head: str, config: RoFormerConfig, state: dict[str, np.ndarray]) -> Any: ...

    def run(self, model: Any, inputs: dict[str, np.ndarray], **flags: Any) -> dict[str, Any]: ...

    def generate(self, model: Any, input_ids: np.ndarray, attention_mask: np.ndarray | None = None, **kw: Any): ...

    def from_pretrained(self, head: str, path: str, **overrides: Any) -> Any: ...

    def save_pretrained(self, model: Any, path: str) -> None: ...


_FRAMEWORKS = {"pt": "torch", "tf": "tensorflow", "flax": "flax"}


def load_backend(name: str) -> Backend:
    """The adapter of a backend; skips the calling test when its framework is not installed (a port that fails to
    import with its framework present is an error, not a skip)."""
    pytest.importorskip(_FRAMEWORKS[name])
    return importlib.import_module(f"tests.backend_{name}").BACKEND


def backend_params() -> list[Any]:
    return [pytest.param(name, id=name) for name in BACKEND_NAMES]


def to_numpy(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return np.stack([to_numpy(v) for v in value])
    return np.asarray(value)
