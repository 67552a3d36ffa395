"""roformer-convert and roformer verify: formats, chains, original checkpoints, errors, atomicity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roformer_conversion import ConversionError, convert_checkpoint
from roformer_conversion.cli import convert_main, main
from roformer_conversion.original import original_to_canonical
from roformer_core import RoFormerConfig, read_weights_file, save_checkpoint
from roformer_core.numpy_model import forward
from roformer_core.schema import ROTARY_TABLE, model_schema

from .test_models import assert_outputs_match, case_setup
from .tolerances import ATOL

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkpoint(tmp_path) -> tuple[Path, RoFormerConfig, dict]:
    config, state, _, _ = case_setup("embedding_project_rotary_value", "masked_lm")
    src = tmp_path / "src"
    save_checkpoint(src, config, state)
    (src / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    return src, config, state


def stored(path: Path) -> dict[str, np.ndarray]:
    return {k: v for k, v in read_weights_file(path).items() if not k.endswith("embed_positions.weight")}


def test_chain_pt_tf_flax_pt_is_bit_exact(checkpoint, tmp_path) -> None:
    src, config, state = checkpoint
    convert_checkpoint(src, tmp_path / "tf", to="tf")
    convert_checkpoint(tmp_path / "tf", tmp_path / "flax", to="flax")
    convert_checkpoint(tmp_path / "flax", tmp_path / "pt", to="pt")
    assert (tmp_path / "tf" / "tf_model.h5").is_file() and (tmp_path / "flax" / "flax_model.msgpack").is_file()
    assert (tmp_path / "pt" / "vocab.txt").read_text() == "[PAD]\n[UNK]\n"  # tokenizer files travel along
    before, after = stored(src / "model.safetensors"), stored(tmp_path / "pt" / "model.safetensors")
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert RoFormerConfig.from_pretrained(tmp_path / "pt").embedding_size == config.embedding_size


@pytest.mark.parametrize(
    "to, file_name", [("pt", "model.safetensors"), ("tf", "tf_model.h5"), ("flax", "flax_model.msgpack")]
)
def test_report_and_progress_count_what_is_written(checkpoint, tmp_path, monkeypatch, to: str, file_name: str) -> None:
    import roformer_conversion.convert as convert

    seen: list[str] = []

    class Counting:
        def __init__(self, total: int, description: str, enabled: bool) -> None:
            self.total = total

        def __call__(self, name: str) -> None:
            seen.append(name)

        def close(self) -> None:
            pass

    bars: list[Counting] = []
    monkeypatch.setattr(convert, "_progress_bar", lambda *args, **kw: bars.append(Counting(*args, **kw)) or bars[-1])
    report = convert_checkpoint(checkpoint[0], tmp_path / to, to=to, progress=True)
    written = read_weights_file(tmp_path / to / file_name)
    assert report.tensors == len(written) == bars[0].total == len(seen) == len(set(seen))
    assert set(seen) == set(written)


@pytest.mark.parametrize("dtype, numpy_dtype", [("float16", np.float16), ("bfloat16", None)])
def test_dtype_cast(checkpoint, tmp_path, dtype: str, numpy_dtype) -> None:
    src, _, state = checkpoint
    convert_checkpoint(src, tmp_path / "out", to="pt", dtype=dtype)
    header_len = int.from_bytes((tmp_path / "out" / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((tmp_path / "out" / "model.safetensors").read_bytes()[8 : 8 + header_len])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"F16" if dtype == "float16" else "BF16"}
    got = read_weights_file(tmp_path / "out" / "model.safetensors")
    name = "roformer.encoder.layer.0.attention.self.query.weight"
    if numpy_dtype is not None:
        np.testing.assert_array_equal(got[name], state[name].astype(numpy_dtype))
    else:
        np.testing.assert_allclose(got[name], state[name], rtol=2**-8)  # bfloat16 keeps 8 significant bits


def test_converted_bfloat16_loads_in_the_reference(checkpoint, tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    src, _, _ = checkpoint
    convert_checkpoint(src, tmp_path / "out", to="pt", dtype="bfloat16")
    model = transformers.RoFormerForMaskedLM.from_pretrained(tmp_path / "out", torch_dtype="auto")
    assert str(model.dtype) == "torch.bfloat16"


def test_sharded_and_pytorch_bin_outputs_load_everywhere(checkpoint, tmp_path) -> None:
    src, config, state = checkpoint
    assert convert_main([str(src), str(tmp_path / "sharded"), "--to", "pt", "--max-shard-size", "20KB", "--quiet"]) == 0
    shards = sorted(p.name for p in (tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(shards) > 2 and (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    convert_checkpoint(src, tmp_path / "bin", to="pt", pytorch_bin=True)
    for out in ("sharded", "bin"):
        got = stored(tmp_path / out / ("model.safetensors.index.json" if out == "sharded" else "pytorch_model.bin"))
        for name, value in stored(src / "model.safetensors").items():
            np.testing.assert_array_equal(got[name], value, err_msg=f"{out}: {name}")
    transformers = pytest.importorskip("transformers")
    for out in ("sharded", "bin"):
        _, info = transformers.RoFormerForMaskedLM.from_pretrained(tmp_path / out, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    with pytest.raises(ConversionError, match="apply to --to pt only"):
        convert_checkpoint(src, tmp_path / "x", to="tf", pytorch_bin=True)


# ---- original (bert4keras) checkpoints ----------------------------------------------------------------------


def write_original_checkpoint(directory: Path, config: RoFormerConfig, state: dict) -> None:
    """Write a TF1 checkpoint with the original variable names (as ZhuiyiTechnology's releases have them)."""
    tf = pytest.importorskip("tensorflow")
    names, tensors = [], []
    for spec in model_schema(config, "masked_lm"):
        if not spec.stored or spec.kind == ROTARY_TABLE:
            continue
        original = spec.name.replace("roformer.", "bert/", 1).replace(
            "embeddings_project", "encoder/embedding_hidden_mapping_in"
        )
        original = original.replace(".layer.", "/layer_").replace(".", "/")
        original = original.replace("LayerNorm/weight", "LayerNorm/gamma").replace("LayerNorm/bias", "LayerNorm/beta")
        original = original.replace("cls/predictions/bias", "cls/predictions/output_bias")
        if original.endswith("_embeddings/weight"):
            original = original[: -len("/weight")]
        array = state[spec.name]
        if spec.kind == "linear":
            original, array = original.replace("/weight", "/kernel"), array.T
        assert original_to_canonical(original) == spec.name, original
        names.append(original)
        tensors.append(tf.constant(array))
    D = config.hidden_size
    extras = {
        "bert/pooler/dense/kernel": np.ones((D, D), np.float32),
        "bert/pooler/dense/bias": np.ones(D, np.float32),
        "cls/seq_relationship/output_weights": np.ones((2, D), np.float32),
        "cls/seq_relationship/output_bias": np.ones(2, np.float32),
        "bert/embeddings/word_embeddings/adam_m": np.ones((3,), np.float32),
        "global_step": np.array(1000, np.int64),
    }
    for name, array in extras.items():
        names.append(name)
        tensors.append(tf.constant(array))
    directory.mkdir(parents=True)
    tf.raw_ops.SaveV2(
        prefix=str(directory / "bert_model.ckpt"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=tensors,
    )
    fields = {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id", "model_type")}
    (directory / "bert_config.json").write_text(json.dumps(fields))


# Variable names as they stand in the original releases (chinese_roformer_L-12_H-768_A-12 and the char/sim
# models), written out literally rather than derived from our canonical names.
ORIGINAL_NAMES = {
    "bert/embeddings/word_embeddings": "roformer.embeddings.word_embeddings.weight",
    "bert/embeddings/token_type_embeddings": "roformer.embeddings.token_type_embeddings.weight",
    "bert/embeddings/LayerNorm/gamma": "roformer.embeddings.LayerNorm.weight",
    "bert/embeddings/LayerNorm/beta": "roformer.embeddings.LayerNorm.bias",
    "bert/encoder/embedding_hidden_mapping_in/kernel": "roformer.embeddings_project.weight",
    "bert/encoder/layer_0/attention/self/query/kernel": "roformer.encoder.layer.0.attention.self.query.weight",
    "bert/encoder/layer_0/attention/self/value/bias": "roformer.encoder.layer.0.attention.self.value.bias",
    "bert/encoder/layer_3/attention/output/dense/kernel": "roformer.encoder.layer.3.attention.output.dense.weight",
    "bert/encoder/layer_11/attention/output/LayerNorm/gamma": (
        "roformer.encoder.layer.11.attention.output.LayerNorm.weight"
    ),
    "bert/encoder/layer_11/intermediate/dense/kernel": "roformer.encoder.layer.11.intermediate.dense.weight",
    "bert/encoder/layer_11/output/dense/bias": "roformer.encoder.layer.11.output.dense.bias",
    "bert/encoder/layer_11/output/LayerNorm/beta": "roformer.encoder.layer.11.output.LayerNorm.bias",
    "cls/predictions/transform/dense/kernel": "cls.predictions.transform.dense.weight",
    "cls/predictions/transform/LayerNorm/gamma": "cls.predictions.transform.LayerNorm.weight",
    "cls/predictions/output_bias": "cls.predictions.bias",
}


def test_original_names_map_to_canonical_names() -> None:
    for original, canonical in ORIGINAL_NAMES.items():
        assert original_to_canonical(original) == canonical, original


def test_original_checkpoint_with_pooler_nsp_and_projection(tmp_path) -> None:
    config, state, inputs, expected = case_setup("embedding_project_rotary_value", "masked_lm")
    write_original_checkpoint(tmp_path / "orig", config, state)
    (tmp_path / "orig" / "vocab.txt").write_text("[PAD]\n")
    assert convert_main([str(tmp_path / "orig"), str(tmp_path / "pt"), "--to", "pt", "--quiet"]) == 0
    loaded = read_weights_file(tmp_path / "pt" / "model.safetensors")
    got = forward(RoFormerConfig.from_pretrained(tmp_path / "pt"), loaded, "masked_lm", **inputs)
    assert_outputs_match(got, expected, ATOL["float32"])  # the reference's outputs for these weights
    assert (tmp_path / "pt" / "vocab.txt").is_file()


# ---- errors: one line, non-zero exit, nothing left behind -----------------------------------------------


def _cli_error(args: list[str], capsys) -> str:
    assert convert_main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("roformer-convert: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_cli_errors(checkpoint, tmp_path, capsys) -> None:
    src, config, state = checkpoint
    dst = tmp_path / "dst"
    assert "does not exist" in _cli_error([str(tmp_path / "missing"), str(dst), "--to", "pt"], capsys)
    (tmp_path / "empty").mkdir()
    assert "no weights" in _cli_error([str(tmp_path / "empty"), str(dst), "--to", "pt"], capsys)
    truncated = tmp_path / "truncated"
    save_checkpoint(truncated, config, state)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert "truncated" in _cli_error([str(truncated), str(dst), "--to", "tf"], capsys)
    bad = tmp_path / "bad"
    broken = dict(state)
    broken["roformer.encoder.layer.0.output.dense.weight"] = np.zeros((3, 3), np.float32)
    broken["roformer.encoder.layer.9.output.dense.weight"] = np.zeros((3, 3), np.float32)
    save_checkpoint(bad, config, broken)
    err = _cli_error([str(bad), str(dst), "--to", "flax"], capsys)
    assert "layer.0.output.dense.weight: checkpoint [3, 3] vs model [32, 37]" in err
    assert "unexpected: roformer.encoder.layer.9.output.dense.weight" in err
    dst.mkdir()
    assert "exists; pass --force" in _cli_error([str(src), str(dst), "--to", "pt"], capsys)
    assert convert_main([str(src), str(dst), "--to", "pt", "--force", "--quiet"]) == 0
    assert (dst / "model.safetensors").is_file()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_failed_conversion_leaves_nothing(checkpoint, tmp_path, monkeypatch) -> None:
    import roformer_conversion.convert as convert

    src, _, _ = checkpoint

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(convert, "write_flax_msgpack", explode)
    with pytest.raises(OSError):
        convert_checkpoint(src, tmp_path / "out", to="flax")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]
    with pytest.raises(ConversionError, match="unknown target"):
        convert_checkpoint(src, tmp_path / "out", to="onnx")


def test_help_and_verify(capsys) -> None:
    with pytest.raises(SystemExit):
        convert_main(["--help"])
    assert "bert_config.json" in capsys.readouterr().out
    assert main(["verify", "--frameworks", "pt"]) == 0
    out = capsys.readouterr().out
    assert "masked_lm" in out and "OK: every framework matches" in out


def test_console_scripts_are_installed() -> None:
    for script in ("roformer-convert", "roformer"):
        path = Path(sys.executable).parent / script
        result = subprocess.run([str(path), "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "usage" in result.stdout
