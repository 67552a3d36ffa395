"""``roformer verify`` run the way a user runs it: the console script, and ``main([...])`` with captured output."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from roformer_conversion import SAMPLE_CHECKPOINT, convert_checkpoint
from roformer_conversion.cli import main
from roformer_conversion.verify import TIMED_RUNS, WARMUP_RUNS, median_seconds
from roformer_core import RoFormerConfig, numpy_model
from roformer_core.checkpoint import save_checkpoint

ROFORMER = Path(sys.executable).parent / "roformer"


def _verify(args: list[str], capsys) -> tuple[int, dict[str, str], str]:
    """Exit status, the table's lines by their first word, and the whole output."""
    status = main(["verify", *args])
    out = capsys.readouterr().out
    return status, {line.split()[0].rstrip(":"): line for line in out.splitlines() if line.strip()}, out


@pytest.mark.parametrize(("frameworks", "named"), [("jax", "'jax'"), ("pt,jax,mx", "'jax', 'mx'"), ("pt,", "''")])
def test_unknown_framework_is_a_one_line_usage_error(frameworks: str, named: str) -> None:
    start = time.perf_counter()
    result = subprocess.run(
        [str(ROFORMER), "verify", "--frameworks", frameworks], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"roformer verify: error: unknown framework {named} in --frameworks: choose from pt,tf,flax"
    ]
    assert time.perf_counter() - start < 30  # nothing was loaded or run


def test_table_names_checkpoint_format_new_heads_and_skips(capsys) -> None:
    status, lines, out = _verify(["--frameworks", "pt"], capsys)
    assert status == 0 and "OK: every framework matches within 1e-5" in out
    assert lines["checkpoint"] == f"checkpoint: {SAMPLE_CHECKPOINT} (loaded model.safetensors)"
    assert lines["causal_lm"].split(None, 1)[1] == "skipped: config.is_decoder is false"
    # the sample is a masked-LM checkpoint: the LM head is its own, every classifier is drawn afresh
    assert "new head weights" not in lines["masked_lm"] and "new head weights" not in lines["model"]
    assert lines["sequence_classification"].endswith("new head weights (4 tensors not in the checkpoint)")
    for head in ("multiple_choice", "token_classification", "question_answering"):
        assert lines[head].endswith("new head weights (2 tensors not in the checkpoint)")
    assert f"median forward time of {TIMED_RUNS} runs after {WARMUP_RUNS} warm-up runs" in out


def test_table_names_the_format_it_read(tmp_path: Path, capsys) -> None:
    convert_checkpoint(SAMPLE_CHECKPOINT, tmp_path / "tf", to="tf", progress=False)
    status, lines, _ = _verify([str(tmp_path / "tf"), "--frameworks", "pt"], capsys)
    assert status == 0
    assert lines["checkpoint"] == f"checkpoint: {tmp_path / 'tf'} (loaded tf_model.h5)"


def test_decoder_checkpoint_runs_causal_lm_and_says_why_others_are_skipped(tmp_path: Path, capsys) -> None:
    config = RoFormerConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, is_decoder=True
    )
    save_checkpoint(tmp_path, config, numpy_model.init_params(config, "causal_lm", seed=3))
    status, lines, _ = _verify([str(tmp_path), "--frameworks", "pt"], capsys)
    assert status == 0
    assert lines["checkpoint"].endswith("(loaded model.safetensors)")
    assert "skipped" not in lines["causal_lm"] and "new head weights" not in lines["causal_lm"]
    assert lines["masked_lm"].split(None, 1)[1].startswith("skipped: config.is_decoder is true")


def test_timings_exclude_warm_up_and_take_the_median() -> None:
    calls = []

    def call() -> None:
        calls.append(None)
        time.sleep(0.2 if len(calls) == 1 else 0.0)  # a cold first run (compilation, allocation)

    assert median_seconds(call) < 0.1
    assert len(calls) == WARMUP_RUNS + TIMED_RUNS


def _loaders() -> list:
    """Every ``from_pretrained`` a user points at a checkpoint directory, by name (frameworks imported lazily)."""

    def model(module: str, prefix: str):
        def load(path: Path):
            pytest.importorskip({"roformer_pt": "torch", "roformer_tf": "tensorflow", "roformer_flax": "flax"}[module])
            return getattr(__import__(module), f"{prefix}RoFormerForMaskedLM").from_pretrained(path)

        return load

    def core(name: str):
        return lambda path: getattr(__import__("roformer_core"), name).from_pretrained(path)

    loaders = {
        "pt": model("roformer_pt", ""),
        "tf": model("roformer_tf", "TF"),
        "flax": model("roformer_flax", "Flax"),
        "config": core("RoFormerConfig"),
        "tokenizer": core("RoFormerTokenizer"),
        "tokenizer_fast": core("RoFormerTokenizerFast"),
    }
    return [pytest.param(load, id=name) for name, load in loaders.items()]


@pytest.mark.parametrize("load", _loaders())
@pytest.mark.parametrize("file_name", ["model.safetensors", "vocab.txt"])
def test_a_file_instead_of_its_directory_gets_one_message_everywhere(load, file_name: str) -> None:
    path = SAMPLE_CHECKPOINT / file_name
    message = (
        f"from_pretrained expects a checkpoint directory, but {path} is a file: pass the directory that holds it "
        f"({SAMPLE_CHECKPOINT})"
    )
    with pytest.raises(NotADirectoryError) as caught:
        load(path)
    assert str(caught.value) == message


def test_roformer_runs_the_task_and_export_commands(tmp_path: Path, capsys) -> None:
    """`roformer fill-mask`, `roformer similarity` and `roformer export` go through the one `roformer` command,
    with results equal to the Python pipeline and a one-line error for a bad model."""
    import json

    from roformer_tasks import pipeline

    text = "今天[MASK]气非常好。"
    assert main(["fill-mask", str(SAMPLE_CHECKPOINT), text, "--top-k", "2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = pipeline("fill-mask", model=SAMPLE_CHECKPOINT)(text, top_k=2)
    assert [r["token_str"] for r in printed] == [r["token_str"] for r in expected]
    assert [r["score"] for r in printed] == pytest.approx([r["score"] for r in expected], abs=1e-6)

    assert main(["fill-mask", str(tmp_path / "missing"), text]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "missing" in error and "Traceback" not in error

    texts = ["今天天气不错", "今天天气很好", "我们去公园散步吧"]
    assert main(["similarity", str(SAMPLE_CHECKPOINT), *texts, "--json"]) == 0  # no pooler: mean pooling
    matrix = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(matrix, pipeline("sentence-similarity", model=SAMPLE_CHECKPOINT, pooling="mean")(texts))

    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert "saved_model" in usage and "question-answering" in usage
