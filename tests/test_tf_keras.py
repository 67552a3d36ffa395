"""Keras 3 habits on the TF port, each done exactly as a Keras user does it: compiled metrics (with and without a
compiled loss), ``.keras`` files, checkpoint and backup callbacks, ``export``, ``summary`` and XLA fits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
roformer_tf = pytest.importorskip("roformer_tf")

from roformer_core import RoFormerConfig  # noqa: E402
from roformer_core.heads import HEADS  # noqa: E402
from roformer_core.numpy_model import init_params  # noqa: E402

from .cases import BASE_CONFIG  # noqa: E402
from .tolerances import ATOL  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLASS_NAMES = [f"TF{head.class_name}" for head in HEADS]
# one layer: these tests are about Keras' machinery, and eager steps cost time per layer
SMALL = {"num_hidden_layers": 1, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
B, L, C = 6, 5, 3  # batch, length, choices


def _model(cls_name: str, seed: int = 1):
    """A model with seeded weights and no dropout, so that fit's training-mode outputs equal predict's."""
    config = RoFormerConfig(**{**BASE_CONFIG, **SMALL, "is_decoder": cls_name.endswith("CausalLM")})
    head = cls_name.removeprefix("TF")
    return getattr(roformer_tf, cls_name).from_state_dict(config, init_params(config, head, seed=seed, scale=0.2))


def _inputs(cls_name: str) -> dict[str, np.ndarray]:
    shape = (B, C, L) if cls_name.endswith("MultipleChoice") else (B, L)
    return {"input_ids": np.random.default_rng(7).integers(1, BASE_CONFIG["vocab_size"], size=shape)}


def _half_right(predicted: np.ndarray, classes: int) -> np.ndarray:
    """Targets equal to ``predicted`` at even flat positions and wrong at odd ones: an accuracy near 1/2 that an
    unmasked or misaligned metric would not reproduce."""
    flat = predicted.reshape(-1).copy()
    flat[1::2] = (flat[1::2] + 1) % classes
    return flat.reshape(predicted.shape)


def _targets_and_accuracy(cls_name: str, predictions: dict[str, np.ndarray]):
    """Targets built from the model's own predictions (some ignored), and a function giving, from any later
    predictions, the accuracy a Keras user expects: over the scored targets only, per output for QA."""
    if cls_name.endswith("QuestionAnswering"):
        targets = {}
        for arg, name in (("start_positions", "start_logits"), ("end_positions", "end_logits")):
            positions = _half_right(predictions[name].argmax(-1), L)
            positions[0] = L + 3  # outside the sequence: clamped to L and not scored, as in the loss
            targets[arg] = positions

        def accuracy(pred: dict[str, np.ndarray]) -> dict[str, float]:
            return {
                f"{name}_accuracy": float(np.mean(pred[name].argmax(-1)[1:] == targets[arg][1:]))
                for arg, name in (("start_positions", "start_logits"), ("end_positions", "end_logits"))
            }

        return targets, accuracy
    logits = predictions["logits"]
    causal = cls_name.endswith("CausalLM")
    scored = logits[:, :-1] if causal else logits
    labels = _half_right(scored.argmax(-1), logits.shape[-1])
    labels.reshape(-1)[2::5] = -100  # ignored
    if causal:  # labels are the inputs: position t is scored against label t + 1
        labels = np.concatenate([np.full((B, 1), 5), labels], axis=1)

    def accuracy(pred: dict[str, np.ndarray]) -> dict[str, float]:
        predicted = (pred["logits"][:, :-1] if causal else pred["logits"]).argmax(-1)
        y = labels[:, 1:] if causal else labels
        keep = y != -100
        return {"accuracy": float(np.mean(predicted[keep] == y[keep]))}

    return {"labels": labels}, accuracy


HEAD_CASES = [
    "TFRoFormerForSequenceClassification",
    "TFRoFormerForTokenClassification",
    "TFRoFormerForMultipleChoice",
    "TFRoFormerForQuestionAnswering",
    "TFRoFormerForMaskedLM",
    "TFRoFormerForCausalLM",
]


# Every head with its own loss; with a compiled loss the heads whose targets Keras sees transformed (QA's per-output
# dicts, the causal LM's shifted pairs, the masked LM's ignored labels). Steps run eagerly (tracing one costs
# seconds), except the masked LM's last case: there the Keras mask is set on a symbolic tensor in a compiled step.
METRIC_CASES = [(name, False, False) for name in HEAD_CASES] + [
    ("TFRoFormerForQuestionAnswering", True, False),
    ("TFRoFormerForCausalLM", True, False),
    ("TFRoFormerForMaskedLM", True, True),
]


@pytest.mark.parametrize(
    "cls_name, compiled_loss, compiled_step",
    METRIC_CASES,
    ids=[
        f"{n.removeprefix('TFRoFormerFor')}-{'keras' if k else 'own'}_loss{'-graph' if g else ''}"
        for n, k, g in METRIC_CASES
    ],
)
def test_compiled_metrics_equal_accuracy_by_hand(cls_name: str, compiled_step: bool, compiled_loss: bool) -> None:
    model = _model(cls_name)
    x = _inputs(cls_name)
    before = model.predict(x, batch_size=B, verbose=0)
    targets, accuracy = _targets_and_accuracy(cls_name, before)
    qa = cls_name.endswith("QuestionAnswering")
    metrics = {"start_logits": ["accuracy"], "end_logits": ["accuracy"]} if qa else ["accuracy"]
    compile_args = {
        "optimizer": keras.optimizers.Adam(1e-2),
        "metrics": metrics,
        "run_eagerly": not compiled_step,
        "jit_compile": False,
    }
    if compiled_loss:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        # the model's own QA loss is the mean of the start and end losses
        compile_args.update(
            {
                "loss": {"start_logits": loss, "end_logits": loss},
                "loss_weights": {"start_logits": 0.5, "end_logits": 0.5},
            }
            if qa
            else {"loss": loss}
        )
    model.compile(**compile_args)
    # targets as Keras' y or inside the input dict: fit takes one form and evaluate the other
    in_x, as_y = ({**x, **targets},), (x, targets if qa else targets["labels"])
    fit_data, evaluate_data = (as_y, in_x) if compiled_loss else (in_x, as_y)
    # one step on one batch: fit's metrics score the predictions made before the update
    history = model.fit(*fit_data, batch_size=B, epochs=1, verbose=0, shuffle=False).history
    expected = accuracy(before)
    assert all(0.0 < value < 1.0 for value in expected.values())  # a real check: neither all right nor all wrong
    for name, value in expected.items():
        assert history[name][0] == pytest.approx(value, abs=1e-6), name
    after = model.predict(x, batch_size=B, verbose=0)
    results = model.evaluate(*evaluate_data, batch_size=B, verbose=0, return_dict=True)
    for name, value in accuracy(after).items():
        assert results[name] == pytest.approx(value, abs=1e-6), name
    # a compiled loss sees the same scored targets as the model's own loss (ignored ones masked)
    own_loss = float(model({**x, **targets}).loss)
    assert results["loss"] == pytest.approx(own_loss, rel=1e-5)


@pytest.mark.parametrize("cls_name", CLASS_NAMES)
def test_keras_file_round_trip_without_custom_objects(cls_name: str, tmp_path) -> None:
    model = _model(cls_name)
    x = _inputs(cls_name)
    model.save(tmp_path / "x.keras")
    loaded = keras.models.load_model(tmp_path / "x.keras")
    assert type(loaded) is type(model) and loaded.config == model.config
    ours, theirs = model(x), loaded(x)
    for name in model.head.main_outputs:
        np.testing.assert_allclose(theirs[name].numpy(), ours[name].numpy(), atol=ATOL["float32"], rtol=0)


# The fits below that are not about compiled steps run eagerly: tracing a train step costs seconds per model.
def _classification_data() -> tuple[dict[str, np.ndarray], np.ndarray]:
    ids = np.random.default_rng(3).integers(1, BASE_CONFIG["vocab_size"], size=(16, L))
    return {"input_ids": ids}, ids[:, 0] % 3


def _weights(model) -> list[np.ndarray]:
    return [w.numpy() for w in model.weights]


def test_keras_file_keeps_the_compiled_optimizer_state(tmp_path) -> None:
    x, y = _classification_data()
    model = _model("TFRoFormerForSequenceClassification")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"], run_eagerly=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "x.keras")
    loaded = keras.models.load_model(tmp_path / "x.keras")
    assert int(loaded.optimizer.iterations) == 2
    for ours, theirs in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(theirs.numpy(), ours.numpy())
    # training goes on from the same state: one more epoch of each gives the same weights
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for ours, theirs in zip(_weights(model), _weights(loaded)):
        np.testing.assert_allclose(theirs, ours, atol=1e-6, rtol=0)


def test_model_checkpoint_writes_a_loadable_keras_file(tmp_path) -> None:
    x, y = _classification_data()
    model = _model("TFRoFormerForSequenceClassification")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "ckpt.keras"))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[checkpoint])
    loaded = keras.models.load_model(tmp_path / "ckpt.keras")
    for ours, theirs in zip(_weights(model), _weights(loaded)):
        np.testing.assert_array_equal(theirs, ours)


class _StopAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path) -> None:
    x, y = _classification_data()

    def fit(model, callbacks):
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
        return model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False, callbacks=callbacks)

    uninterrupted = _model("TFRoFormerForSequenceClassification")
    fit(uninterrupted, [])
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(_model("TFRoFormerForSequenceClassification"), [backup, _StopAtEpoch(2)])
    # a new process would build a new model (other weights), compile and fit again with the same callback
    resumed = _model("TFRoFormerForSequenceClassification", seed=2)
    history = fit(resumed, [keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    assert history.epoch == [2]
    assert int(resumed.optimizer.iterations) == 3
    for ours, theirs in zip(_weights(uninterrupted), _weights(resumed)):
        np.testing.assert_allclose(theirs, ours, atol=1e-6, rtol=0)


def test_export_after_fit_reloads_with_tensorflow_only(tmp_path) -> None:
    x, y = _classification_data()
    model = _model("TFRoFormerForSequenceClassification")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.export(tmp_path / "exported", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "exported"))
    ids = tf.constant(x["input_ids"][:3], tf.int64)
    mask = np.ones_like(ids)
    mask[1, -2:] = 0
    batch = {"input_ids": ids, "attention_mask": tf.constant(mask), "token_type_ids": tf.zeros_like(ids)}
    expected = model(**batch).logits.numpy()
    np.testing.assert_allclose(reloaded.serve(**batch)["logits"].numpy(), expected, atol=ATOL["float32"], rtol=0)
    served = reloaded.signatures["serving_default"](**batch)["logits"].numpy()
    np.testing.assert_allclose(served, expected, atol=ATOL["float32"], rtol=0)


# one of each layout: the bare model, an LM head block, a classification head block, Keras layers on sequences
@pytest.mark.parametrize(
    "cls_name, rows",
    [
        ("TFRoFormerModel", {"embeddings": "(None, None, 32)", "encoder": "(None, None, 32)"}),
        ("TFRoFormerForMaskedLM", {"roformer": "(None, None, 32)", "cls": "(None, None, 99)"}),
        ("TFRoFormerForSequenceClassification", {"roformer": "(None, None, 32)", "classifier": "(None, 3)"}),
        (
            "TFRoFormerForTokenClassification",
            {"roformer": "(None, None, 32)", "dropout": "(None, None, 32)", "classifier": "(None, None, 3)"},
        ),
    ],
)
def test_summary_shows_output_shapes(cls_name: str, rows: dict[str, str]) -> None:
    model = _model(cls_name)
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), expand_nested=True)
    text = "\n".join(lines)
    assert "?" not in text, text
    shown = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ ") and "(" in line}
    for name, shape in rows.items():
        row = next(line for layer, line in shown.items() if layer.startswith(name))
        assert shape in row, text
    # the trace leaves nothing behind: the model still runs and saves as before
    assert not any("output_shape" in vars(layer) for layer in model._flatten_layers())
    model(_inputs(cls_name))


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_xla_fit_logs_no_ignored_asserts() -> None:
    code = """
        import numpy as np, keras, tensorflow as tf
        from roformer_tf import RoFormerConfig, TFRoFormerForSequenceClassification
        from tests.cases import BASE_CONFIG
        # a control: an assert of our own under XLA, whose warning shows that the log reaches stderr
        def control(v):
            with tf.control_dependencies([tf.debugging.assert_positive(v, name="control_assert")]):
                return tf.identity(v)
        tf.function(control, jit_compile=True)(tf.ones(2))
        ids = np.random.default_rng(0).integers(1, 99, size=(8, 6))
        model = TFRoFormerForSequenceClassification(RoFormerConfig(**{**BASE_CONFIG, "num_hidden_layers": 1}))
        model.compile(optimizer="sgd", jit_compile=True)
        model.fit({"input_ids": ids, "attention_mask": np.ones_like(ids)}, ids[:, 0] % 3, batch_size=8, verbose=0)
        print("jit", model.jit_compile)
        """
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # so that the warnings would show
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jit True" in result.stdout
    ignored = [line for line in result.stderr.splitlines() if "Ignoring Assert" in line]
    assert ignored and all("control_assert" in line for line in ignored), "\n".join(ignored)
