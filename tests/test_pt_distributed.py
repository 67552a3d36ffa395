"""PyTorch training across processes, run the way a user runs it: ``torchrun --nproc_per_node=2
examples/pt_train.py ...`` (gloo, CPU) against the same script in one process; plus the shared optimizer rules of
roformer_core.optim. Three torchrun launches in all (DDP, resume, FSDP), each a few seconds."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from torch import nn  # noqa: E402

from roformer_conversion import SAMPLE_CHECKPOINT  # noqa: E402
from roformer_core import RoFormerConfig, RoFormerTokenizerFast, model_schema  # noqa: E402
from roformer_core.heads import HEADS  # noqa: E402
from roformer_core.optim import NO_DECAY_KINDS, linear_warmup_decay, no_decay  # noqa: E402
from roformer_core.variants import VARIANT_FIELDS, variant_config  # noqa: E402
from roformer_pt import RoFormerForMaskedLM, RoFormerForSequenceClassification  # noqa: E402
from roformer_pt.training import (  # noqa: E402
    TrainingArguments,
    create_optimizer,
    parameter_groups,
    train,
)

from .ports import free_ports  # noqa: E402
from .tolerances import ATOL  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "pt_train.py"
STEPS, EXAMPLES = 4, 24  # a global batch of 8: 3 steps per epoch, so the run (and the resume at step 2) crosses one
TEXTS = ["今天天气非常好。", "我们去公园散步吧", "The quick brown fox.", "天气很好我们去公园", "今天我们散步", "非常好"]
# the whole recipe, without dropout: one process and two must draw the same masks, which dropout does not
COMMON = ["--task", "mlm", "--train_file", "data.jsonl", "--model", "model", "--max_seq_length", "16"]
COMMON += ["--num_train_steps", str(STEPS), "--save_steps", "2", "--learning_rate", "1e-3", "--warmup_steps", "1"]
TIMEOUT = 120
TINY = RoFormerConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny masked LM without dropout, with tokenizer files, and 24 JSON-lines texts of different lengths with
    labels of 3 classes (the masked LM ignores them)."""
    root = tmp_path_factory.mktemp("pt_train")
    torch.manual_seed(0)
    config = RoFormerConfig.from_pretrained(SAMPLE_CHECKPOINT).copy(
        hidden_size=32, intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    RoFormerForMaskedLM(config).save_pretrained(root / "model")
    RoFormerTokenizerFast.from_pretrained(SAMPLE_CHECKPOINT).save_pretrained(root / "model")
    lines = [
        json.dumps({"text": TEXTS[i % 6] * (1 + i % 3), "label": i % 3}, ensure_ascii=False) for i in range(EXAMPLES)
    ]
    (root / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _torchrun(workspace: Path, args: list[str], log_dir: Path | None = None) -> None:
    """``torchrun --nproc_per_node=2 examples/pt_train.py`` in ``workspace``; the whole process group is killed
    on a timeout."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"]
    command += [f"--master_port={free_ports()[0]}"]
    if log_dir is not None:  # each rank's stdout/stderr in its own file
        command += ["--log_dir", str(log_dir), "--redirects", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [*command, str(SCRIPT), *COMMON, *args],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # torchrun and its workers in one group, to kill them all
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, output[-4000:]


def _run_in_this_process(workspace: Path, args: list[str]) -> list[float]:
    """The same script without torchrun: one process, called through its ``main``."""
    spec = importlib.util.spec_from_file_location("pt_train_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        return module.main([*COMMON, "--no_progress_bar", *args])
    finally:
        os.chdir(cwd)


def _result(directory: Path) -> tuple[list[float], dict[str, np.ndarray]]:
    """The loss history and the weights of a checkpoint directory."""
    losses = json.loads((directory / "trainer_state.json").read_text())["losses"]
    return losses, safetensors_numpy.load_file(directory / "model.safetensors")


def _assert_same_run(got: Path, want: Path, atol: float = ATOL["float32"]) -> None:
    got_losses, got_weights = _result(got)
    want_losses, want_weights = _result(want)
    np.testing.assert_allclose(got_losses, want_losses, rtol=0, atol=atol)
    assert got_weights.keys() == want_weights.keys()
    for name, weight in want_weights.items():
        np.testing.assert_allclose(got_weights[name], weight, rtol=0, atol=atol, err_msg=name)


@pytest.fixture(scope="module")
def single(workspace: Path) -> Path:
    """1 process x 8 examples, 4 steps: the run every distributed one must equal."""
    losses = _run_in_this_process(workspace, ["--output_dir", "single", "--per_device_batch_size", "8"])
    assert len(losses) == STEPS and losses[-1] < losses[0]  # it trains
    return workspace / "single"


@pytest.fixture(scope="module")
def ddp(workspace: Path) -> Path:
    """2 processes x 4 examples with DDP, checkpoints at steps 2 and 4, each rank's output in its own log."""
    _torchrun(workspace, ["--output_dir", "ddp", "--per_device_batch_size", "4"], log_dir=workspace / "ddp_logs")
    return workspace / "ddp"


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_two_processes_of_four_equal_one_process_of_eight(single: Path, ddp: Path, workspace: Path) -> None:
    for step in (2, 4):
        _assert_same_run(ddp / f"checkpoint-{step}", single / f"checkpoint-{step}")
        assert {p.name for p in (ddp / f"checkpoint-{step}").glob("rng_state_*.pt")} == {
            "rng_state_0.pt",
            "rng_state_1.pt",
        }
    # the final checkpoint loads as a model, tokenizer included
    RoFormerTokenizerFast.from_pretrained(ddp / f"checkpoint-{STEPS}")
    RoFormerForMaskedLM.from_pretrained(ddp / f"checkpoint-{STEPS}")
    # the progress bar is rank 0's alone
    logs = {int(p.parent.name): p.read_text() for p in (workspace / "ddp_logs").rglob("stderr.log")}
    assert sorted(logs) == [0, 1]
    assert f"{STEPS}/{STEPS}" in logs[0] and "loss=" in logs[0]
    assert "it/s" not in logs[1] and f"{STEPS}/{STEPS}" not in logs[1]


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_resume_from_step_two_continues_the_same_run(ddp: Path, workspace: Path) -> None:
    resumed = workspace / "resumed"
    shutil.copytree(ddp / "checkpoint-2", resumed / "checkpoint-2")
    _torchrun(workspace, ["--output_dir", "resumed", "--per_device_batch_size", "4", "--resume", "--no_progress_bar"])
    _assert_same_run(resumed / f"checkpoint-{STEPS}", ddp / f"checkpoint-{STEPS}")
    history, _ = _result(resumed / f"checkpoint-{STEPS}")
    assert history[:2] == _result(ddp / "checkpoint-2")[0]  # the losses before the resume, as they were


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_fsdp_with_accumulation_takes_the_same_steps_as_ddp(ddp: Path, workspace: Path) -> None:
    args = ["--output_dir", "fsdp", "--sharding", "fsdp", "--per_device_batch_size", "2"]
    # gradient checkpointing recomputes activations; the numbers stay those of the run without it
    _torchrun(workspace, [*args, "--gradient_accumulation_steps", "2", "--gradient_checkpointing", "--no_progress_bar"])
    for step in (2, 4):
        _assert_same_run(workspace / "fsdp" / f"checkpoint-{step}", ddp / f"checkpoint-{step}")


def test_gradient_accumulation_equals_one_big_batch(single: Path, workspace: Path) -> None:
    args = ["--output_dir", "accumulated", "--per_device_batch_size", "4", "--gradient_accumulation_steps", "2"]
    _run_in_this_process(workspace, args)
    _assert_same_run(workspace / "accumulated" / f"checkpoint-{STEPS}", single / f"checkpoint-{STEPS}")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_close_to_float32(precision: str, single: Path, workspace: Path) -> None:
    output = f"mixed_{precision}"
    args = ["--output_dir", output, "--per_device_batch_size", "8", "--mixed_precision", precision]
    losses = _run_in_this_process(workspace, args)
    want, _ = _result(single / f"checkpoint-{STEPS}")
    # the first loss is the same weights' forward pass in lower precision
    np.testing.assert_allclose(losses[0], want[0], rtol=0, atol=ATOL["bfloat16" if precision == "bf16" else "float16"])
    assert all(np.isfinite(losses)) and len(losses) == STEPS
    _, weights = _result(workspace / output / f"checkpoint-{STEPS}")
    assert all(w.dtype == np.float32 for w in weights.values())  # autocast leaves the parameters in float32


def test_resuming_with_another_batch_layout_says_what_to_pass(single: Path, workspace: Path) -> None:
    with pytest.raises(ValueError, match="same number of processes and per_device_batch_size"):
        _run_in_this_process(workspace, ["--output_dir", "single", "--per_device_batch_size", "4", "--resume"])


def test_classification_task_starts_from_the_loss_of_its_first_batch(workspace: Path) -> None:
    args = ["--task", "classification", "--num_labels", "3", "--output_dir", "classifier"]
    losses = _run_in_this_process(workspace, [*args, "--per_device_batch_size", "8"])
    # the first global batch by hand: the sampler's epoch-0 permutation (seed 0), the script's seeded new head
    first = torch.randperm(EXAMPLES, generator=torch.Generator().manual_seed(0))[:8].tolist()
    tokenizer = RoFormerTokenizerFast.from_pretrained(workspace / "model")
    records = [json.loads(line) for line in (workspace / "data.jsonl").read_text(encoding="utf-8").splitlines()]
    batch = tokenizer(
        [records[i]["text"] for i in first], padding="max_length", max_length=16, truncation=True, return_tensors="pt"
    )
    torch.manual_seed(0)
    model = RoFormerForSequenceClassification.from_pretrained(workspace / "model", num_labels=3).train()
    with torch.no_grad():
        want = model(**batch, labels=torch.tensor([records[i]["label"] for i in first])).loss.item()
    assert losses[0] == pytest.approx(want, abs=ATOL["float32"])
    trained = RoFormerForSequenceClassification.from_pretrained(workspace / "classifier" / f"checkpoint-{STEPS}")
    assert trained.config.num_labels == 3


def test_no_decay_is_exactly_the_biases_and_norms_of_the_schema() -> None:
    for variant in VARIANT_FIELDS:
        config = variant_config(variant, vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
        for head in HEADS:
            for spec in model_schema(config, head):
                assert no_decay(spec.name) == (spec.kind in NO_DECAY_KINDS), (variant, head.name, spec)
    assert no_decay("module.roformer.encoder.layer.0.output.LayerNorm.weight")  # DDP's prefix
    assert not no_decay("roformer.encoder.layer.0.output.dense.weight")


def test_parameter_groups_leave_out_every_bias_and_layer_norm_of_the_module() -> None:
    model = RoFormerForMaskedLM(TINY)
    # independent of the names: by module type, as transformers' Trainer once did
    norm_params = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    expected = {id(p) for name, p in model.named_parameters() if name.endswith("bias")} | norm_params
    decay, plain = parameter_groups(model, weight_decay=0.1)
    assert (decay["weight_decay"], plain["weight_decay"]) == (0.1, 0.0)
    assert {id(p) for p in plain["params"]} == expected
    assert len(decay["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_learning_rate_warms_up_then_decays_linearly(tmp_path: Path) -> None:
    expected = [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]  # transformers' get_linear_schedule_with_warmup(2, 6)
    assert [linear_warmup_decay(step, 6, 2) for step in range(7)] == expected
    model = RoFormerForMaskedLM(TINY)
    args = TrainingArguments(tmp_path, num_train_steps=6, warmup_steps=2, learning_rate=1e-3)
    optimizer, scheduler = create_optimizer(model, args)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(rates, [1e-3 * f for f in expected[:6]])


def test_bad_arguments_say_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        TrainingArguments(tmp_path, num_train_steps=2, mixed_precision="fp8")
    with pytest.raises(ValueError, match="sharding must be one of"):
        TrainingArguments(tmp_path, num_train_steps=2, sharding="zero3")
    with pytest.raises(ValueError, match=r"warmup_steps \(5\) is more than num_train_steps \(2\)"):
        TrainingArguments(tmp_path, num_train_steps=2, warmup_steps=5)
    with pytest.raises(TypeError, match="per_device_batch_size must be an int"):
        TrainingArguments(tmp_path, num_train_steps=2, per_device_batch_size=2.5)
    with pytest.raises(ValueError, match="need num_train_steps > 0"):
        linear_warmup_decay(0, 0)
    model = RoFormerForMaskedLM(TINY)
    data = [{"input_ids": np.arange(1, 9), "labels": np.arange(1, 9)}] * 3
    with pytest.raises(ValueError, match="fewer than per_device_batch_size"):
        train(model, data, TrainingArguments(tmp_path, num_train_steps=1, per_device_batch_size=4))
    model.save_pretrained(tmp_path / "not_a_training_checkpoint")
    with pytest.raises(ValueError, match="is not a training checkpoint"):
        args = TrainingArguments(tmp_path, 1, resume_from_checkpoint=tmp_path / "not_a_training_checkpoint")
        train(model, data, args)
    with pytest.raises(TypeError, match="one of roformer_pt's model classes"):
        train(nn.Linear(2, 2), data, TrainingArguments(tmp_path, num_train_steps=1))
