"""TensorFlow / Keras 3 adapter for the shared tests."""

from __future__ import annotations

from typing import Any

import numpy as np

import roformer_tf
from roformer_core import RoFormerConfig, get_head

from .backends import to_numpy


class TFBackend:
    name = "tf"

    def model_class(self, head: str):
        return getattr(roformer_tf, "TF" + get_head(head).class_name)

    def build(self, head: str, config: RoFormerConfig, state: dict[str, np.ndarray]):
        return self.model_class(head).from_state_dict(config, state)

    def run(self, model, inputs: dict[str, np.ndarray], **flags: Any) -> dict[str, Any]:
        out = model(**{k: np.asarray(v) for k, v in inputs.items()}, **flags, training=False)
        if not isinstance(out, dict):
            return out
        return {k: (v if k == "past_key_values" else to_numpy(v)) for k, v in out.items()}

    def generate(self, model, input_ids: np.ndarray, attention_mask: np.ndarray | None = None, **kwargs) -> np.ndarray:
        return np.asarray(model.generate(input_ids, attention_mask=attention_mask, **kwargs))

    def from_pretrained(self, head: str, path, **overrides):
        return self.model_class(head).from_pretrained(path, **overrides)

    def save_pretrained(self, model, path) -> None:
        model.save_pretrained(path)


BACKEND = TFBackend()
