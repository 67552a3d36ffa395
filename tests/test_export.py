"""``roformer export``: each task's ONNX graph, run in ONNX Runtime, equals the PyTorch model at any batch size and
beyond ``max_position_embeddings``; the TF SavedModel, reloaded by TensorFlow alone, equals the TF model; the
command's errors are one line."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.tolerances import ATOL

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from roformer_conversion.export import TASKS, add_commands, export_onnx, main, output_names  # noqa: E402
from roformer_core import RoFormerConfig  # noqa: E402
from roformer_core.heads import MULTIPLE_CHOICE  # noqa: E402

MAX_POSITIONS = 16
V1 = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 1,  # each layer adds ~2 CPU-s to an export; the masked-LM case has two
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": MAX_POSITIONS,
    "num_labels": 3,
}
V2 = {**V1, "norm_type": "rms_norm", "use_bias": False}
TWO_LAYERS = {**V1, "num_hidden_layers": 2}
POOLER = {**V1, "add_pooling_layer": True, "pooler_activation": "linear"}  # RoFormer-Sim's pooler
SIM = {**POOLER, "unilm": True, "is_decoder": True}  # and its UniLM mask (docs/variants.md)
# (batch, length): a single sequence longer than the stored rotary table, and a padded batch of three
SHAPES = ((1, 2 * MAX_POSITIONS + 8), (3, 9))
CHOICES = 2


def _model(task: str, fields: dict):
    import roformer_pt

    torch.manual_seed(0)
    return getattr(roformer_pt, TASKS[task].class_name)(RoFormerConfig(**fields)).eval()


def _inputs(task: str, batch: int, length: int, seed: int) -> dict[str, np.ndarray]:
    """int64 inputs ``[B, L]`` (``[B, C, L]`` multiple choice) with padding in the last row and both token types."""
    rng = np.random.default_rng(seed)
    shape = (batch, CHOICES, length) if TASKS[task] is MULTIPLE_CHOICE else (batch, length)
    ids = rng.integers(1, V1["vocab_size"], size=shape)
    mask = np.ones(shape, dtype=np.int64)
    mask[-1, ..., length - 3 :] = 0
    types = (np.arange(length) >= length // 2).astype(np.int64) * np.ones(shape, dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# task, config, how it is exported: the command line from a checkpoint directory (over an existing file with
# --force), or export_onnx on a model object
CASES = [
    ("base", SIM, "cli"),
    ("masked-lm", TWO_LAYERS, "function"),
    ("sequence-classification", POOLER, "cli --force"),
    ("multiple-choice", V1, "function"),
    ("token-classification", V2, "cli"),
    ("question-answering", V2, "function"),
]


@pytest.mark.slow  # one dynamo export each (~5 s)
@pytest.mark.parametrize(("task", "fields", "via"), CASES, ids=[c[0] for c in CASES])
def test_onnx_runs_like_pytorch(task: str, fields: dict, via: str, tmp_path: Path, capsys) -> None:
    model = _model(task, fields)
    out = tmp_path / "model.onnx"
    if via == "function":
        model.train()  # exported in eval mode (else dropout would be in the graph), then left as it was
        assert export_onnx(model, out, task) == out
        assert model.training
        assert type(model.roformer.encoder.embed_positions).__name__ == "RoFormerSinusoidalPositionalEmbedding"
        model.eval()
    else:
        model.save_pretrained(tmp_path / "checkpoint")
        argv = [str(tmp_path / "checkpoint"), str(out), "--task", task]
        if via.endswith("--force"):
            out.write_text("an older export")
            argv.append("--force")
        assert main(argv) == 0, capsys.readouterr().err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "model.onnx"]  # no temporary left

    names = output_names(model.config, TASKS[task])
    assert ("pooler_output" in names) == fields.get("add_pooling_layer", False)
    graph = onnx.load(str(out)).graph
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    axes = ["batch", "choice", "sequence"] if TASKS[task] is MULTIPLE_CHOICE else ["batch", "sequence"]
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    for graph_input in graph.input:
        assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in graph_input.type.tensor_type.shape.dim] == axes
    assert [o.name for o in graph.output] == list(names)

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for seed, (batch, length) in enumerate(SHAPES):
        inputs = _inputs(task, batch, length, seed)
        served = dict(zip(names, session.run(None, inputs)))
        with torch.no_grad():
            expected = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        for name in names:
            want = expected[name].numpy()
            assert served[name].shape == want.shape, name
            np.testing.assert_allclose(
                served[name], want, rtol=0, atol=ATOL["onnx"], err_msg=f"{name} {batch}x{length}"
            )


@pytest.fixture(scope="module")
def mlm_checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("mlm")
    _model("masked-lm", V1).save_pretrained(directory)
    return directory


def _error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("roformer export: error: ")
    return lines[0]


def test_cli_unknown_task(mlm_checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert main([str(mlm_checkpoint), str(tmp_path / "m.onnx"), "--task", "fill-mask"]) == 1
    line = _error(capsys)
    assert "unknown task 'fill-mask'" in line
    assert all(task in line for task in TASKS)
    assert not (tmp_path / "m.onnx").exists()


def test_cli_checkpoint_without_the_head(mlm_checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert main([str(mlm_checkpoint), str(tmp_path / "m.onnx"), "--task", "question-answering"]) == 1
    line = _error(capsys)
    assert "has no question-answering head" in line
    assert "RoFormerForMaskedLM" in line and "--task base or masked-lm" in line
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_an_existing_out(mlm_checkpoint: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.onnx"
    out.write_text("keep me")
    for fmt in ("onnx", "saved_model"):
        assert main([str(mlm_checkpoint), str(out), "--task", "masked-lm", "--format", fmt]) == 1
        assert "exists: pass --force" in _error(capsys)
    assert out.read_text() == "keep me"


def test_cli_bad_format_opset_and_checkpoint(tmp_path: Path, mlm_checkpoint: Path, capsys) -> None:
    assert main([str(mlm_checkpoint), str(tmp_path / "m"), "--task", "base", "--format", "tflite"]) == 1
    assert "unknown format 'tflite'" in _error(capsys)
    assert (
        main([str(mlm_checkpoint), str(tmp_path / "m"), "--task", "base", "--format", "saved_model", "--opset", "17"])
        == 1
    )
    assert "--opset applies to --format onnx only" in _error(capsys)
    assert main([str(tmp_path / "missing"), str(tmp_path / "m.onnx"), "--task", "base"]) == 1
    assert "does not exist" in _error(capsys)


def test_cli_help_lists_formats_and_tasks(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(word in text for word in (*TASKS, "onnx", "saved_model", "pooler_output", "--force", "--opset"))


def test_add_commands_registers_export(mlm_checkpoint: Path, tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser(prog="roformer")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export", str(mlm_checkpoint), str(tmp_path / "m.onnx"), "--task", "qa"])
    assert args.func(args) == 1
    assert "unknown task 'qa'" in _error(capsys)


def test_function_rejects_a_model_of_another_task(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"RoFormerForMaskedLM, not a question-answering model.*'masked-lm' or 'base'"):
        export_onnx(_model("masked-lm", V1), tmp_path / "m.onnx", "question-answering")
    with pytest.raises(TypeError, match="checkpoint directory, a hub id or a roformer_pt model"):
        export_onnx(object(), tmp_path / "m.onnx", "base")
    assert list(tmp_path.iterdir()) == []


# Runs in a fresh interpreter that imports TensorFlow only: the SavedModel must need nothing else.
_SERVE_WITH_TF_ALONE = """
    import sys
    import numpy as np
    import tensorflow as tf
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    for source, target in zip(sys.argv[2::2], sys.argv[3::2]):
        outputs = serve(**{k: tf.constant(v) for k, v in np.load(source).items()})
        np.savez(target, **{k: v.numpy() for k, v in outputs.items()})
    assert not [m for m in sys.modules if m.startswith(("roformer", "torch"))], "needs more than TensorFlow"
