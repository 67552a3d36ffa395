"""Multi-process JAX training: two processes x four CPU devices train as one device would on the global batch.

The launch runs ``examples/jax_multiprocess.py`` the way a user runs it on two hosts: two processes joined by
``jax.distributed`` (coordinator on 127.0.0.1, gloo CPU collectives), each reading only its half of every batch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .ports import free_ports

pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "jax_multiprocess.py"
NUM_PROCESSES, LOCAL_DEVICES, GLOBAL_BATCH, NUM_STEPS = 2, 4, 16, 3
TIMEOUT_S = 150
# 8 devices x 2 examples vs 1 device x 16: only the order of float32 sums differs (docs/distributed-jax.md)
ATOL = 1e-5


def _example():
    spec = importlib.util.spec_from_file_location("jax_multiprocess", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_device_run(example, data: Path) -> tuple[list[float], list[np.ndarray]]:
    """The reference: the plain jitted step on one device, fed the whole global batch of every step."""
    import jax

    from roformer_flax import training

    model, tx, schedule = example.build()
    state = training.TrainState.create(model.params, tx, seed=0)
    step = jax.jit(training.make_train_step(model, learning_rate_fn=schedule))
    losses, params = [], [example.flat(jax.device_get(state.params))]
    for index in range(NUM_STEPS):
        batch, _ = example.read_local_rows(data, index, process_id=0, num_processes=1)
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
        params.append(example.flat(jax.device_get(state.params)))
    return losses, params


def test_initialize_rejects_a_process_id_outside_the_run() -> None:
    from roformer_flax import distributed

    with pytest.raises(ValueError, match=r"process_id must be in \[0, 2\)"):
        distributed.initialize("127.0.0.1:1", num_processes=2, process_id=2)


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_two_processes_pmap_fsdp_and_orbax_resume_into_data_parallel_equal_one_device(tmp_path: Path) -> None:
    """pmap, jit + FSDP and (resumed from FSDP's Orbax checkpoint) jit data parallel == one device, global batch.

    One launch of two processes runs, in order: 3 ``pmap`` steps; 3 FSDP steps (parameters and Adam moments split
    over the 8 devices), saving an Orbax checkpoint at step 2; then the data-parallel ``jit`` layout (replicated
    parameters) resumes from that checkpoint and runs step 3. Every loss and the final parameters of each equal
    the one-device run within 1e-5.
    """
    example = _example()
    data, out, checkpoints = tmp_path / "data", tmp_path / "out", tmp_path / "ckpt"
    example.make_data(data, NUM_STEPS, GLOBAL_BATCH, length=12)
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={LOCAL_DEVICES}",
    }
    common = ["--coordinator", f"127.0.0.1:{free_ports()[0]}", "--num_processes", str(NUM_PROCESSES)]
    common += ["--data", str(data), "--mode", "pmap", "--mode", "fsdp", "--mode", "dp", "--resume"]
    common += ["--num_steps", str(NUM_STEPS), "--save_every", "2", "--checkpoint_dir", str(checkpoints)]
    common += ["--output", str(out)]
    logs = [tmp_path / f"process{i}.log" for i in range(NUM_PROCESSES)]
    processes = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        for i, log in enumerate(logs):
            with log.open("w") as stream:
                command = [sys.executable, str(SCRIPT), *common, "--process_id", str(i)]
                processes.append(subprocess.Popen(command, cwd=tmp_path, env=env, stdout=stream, stderr=stream))
        losses, params = _one_device_run(example, data)  # meanwhile, in this process
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1.0))  # TimeoutExpired past the deadline
    finally:
        for process in processes:  # a process left waiting for its peer must not outlive the test
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, log in zip(processes, logs):
        assert process.returncode == 0, log.read_text()[-4000:]

    assert np.max(np.abs(params[-1] - params[0])) > 1e-4  # the steps did move the parameters
    for mode, first_step in [("pmap", 0), ("fsdp", 0), ("dp", 2)]:
        result = np.load(out / f"{mode}.npz")
        assert int(result["start"]) == first_step, mode
        np.testing.assert_allclose(result["losses"], losses[first_step:], atol=ATOL, rtol=0, err_msg=mode)
        np.testing.assert_allclose(result["params"], params[-1], atol=ATOL, rtol=0, err_msg=mode)

    # Orbax wrote the step-2 checkpoint only (save_every 2 of 3 steps); every process wrote its own shards
    assert sorted(p.name for p in checkpoints.iterdir()) == ["2"]
    vocab, hidden = example.MODEL["vocab_size"], example.MODEL["hidden_size"]
    per_process = GLOBAL_BATCH // NUM_PROCESSES
    for i in range(NUM_PROCESSES):
        report = json.loads((out / f"process{i}.json").read_text())
        assert (report["local_devices"], report["global_devices"]) == (LOCAL_DEVICES, LOCAL_DEVICES * NUM_PROCESSES)
        rows = [i * per_process, (i + 1) * per_process]
        assert report["fsdp"]["rows"] == [rows] * NUM_STEPS and report["dp"]["rows"] == [rows]  # its shard only
        assert report["fsdp"]["embedding_shard"] == [vocab // (LOCAL_DEVICES * NUM_PROCESSES), hidden]
        assert report["dp"]["embedding_shard"] == [vocab, hidden]
