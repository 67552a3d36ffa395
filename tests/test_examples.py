"""The examples run the way a user runs them: ``python examples/...`` in a subprocess, in a scratch directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--max_seq_length",
    "16",
    "--per_device_batch_size",
    "2",
    "--hidden_size",
    "16",
    "--num_hidden_layers",
    "1",
    "--num_attention_heads",
    "2",
    "--intermediate_size",
    "32",
]


def _run_example(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "examples" / "flax_pmap_mlm.py"), *args, *TINY]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_flax_pmap_mlm_clamps_warmup_resumes_history_and_writes_only_its_output_dir(tmp_path: Path) -> None:
    pytest.importorskip("flax")
    pytest.importorskip("optax")
    run, home, scratch = tmp_path / "run", tmp_path / "home", tmp_path / "tmp"
    for folder in (run, home, scratch):
        folder.mkdir()
    (run / "corpus.txt").write_text(
        "今天天气非常好。我们去公园散步吧。\nThe quick brown fox jumps over the lazy dog.\n" * 10
    )
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",  # two devices: the pmap path
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "PYTHONPATH": str(REPO),
    }
    common = ["--train_file", "corpus.txt", "--output_dir", "out"]

    first = _run_example([*common, "--num_train_steps", "6", "--save_steps", "3"], run, env)
    assert "warmup" not in first.stderr  # the default warmup (10% of the steps) fits any run length
    history = json.loads((run / "out" / "trainer_state.json").read_text())
    assert history["step"] == 6 and len(history["losses"]) == 6

    resumed = _run_example([*common, "--num_train_steps", "20", "--warmup_steps", "100", "--resume"], run, env)
    assert "--warmup_steps 100 is more than --num_train_steps 20: warming up over all 20 steps" in resumed.stderr
    state = json.loads((run / "out" / "trainer_state.json").read_text())
    assert state["step"] == 20 and len(state["losses"]) == 20
    assert state["losses"][:6] == history["losses"]  # the history before the resume, then the steps after it

    assert sorted(p.name for p in run.iterdir()) == ["corpus.txt", "out"]
    assert list(home.iterdir()) == [] and list(scratch.iterdir()) == []
    assert {p.name for p in (run / "out").iterdir()} >= {"config.json", "model.safetensors", "train_state.msgpack"}