"""


@pytest.mark.slow  # TensorFlow model, SavedModel export and a TF-only interpreter (~20 s)
def test_saved_model_served_by_tensorflow_alone(tmp_path: Path, capsys) -> None:
    tf_port = pytest.importorskip("roformer_tf")
    task = "sequence-classification"
    checkpoint, out = tmp_path / "checkpoint", tmp_path / "serving"
    _model(task, POOLER).save_pretrained(checkpoint)
    assert main([str(checkpoint), str(out), "--task", task, "--format", "saved_model"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "serving"]

    batches = [_inputs(task, batch, length, seed) for seed, (batch, length) in enumerate(SHAPES)]
    files = []
    for n, inputs in enumerate(batches):
        np.savez(tmp_path / f"in{n}.npz", **inputs)
        files += [str(tmp_path / f"in{n}.npz"), str(tmp_path / f"out{n}.npz")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-c", textwrap.dedent(_SERVE_WITH_TF_ALONE), str(out), *files]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]

    model = tf_port.TFRoFormerForSequenceClassification.from_pretrained(checkpoint)
    for n, inputs in enumerate(batches):
        served = dict(np.load(tmp_path / f"out{n}.npz"))
        expected = model(**inputs, training=False)
        assert sorted(served) == ["logits", "pooler_output"]
        for name, value in served.items():
            np.testing.assert_allclose(value, np.asarray(expected[name]), rtol=0, atol=ATOL["float32"], err_msg=name)
