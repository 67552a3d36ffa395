"""The reference's TF (tf_model.h5) and Flax (flax_model.msgpack) layouts: read what it writes, write what it reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roformer_core import RoFormerConfig, get_head, read_weights_file
from roformer_core.formats import write_flax_msgpack, write_tf_h5
from roformer_core.schema import ROTARY_TABLE, model_schema, untie

from .test_models import case_setup
from .tolerances import ATOL

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def run_reference(framework: str, head: str, checkpoint: Path, inputs: dict, tmp: Path, **options) -> dict:
    """Outputs of the reference ``framework`` class for ``head`` loaded from ``checkpoint`` (in a subprocess)."""
    np.savez(tmp / "inputs.npz", **inputs)
    cmd = [sys.executable, "-m", "tests.reference_worker", framework, get_head(head).class_name, str(checkpoint)]
    cmd += [str(tmp / "inputs.npz"), str(tmp / "out.npz")]
    if options.get("save"):
        cmd += ["--save", str(options["save"])]
    if options.get("from_pt"):
        cmd.append("--from-pt")
    if options.get("also"):
        cmd += ["--also", str(options["also"]), str(tmp / "also.npz")]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(np.load(tmp / "out.npz"))
    return (out, dict(np.load(tmp / "also.npz"))) if options.get("also") else out


def write_reference_pt(directory: Path, config: RoFormerConfig, head: str, state: dict) -> None:
    """A reference-style PyTorch checkpoint (pytorch_model.bin, every key), readable by the reference's TF/Flax."""
    directory.mkdir(parents=True, exist_ok=True)
    full = untie(model_schema(config, head), state)
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in full.items()}, directory / "pytorch_model.bin")
    config.save_pretrained(directory)


LAYOUTS = [
    pytest.param("tf", "embedding_project_rotary_value", "masked_lm", id="tf-masked_lm-embedding_project"),
    pytest.param("tf", "basic", "question_answering", id="tf-question_answering"),
    pytest.param("flax", "basic", "masked_lm", id="flax-masked_lm"),
    pytest.param("flax", "basic", "sequence_classification", id="flax-sequence_classification"),
]


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
@pytest.mark.parametrize("framework, case_name, head", LAYOUTS)
def test_reference_native_layout_round_trip(framework: str, case_name: str, head: str, tmp_path) -> None:
    config, state, inputs, expected = case_setup(case_name, head)
    get_head(head).adapt_config(config)  # QA: num_labels = 2, as every QA class sets it
    inputs = {k: v for k, v in inputs.items() if k not in get_head(head).label_args}
    schema = model_schema(config, head)
    key = "logits" if "logits" in expected else "start_logits"

    # 1. the reference converts our weights to its native file; we read that file back exactly
    # 2. we write the native file; the reference loads it and computes the same outputs (same subprocess)
    write_reference_pt(tmp_path / "pt", config, head, state)
    name = "tf_model.h5" if framework == "tf" else "flax_model.msgpack"
    ours = tmp_path / "ours"
    ours.mkdir()
    config.save_pretrained(ours)
    if framework == "tf":
        write_tf_h5(ours / name, schema, get_head(head), state)
    else:
        write_flax_msgpack(ours / name, schema, state)
    native = tmp_path / "native"
    out, out_ours = run_reference(
        framework, head, tmp_path / "pt", inputs, tmp_path, save=native, from_pt=True, also=ours
    )
    np.testing.assert_allclose(out[key], expected[key], atol=ATOL["float32"])
    read = read_weights_file(native / name)
    for spec in schema:
        if spec.stored and spec.kind != ROTARY_TABLE:
            np.testing.assert_array_equal(read[spec.name], state[spec.name], err_msg=spec.name)
    np.testing.assert_allclose(out_ours[key], expected[key], atol=ATOL["float32"])
