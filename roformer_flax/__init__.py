"""RoFormer in Flax (``flax.linen``): the seven model classes, numerically identical to the PyTorch port.

Model objects hold ``.config``, ``.module`` and ``.params`` and are called like the reference's Flax models;
they run every member of the RoFormer family (V1, V2, Sim, GPT-char) from its config fields (docs/variants.md).
:mod:`roformer_flax.modeling` holds the model classes, :mod:`roformer_flax.layers` their building blocks and
:mod:`roformer_flax.training` the optax / ``pmap`` training recipe.
"""

try:
    import flax  # noqa: F401
    import jax  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without jax
    raise ImportError("roformer_flax needs JAX and Flax: pip install 'roformer-tri[flax]'") from err

from roformer_core import RoFormerConfig

from .modeling import (
    FlaxRoFormerCache,
    FlaxRoFormerForCausalLM,
    FlaxRoFormerForMaskedLM,
    FlaxRoFormerForMultipleChoice,
    FlaxRoFormerForQuestionAnswering,
    FlaxRoFormerForSequenceClassification,
    FlaxRoFormerForTokenClassification,
    FlaxRoFormerModel,
    FlaxRoFormerModule,
    FlaxRoFormerPreTrainedModel,
)

__all__ = [
    "FlaxRoFormerCache",
    "FlaxRoFormerForCausalLM",
    "FlaxRoFormerForMaskedLM",
    "FlaxRoFormerForMultipleChoice",
    "FlaxRoFormerForQuestionAnswering",
    "FlaxRoFormerForSequenceClassification",
    "FlaxRoFormerForTokenClassification",
    "FlaxRoFormerModel",
    "FlaxRoFormerModule",
    "FlaxRoFormerPreTrainedModel",
    "RoFormerConfig",
]
