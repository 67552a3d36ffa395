"""RoFormer in TensorFlow / Keras 3: the seven model classes of the reference, numerically identical to it.

They run every member of the RoFormer family (V1, V2, Sim, GPT-char) from its config fields (docs/variants.md).
:mod:`roformer_tf.modeling` holds the model classes, :mod:`roformer_tf.layers` their building blocks,
:mod:`roformer_tf.keras_integration` what Keras' ``fit`` / ``save`` / ``export`` need and
:mod:`roformer_tf.generation` ``generate()``. Needs Keras 3 on the TensorFlow backend (``KERAS_BACKEND`` unset or
``tensorflow``).
"""

import os

_backend = os.environ.get("KERAS_BACKEND", "tensorflow")
if _backend != "tensorflow":
    raise ImportError(
        f"roformer_tf needs Keras on the TensorFlow backend, but KERAS_BACKEND={_backend!r}: unset it or set "
        "KERAS_BACKEND=tensorflow (use roformer_flax for JAX and roformer_pt for PyTorch)"
    )
try:
    import keras
    import tensorflow  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without TensorFlow
    raise ImportError("roformer_tf needs TensorFlow and Keras 3: pip install 'roformer-tri[tf]'") from err

if not keras.__version__.startswith("3.") or keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"roformer_tf needs Keras 3 on the TensorFlow backend, found Keras {keras.__version__} on "
        f"{keras.backend.backend()!r} (see ~/.keras/keras.json)"
    )

# imported only once the backend is known to be right, so a wrong one fails here and not inside a layer
from roformer_core import RoFormerConfig  # noqa: E402

from .modeling import (  # noqa: E402
    TFRoFormerForCausalLM,
    TFRoFormerForMaskedLM,
    TFRoFormerForMultipleChoice,
    TFRoFormerForQuestionAnswering,
    TFRoFormerForSequenceClassification,
    TFRoFormerForTokenClassification,
    TFRoFormerModel,
    TFRoFormerPreTrainedModel,
)

__all__ = [
    "RoFormerConfig",
    "TFRoFormerForCausalLM",
    "TFRoFormerForMaskedLM",
    "TFRoFormerForMultipleChoice",
    "TFRoFormerForQuestionAnswering",
    "TFRoFormerForSequenceClassification",
    "TFRoFormerForTokenClassification",
    "TFRoFormerModel",
    "TFRoFormerPreTrainedModel",
]
