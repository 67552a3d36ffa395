"""Keras multi-worker training as a cluster runs it: one ``python examples/tf_multiworker.py`` per worker, each with
its ``TF_CONFIG`` (here two workers on 127.0.0.1), against the same script in one process on the whole global batch.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .ports import free_ports

tf = pytest.importorskip("tensorflow")

from roformer_core.safetensors_io import read_safetensors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tf_multiworker.py"
# the example's synthetic task has 64 examples: 4 steps of 16 per epoch, so step 6 is the middle of the second epoch
EPOCHS, GLOBAL_BATCH, EXIT_AT_STEP = 3, 16, 6
TIMEOUT_S = 150  # per launch of both workers (each alone needs ~20 CPU-seconds, mostly importing and tracing)


def _launch_workers(args: list[str], cwd: Path, run: str, extra: dict[int, list[str]] | None = None) -> list:
    """Both workers of a fresh two-worker cluster, each single-threaded, output to ``cwd/<run>-worker-<i>.log``."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "OMP_NUM_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1",
            "TF_NUM_INTRAOP_THREADS": "1",
            "PYTHONPATH": str(ROOT),
        }
        log = open(cwd / f"{run}-worker-{index}.log", "w")  # noqa: SIM115 -- the child writes it; closed with the child
        command = [sys.executable, str(EXAMPLE), *args, *(extra or {}).get(index, [])]
        procs.append(subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return procs


def _logs(cwd: Path, run: str) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(cwd.glob(f"{run}-worker-*.log")))


def _kill(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _epoch_losses(output: Path) -> list[tuple[int, float]]:
    with open(output / "history.csv", newline="") as f:
        return [(int(row["epoch"]), float(row["loss"])) for row in csv.DictReader(f)]


def test_adamw_decays_every_parameter_but_biases_and_norms_by_the_core_rule() -> None:
    import keras

    from roformer_core.optim import no_decay
    from roformer_core.schema import model_schema
    from roformer_tf import RoFormerConfig, TFRoFormerForMaskedLM
    from roformer_tf.distributed import no_decay_variables

    config = RoFormerConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
    )
    model = TFRoFormerForMaskedLM(config)
    optimizer = keras.optimizers.AdamW(1e-3, weight_decay=0.01)
    optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    optimizer.build(model.trainable_variables)
    # Keras' own variable names, independent of our canonical names: only matrices and embedding tables decay
    decayed = [v.name for v in model.trainable_variables if optimizer._use_weight_decay(v)]
    kept = [v.name for v in model.trainable_variables if not optimizer._use_weight_decay(v)]
    assert set(decayed) == {"kernel", "embeddings"}
    assert set(kept) == {"bias", "gamma", "beta"}
    assert len(kept) == sum(no_decay(spec.name) for spec in model_schema(config, model.head) if spec.stored)


@pytest.mark.slow  # four TensorFlow processes: CI runs it, -m 'not slow' skips it
def test_two_workers_killed_and_restarted_train_like_one_process_on_the_global_batch(tmp_path: Path) -> None:
    args = ["--epochs", str(EPOCHS), "--global_batch_size", str(GLOBAL_BATCH)]
    command = [*args, "--backup_dir", "backup", "--output_dir", "out"]

    # worker 1 dies abruptly in the middle of epoch 2; worker 0, blocked in the next step's all-reduce, is killed
    procs = _launch_workers(command, tmp_path, "first", {1: ["--exit_at_step", str(EXIT_AT_STEP)]})
    try:
        assert procs[1].wait(timeout=TIMEOUT_S) == 3, _logs(tmp_path, "first")
    finally:
        _kill(procs)
    for worker in (0, 1):
        metadata = json.loads((tmp_path / "backup" / f"worker-{worker}" / "training_metadata.json").read_text())
        assert metadata["epoch"] == 1, metadata  # each worker backed up the end of epoch 1
    assert not (tmp_path / "out" / "model.safetensors").exists()

    # both restarted with the same command, on a new cluster
    procs = _launch_workers(command, tmp_path, "restart")
    try:
        codes = [proc.wait(timeout=TIMEOUT_S) for proc in procs]
    finally:
        _kill(procs)
    assert codes == [0, 0], _logs(tmp_path, "restart")

    # the reference: the same script in this process, no strategy, one optimizer step per global batch
    spec = importlib.util.spec_from_file_location("tf_multiworker", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    single = tmp_path / "single"
    example.train(example.parse_args([*args, "--output_dir", str(single)]), tf.distribute.get_strategy())

    expected, got = _epoch_losses(single), _epoch_losses(tmp_path / "out")
    assert [epoch for epoch, _ in got] == [0, 1, 2]  # epoch 0 logged by the first run, 1 and 2 after the restart
    np.testing.assert_allclose([loss for _, loss in got], [loss for _, loss in expected], rtol=1e-5)
    assert expected[-1][1] < expected[0][1]  # it learns
    want, have = (
        read_safetensors(single / "model.safetensors"),
        read_safetensors(tmp_path / "out" / "model.safetensors"),
    )
    assert sorted(have) == sorted(want)
    for name in want:
        np.testing.assert_allclose(have[name], want[name], atol=2e-6, err_msg=name)
