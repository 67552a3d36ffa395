"""RoFormer in PyTorch: the seven model classes of the reference, numerically identical to it.

They run every member of the RoFormer family (V1, V2, Sim, GPT-char) from its config fields (docs/variants.md).
:mod:`roformer_pt.modeling` holds the model classes, :mod:`roformer_pt.layers` their building blocks and
:mod:`roformer_pt.generation` ``generate()``.
"""

try:
    import torch  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "roformer_pt needs PyTorch: pip install 'roformer-tri[torch]' "
        "(install torch==2.13.0 first on CPU-only machines)"
    ) from err

from roformer_core import RoFormerConfig

from .modeling import (
    RoFormerForCausalLM,
    RoFormerForMaskedLM,
    RoFormerForMultipleChoice,
    RoFormerForQuestionAnswering,
    RoFormerForSequenceClassification,
    RoFormerForTokenClassification,
    RoFormerModel,
    RoFormerPreTrainedModel,
)

__all__ = [
    "RoFormerConfig",
    "RoFormerForCausalLM",
    "RoFormerForMaskedLM",
    "RoFormerForMultipleChoice",
    "RoFormerForQuestionAnswering",
    "RoFormerForSequenceClassification",
    "RoFormerForTokenClassification",
    "RoFormerModel",
    "RoFormerPreTrainedModel",
]
