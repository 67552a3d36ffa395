"""PyTorch adapter for the shared tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import roformer_pt
from roformer_core import RoFormerConfig, get_head

from .backends import to_numpy


class PTBackend:
    name = "pt"

    def model_class(self, head: str):
        return getattr(roformer_pt, get_head(head).class_name)

    def build(self, head: str, config: RoFormerConfig, state: dict[str, np.ndarray]):
        return self.model_class(head).from_state_dict(config, state).eval()

    def run(self, model, inputs: dict[str, np.ndarray], **flags: Any) -> dict[str, Any]:
        kwargs = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
        with torch.no_grad():
            out = model(**kwargs, **flags)
        if not isinstance(out, dict):
            return out
        return {k: (v if k == "past_key_values" else to_numpy(v)) for k, v in out.items()}

    def generate(self, model, input_ids: np.ndarray, attention_mask: np.ndarray | None = None, **kwargs) -> np.ndarray:
        mask = None if attention_mask is None else torch.from_numpy(attention_mask)
        kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        return model.generate(torch.from_numpy(input_ids), attention_mask=mask, **kwargs).numpy()

    def from_pretrained(self, head: str, path, **overrides):
        return self.model_class(head).from_pretrained(path, **overrides)

    def save_pretrained(self, model, path) -> None:
        model.save_pretrained(path)


BACKEND = PTBackend()
