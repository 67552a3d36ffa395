"""Keras training helpers shared by single-process and distributed ``fit``: the variables AdamW leaves undecayed
(docs/distributed-keras.md)."""

from __future__ import annotations

import keras

from roformer_core.optim import no_decay
from roformer_core.schema import model_schema

from .modeling import TFRoFormerPreTrainedModel, _resolve_variable

__all__ = ["no_decay_variables"]


def no_decay_variables(model: TFRoFormerPreTrainedModel) -> list[keras.Variable]:
    """The model's variables that get no weight decay by the rule every port shares
    (:func:`roformer_core.optim.no_decay`: every bias and both parameters of each norm), for
    ``keras.optimizers.AdamW(...).exclude_from_weight_decay(var_list=...)`` (call it before the optimizer is built,
    i.e. before ``fit``).

    Args:
        model: any of the seven classes.

    Returns:
        the Keras variables, one per canonical parameter name the rule excludes.
    """
    return [
        _resolve_variable(model, spec.name)[0]
        for spec in model_schema(model.config, model.head)
        if spec.stored and no_decay(spec.name)
    ]
