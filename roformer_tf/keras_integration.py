"""How Keras 3 sees a RoFormer model: training steps, compiled losses and metrics, ``.keras`` files, export and
``summary()``.

:class:`KerasModelMixin` is a base of ``TFRoFormerPreTrainedModel``. The models take their targets as forward
arguments (``labels``; ``start_positions`` / ``end_positions``) and return :mod:`roformer_core.outputs` dicts, so
between Keras and the model this module routes a batch's targets (into the inputs for the model's own loss, as
``y`` for compiled losses and metrics) and presents each head's predictions and targets to Keras in the form its
losses and metrics expect (:meth:`KerasModelMixin._keras_view`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend import set_keras_mask

from roformer_core import losses
from roformer_core.config import RoFormerConfig
from roformer_core.heads import CAUSAL_LM, MULTIPLE_CHOICE, QUESTION_ANSWERING, HeadSpec

# The endpoint (and SavedModel signature) name of Keras' own ``Model.export``.
_SERVING_ENDPOINT = "serve"


def _replica_scaled(loss: tf.Tensor) -> tf.Tensor:
    """A per-replica mean loss scaled so that summing over replicas gives the global mean (as Keras losses do)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / tf.cast(replicas, loss.dtype)


def _multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` over more than one worker (Keras' own private test,
    rewritten here so that a Keras release that moves it cannot break the import)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.extended._in_multi_worker_mode()
    )


def _reducible_across_workers(logs: dict[str, Any]) -> dict[str, Any]:
    """A step's logs (scalars) as ``[1]`` tensors under a multi-worker strategy, else as they are.

    Keras 3.15 averages each log over the replicas of several workers with ``strategy.reduce("MEAN", v,
    axis=0)`` (``reduce_per_replica``), which fails on a scalar ("Invalid reduction dimension 0 for input with 0
    dimensions") for any model; on ``[1]`` it is the mean over replicas, a scalar again. Single-worker strategies
    average the local results without an axis and keep getting scalars.
    """
    if not _multi_worker(tf.distribute.get_strategy()):
        return logs
    return tf.nest.map_structure(lambda value: tf.reshape(value, [1]), logs)


def _masked(predictions: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
    """A copy of ``predictions`` carrying ``keep`` as its Keras mask: Keras losses and metrics (``accuracy``,
    ``SparseCategoricalAccuracy``, ...) then weight the entries where ``keep`` is False by 0."""
    predictions = tf.identity(predictions)
    set_keras_mask(predictions, keep)
    return predictions


def _main_tensor(value: Any) -> Any:
    """The tensor a block's output is known by in ``summary()``: the hidden states of a dict or output object,
    the first element of a tuple (context or hidden states; the rest are caches and attention maps)."""
    if isinstance(value, dict):
        value = value.get("last_hidden_state", next(iter(value.values()), None))
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    return value


class KerasModelMixin:
    """Keras 3 integration of every RoFormer class (see the module docstring)."""

    head: HeadSpec
    config: RoFormerConfig

    # -- .keras files ---------------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Keras' config: the layer arguments plus the RoFormerConfig as a dict (``"config"``), so that
        ``keras.models.load_model`` rebuilds the model (the classes are registered under ``roformer>``)."""
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        """Rebuild a model from :meth:`get_config`'s dict (weights are loaded afterwards by Keras)."""
        config = dict(config)
        return cls(RoFormerConfig.from_dict(config.pop("config")), **config)

    # -- training (Keras) -----------------------------------------------------------------------------------------
    def _targets_from_y(self, y: Any) -> dict[str, Any]:
        if isinstance(y, dict):
            return {k: v for k, v in y.items() if k in self.head.label_args}
        if len(self.head.label_args) == 1:
            return {self.head.label_args[0]: y}
        raise ValueError(f"give {' and '.join(self.head.label_args)} as a dict (in x or as y)")

    def _targets(self, x: Any, y: Any) -> dict[str, Any]:
        """A batch's targets by forward argument: from ``y``, else from the input dict ``x``; {} when none."""
        if y is not None:
            return self._targets_from_y(y)
        if isinstance(x, dict):
            return {k: x[k] for k in self.head.label_args if x.get(k) is not None}
        return {}

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        """Build the optimizer and compiled losses and metrics on the first replica's part of the first batch.

        Under a distribution strategy Keras 3.15 gets its example batch by ``strategy.reduce("MEAN", batch)``,
        an all-reduce of the data itself. ``MultiWorkerMirroredStrategy`` with more than one worker cannot reduce
        a nested batch (a dict of inputs), so every worker failed in ``fit`` before the first step with
        "Attempt to convert a value ({'input_ids': PerReplica:{...}}) with an unsupported type" (keras-team/keras
        issues 20329, 20585). The build needs only shapes and dtypes, which one replica's part has: take it
        locally, with no collective.
        """
        if iterator is not None and self._distribute_strategy is not None:
            local_parts = self._distribute_strategy.experimental_local_results
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(lambda value: local_parts(value)[0], next(batches))
                break
            iterator = None
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data: Any):
        """As Keras' own, with the batch's targets routed by :meth:`_move_targets`."""
        return _reducible_across_workers(super().train_step(self._move_targets(data)))

    def test_step(self, data: Any):
        return _reducible_across_workers(super().test_step(self._move_targets(data)))

    def _move_targets(self, data: Any) -> Any:
        """``(x, y, sample_weight)`` with the targets (from ``y`` or the input dict) as ``y``, for compiled metrics,
        and also in the inputs when the model computes its own loss; out of them when ``compile`` has a loss."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        targets = self._targets(x, y) if self.head.label_args else {}
        if not targets:
            return data
        inputs = dict(x) if isinstance(x, dict) else {"input_ids": x}
        for name in self.head.label_args:
            inputs.pop(name, None)
        if self._compile_loss is None:
            inputs.update(targets)
        return keras.utils.pack_x_y_sample_weight(inputs, targets, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The model's own loss (``y_pred.loss``) unless ``compile`` was given a loss, which then sees what
        compiled metrics see (:meth:`_keras_view`)."""
        if self._compile_loss is not None:
            y_true, predictions = self._keras_view(x, y, y_pred)
            return super().compute_loss(x, y_true, predictions, sample_weight, training=training)
        if not isinstance(y_pred, dict) or "loss" not in y_pred:
            names = " / ".join(self.head.label_args) or "targets"
            raise ValueError(
                f"{type(self).__name__} has no loss to train on: put {names} in the batch, or compile with a loss"
            )
        loss = _replica_scaled(tf.cast(y_pred["loss"], tf.float32))
        for extra in self.losses:
            loss = loss + self._aggregate_additional_loss(extra)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics with the targets and predictions of :meth:`_keras_view`."""
        if self._compile_metrics is None:
            return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        y_true, predictions = self._keras_view(x, y, y_pred)
        return super().compute_metrics(x, y_true, predictions, sample_weight=sample_weight)

    def _keras_view(self, x: Any, y: Any, y_pred: Any) -> tuple[Any, Any]:
        """``(y_true, y_pred)`` as compiled Keras losses and metrics see them: the scored targets and the
        predictions they score, ignored targets masked out.

        * Class-index targets (the LMs, token and single-label sequence classification, multiple choice):
          ``labels`` and ``logits``; labels equal to -100 are shown as class 0 under a Keras mask on the logits,
          so ``accuracy`` (and any masked-aware loss or metric) counts only the scored targets. The causal LM
          shows the pairs its loss scores: ``logits[:, :-1]`` against ``labels[:, 1:]``.
        * Question answering: dicts keyed by output name, ``{"start_logits": start_positions, "end_logits":
          end_positions}`` and the logits ``[B, L]``, so metrics and losses are given per output (``metrics=
          {"start_logits": ["accuracy"], "end_logits": ["accuracy"]}``); positions are clamped to ``[0, L]`` and
          ``L`` is masked, as the model's loss does.
        * Regression and multi-label classification: the targets as given and the logits.
        * The bare model: ``y`` as given and ``last_hidden_state``.
        """
        main = {name: y_pred[name] for name in self.head.main_outputs}
        if not self.head.label_args:
            return y, main[self.head.main_outputs[0]]
        targets = self._targets(x, y)
        missing = [name for name in self.head.label_args if targets.get(name) is None]
        if missing:
            raise ValueError(
                f"{type(self).__name__} was compiled with a loss or metrics, which need the targets: put "
                f"{' and '.join(missing)} in the batch (in the input dict or as y)"
            )
        if self.head is QUESTION_ANSWERING:
            y_true, predictions = {}, {}
            # the core lists the positions in the order of the logits they score (start, end)
            for arg, name in zip(self.head.label_args, self.head.main_outputs):
                ignored = tf.cast(losses.qa_ignored_index(tf.shape(main[name])[1]), tf.int64)
                positions = tf.clip_by_value(tf.reshape(tf.cast(targets[arg], tf.int64), [-1]), 0, ignored)
                keep = positions != ignored
                y_true[name] = tf.where(keep, positions, tf.zeros_like(positions))
                predictions[name] = _masked(main[name], keep)
            return y_true, predictions
        labels, logits = tf.convert_to_tensor(targets["labels"]), main["logits"]
        if self.head is CAUSAL_LM:
            labels, logits = losses.scored_labels(self.head.name, labels), logits[:, :-1]
        choices = tf.shape(logits)[-1] if self.head is MULTIPLE_CHOICE else None
        if losses.class_label_limit(self.head.name, self.config, labels.dtype.is_integer, choices) is None:
            return labels, logits
        labels = tf.cast(labels, tf.int64)
        keep = labels != losses.IGNORE_INDEX
        return tf.where(keep, labels, tf.zeros_like(labels)), _masked(logits, keep)

    def predict_step(self, data: Any) -> dict[str, tf.Tensor]:
        """``model.predict`` returns a dict of the main outputs (logits, or start/end logits, or hidden states)."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._main_outputs(self(x, training=False))

    def _main_outputs(self, out: Any) -> dict[str, tf.Tensor]:
        return {k: out[k] for k in self.head.main_outputs}

    # -- serving --------------------------------------------------------------------------------------------------
    def serving_input_signature(self) -> list[tf.TensorSpec]:
        """``input_ids``, ``attention_mask``, ``token_type_ids``: int64 ``[B, L]`` (``[B, C, L]`` multiple choice)."""
        shape = [None, None, None] if self.head is MULTIPLE_CHOICE else [None, None]
        return [tf.TensorSpec(shape, tf.int64, name=n) for n in ("input_ids", "attention_mask", "token_type_ids")]

    def _serve(self, input_ids: tf.Tensor, attention_mask: tf.Tensor, token_type_ids: tf.Tensor) -> dict:
        out = self(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, training=False)
        return self._main_outputs(out)

    def export(
        self,
        filepath: str | os.PathLike,
        format: str = "tf_saved_model",
        verbose: bool | None = None,
        input_signature: Any = None,
        **kwargs: Any,
    ) -> None:
        """Keras' ``Model.export``; a TensorFlow SavedModel by default, with a ``serve`` endpoint (also the
        ``serving_default`` signature) that takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64,
        :meth:`serving_input_signature`) and returns the main outputs by name (``logits``; ``start_logits`` /
        ``end_logits``; ``last_hidden_state``). Reload it with ``tf.saved_model.load`` (no roformer code needed).

        Other formats, or an explicit ``input_signature``, go to Keras' own export unchanged.
        """
        if format != "tf_saved_model" or input_signature is not None or kwargs:
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)
        archive = keras.export.ExportArchive()
        archive.track(self)
        archive.add_endpoint(_SERVING_ENDPOINT, self._serve, input_signature=self.serving_input_signature())
        archive.write_out(str(filepath), verbose=True if verbose is None else verbose)

    def export_saved_model(self, export_dir: str | os.PathLike) -> Path:
        """:meth:`export` without the printed summary; reload with
        ``tf.saved_model.load(export_dir).signatures["serving_default"]``."""
        self.export(export_dir, verbose=False)
        return Path(export_dir)

    # -- summary --------------------------------------------------------------------------------------------------
    def summary(self, *args: Any, **kwargs: Any) -> None:
        """Keras' ``Model.summary`` (same arguments), with each layer's output shape.

        Keras knows the output shapes of a subclassed model's layers only from functional graph nodes or from a
        build on an input shape; these models build every weight at construction, so here the model is traced
        once on symbolic ids ``[B, L]`` (``[B, C, L]`` multiple choice) and each layer shows the shape it
        produced (its main tensor: hidden states, logits).
        """
        with self._traced_output_shapes():
            super().summary(*args, **kwargs)

    @contextlib.contextmanager
    def _traced_output_shapes(self) -> Iterator[None]:
        """For the duration of the block, give every sub-layer the input and output shapes of one symbolic trace,
        where Keras' summary reads them (``_build_shapes_dict``, as after a build, and ``output_shape``)."""
        layers = list(self._flatten_layers(include_self=False))
        traced: dict[int, dict[str, Any]] = {}

        def recorded(layer: keras.layers.Layer, call: Any) -> Any:
            def call_and_record(*args: Any, **kwargs: Any) -> Any:
                out = call(*args, **kwargs)
                inputs = next((a for a in (*args, *kwargs.values()) if tf.is_tensor(a)), None)
                outputs = _main_tensor(out)
                if inputs is not None and tf.is_tensor(outputs):
                    traced[id(layer)] = {
                        "_build_shapes_dict": {"input_shape": tuple(inputs.shape.as_list())},
                        "output_shape": tuple(outputs.shape.as_list()),
                    }
                return out

            return call_and_record

        # blocks are invoked through .call and Keras layers through __call__, which calls .call: both end here
        with _instance_attributes({layer: {"call": recorded(layer, layer.call)} for layer in layers}):
            spec = tf.TensorSpec([None] * (3 if self.head is MULTIPLE_CHOICE else 2), tf.int32)
            tf.function(lambda ids: self(ids, training=False)).get_concrete_function(spec)
        with _instance_attributes({layer: traced[id(layer)] for layer in layers if id(layer) in traced}):
            yield


_MISSING = object()


@contextlib.contextmanager
def _instance_attributes(values: dict[Any, dict[str, Any]]) -> Iterator[None]:
    """Set instance attributes (``{object: {name: value}}``) past Keras' attribute tracking, and put the previous
    ones back (or remove the new ones) on exit."""
    saved = [(obj, name, obj.__dict__.get(name, _MISSING)) for obj, attrs in values.items() for name in attrs]
    for obj, attrs in values.items():
        for name, value in attrs.items():
            object.__setattr__(obj, name, value)
    try:
        yield
    finally:
        for obj, name, previous in saved:
            if previous is _MISSING:
                object.__delattr__(obj, name)
            else:
                object.__setattr__(obj, name, previous)
