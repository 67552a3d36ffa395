"""roformer-convert and roformer verify on every member of the family (V1, V2, Sim, GPT-char).

The original checkpoints under tests/fixtures/family/ were written from bert4keras models, and the golden files
(tests/fixtures/golden/family/) hold their weights under our names and bert4keras' outputs
(scripts/make_family_golden.py). The converted weights are checked against those, and run through the numpy oracle;
no port is needed, so these tests hold whichever ports implement the family.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from roformer_conversion.cli import convert_main, main
from roformer_conversion.original import canonical_to_original, original_to_canonical
from roformer_core import HEADS as CORE_HEADS
from roformer_core import RoFormerConfig, get_head, load_checkpoint
from roformer_core.config import FAMILY_DEFAULTS
from roformer_core.heads import BASE_PREFIX, HeadSpec
from roformer_core.numpy_model import forward
from roformer_core.schema import ROTARY_TABLE, ROTARY_TABLE_KEY, model_schema
from roformer_core.variants import VARIANT_FIELDS, variant_config

from .tolerances import ATOL

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAMILY = FIXTURES / "family"
GOLDEN = FIXTURES / "golden" / "family"
# the module (the package's ``verify`` is the function)
verify_module = importlib.import_module("roformer_conversion.verify")
HEADS = {"v1": "masked_lm", "v2": "masked_lm", "sim": "causal_lm", "gpt": "causal_lm"}


def golden(variant: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The canonical params of a member's fixture, and every other array of it."""
    data = dict(np.load(GOLDEN / f"{variant}.npz"))
    params = {k.removeprefix("param/"): data.pop(k) for k in list(data) if k.startswith("param/")}
    return params, data


def convert(args: list[str]) -> None:
    """``roformer-convert ARGS`` as a user types it (the console script's entry point, in this process)."""
    assert convert_main([*args, "--quiet"]) == 0


def weights(directory: Path) -> dict[str, np.ndarray]:
    """The stored parameters of a converted directory, without the (regenerated) rotary table."""
    _, state = load_checkpoint(directory)
    return {k: v for k, v in state.items() if not k.endswith(ROTARY_TABLE_KEY)}


def tf_variables(directory: Path) -> dict[str, np.ndarray]:
    tf = pytest.importorskip("tensorflow")
    reader = tf.train.load_checkpoint(str(directory / "bert_model.ckpt"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize(
    ("variant", "stated"),
    [("v1", None), ("v2", None), ("v2", "v2"), ("sim", "sim"), ("gpt", "gpt")],
    ids=["v1", "v2-detected", "v2", "sim", "gpt"],
)
def test_original_checkpoint_converts_to_the_golden_model(variant: str, stated: str | None, tmp_path) -> None:
    pytest.importorskip("tensorflow")  # reading the TF bundle
    out = tmp_path / variant
    convert([str(FAMILY / f"{variant}_bert4keras"), str(out), "--to", "pt", *(["--variant", stated] if stated else [])])
    config = RoFormerConfig.from_pretrained(out)  # no overrides: config.json says which member it is
    expected_fields = {**FAMILY_DEFAULTS, **VARIANT_FIELDS[variant]}
    assert {k: getattr(config, k) for k in expected_fields} == expected_fields
    assert config.extra["architectures"] == [get_head(HEADS[variant]).class_name]

    params, data = golden(variant)
    got = weights(out)
    assert got.keys() == params.keys()
    for name, value in params.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)

    inputs = {k.removeprefix("in/"): v for k, v in data.items() if k.startswith("in/")}
    outputs = forward(config, got, HEADS[variant], **inputs)
    outputs["hidden_states"] = np.stack(outputs["hidden_states"])
    compared = [k.removeprefix("bert4keras/") for k in data if k.startswith("bert4keras/") and "zero/" not in k]
    assert "logits" in compared and ("pooler_output" in compared) == (variant == "sim")
    for name in compared:
        np.testing.assert_allclose(outputs[name], data[f"bert4keras/{name}"], rtol=0, atol=ATOL["float32"])


def test_a_sim_checkpoint_without_variant_drops_the_pooler_and_says_so(tmp_path, capsys) -> None:
    pytest.importorskip("tensorflow")
    assert convert_main([str(FAMILY / "sim_bert4keras"), str(tmp_path / "out"), "--to", "pt"]) == 0
    printed = capsys.readouterr().out
    assert "dropped (the model has no such module): bert/pooler/dense/kernel" in printed
    assert "--variant sim keeps its pooler" in printed
    config = RoFormerConfig.from_pretrained(tmp_path / "out")
    assert (config.add_pooling_layer, config.unilm, config.is_decoder) == (False, False, False)


@pytest.mark.parametrize(
    ("variant", "stated", "message"),
    [
        ("v2", "v1", "its variables have no norm weights and no biases (RoFormer-V2); use --variant v2"),
        ("v2", "sim", "its variables have no norm weights and no biases (RoFormer-V2); use --variant v2"),
        ("sim", "v2", "its variables have norm weights and biases (RoFormer V1, Sim or GPT-char); use --variant v1"),
        ("gpt", "sim", "RoFormer-Sim has a pooler (bert/pooler/dense, roformer.pooler.dense) and this checkpoint has"),
    ],
)
def test_a_variant_the_variables_contradict_is_a_clear_error(
    variant: str, stated: str, message: str, tmp_path, capsys
) -> None:
    pytest.importorskip("tensorflow")
    src = FAMILY / f"{variant}_bert4keras"
    assert convert_main([str(src), str(tmp_path / "out"), "--to", "pt", "--variant", stated]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"roformer-convert: error: --variant {stated} does not fit {src}: ")
    assert message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_junnyu_checkpoints_take_a_variant_too(tmp_path, capsys) -> None:
    """JunnYu's Sim config.json has no ``unilm`` and no ``add_pooling_layer``: ``--variant sim`` writes them, so the
    converted directory loads as Sim with no overrides; a variant its weights contradict is the same error."""
    pytest.importorskip("torch")  # reading pytorch_model.bin
    convert([str(FAMILY / "sim_junnyu"), str(tmp_path / "sim"), "--to", "pt", "--variant", "sim"])
    config = RoFormerConfig.from_pretrained(tmp_path / "sim")
    assert {k: getattr(config, k) for k in VARIANT_FIELDS["sim"]} == VARIANT_FIELDS["sim"]
    params, _ = golden("sim")
    got = weights(tmp_path / "sim")
    assert got.keys() == params.keys()
    for name, value in params.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    assert convert_main([str(FAMILY / "v2_junnyu"), str(tmp_path / "x"), "--to", "pt", "--variant", "v1"]) == 1
    assert "its variables have no norm weights and no biases (RoFormer-V2); use --variant v2" in capsys.readouterr().err


def test_a_member_forgotten_at_first_is_stated_on_the_converted_directory(tmp_path) -> None:
    """GPT-char converted without --variant is a V1 masked LM; ``--variant gpt`` on that directory makes it the
    causal LM with bert4keras' (causal) logits."""
    pytest.importorskip("tensorflow")
    convert([str(FAMILY / "gpt_bert4keras"), str(tmp_path / "v1"), "--to", "pt"])
    assert RoFormerConfig.from_pretrained(tmp_path / "v1").extra["architectures"] == ["RoFormerForMaskedLM"]
    convert([str(tmp_path / "v1"), str(tmp_path / "gpt"), "--to", "pt", "--variant", "gpt"])
    config = RoFormerConfig.from_pretrained(tmp_path / "gpt")
    assert config.is_decoder and config.extra["architectures"] == ["RoFormerForCausalLM"]
    _, data = golden("gpt")
    inputs = {k.removeprefix("in/"): v for k, v in data.items() if k.startswith("in/")}
    logits = forward(config, weights(tmp_path / "gpt"), "causal_lm", **inputs)["logits"]
    np.testing.assert_allclose(logits, data["bert4keras/logits"], rtol=0, atol=ATOL["float32"])


@pytest.mark.parametrize("variant", list(HEADS))
def test_every_format_chain_is_bit_exact_and_writes_the_original_back(variant: str, tmp_path) -> None:
    """original -> safetensors -> pytorch_model.bin -> tf_model.h5 -> flax_model.msgpack -> original -> safetensors:
    the same arrays and config at both safetensors ends, and the written original checkpoint has the fixture's
    variables (names, shapes, values) and bert_config.json."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    fixture = FAMILY / f"{variant}_bert4keras"
    stated = ["--variant", variant]
    convert([str(fixture), str(tmp_path / "a"), "--to", "pt", *stated])
    convert([str(tmp_path / "a"), str(tmp_path / "bin"), "--to", "pt", "--pytorch-bin"])
    convert([str(tmp_path / "bin"), str(tmp_path / "tf"), "--to", "tf"])
    convert([str(tmp_path / "tf"), str(tmp_path / "flax"), "--to", "flax"])
    convert([str(tmp_path / "flax"), str(tmp_path / "original"), "--to", "original"])
    # bert_config.json does not say which member a checkpoint is: Sim and GPT-char are stated again, V2 is detected
    restated = stated if variant in ("sim", "gpt") else []
    convert([str(tmp_path / "original"), str(tmp_path / "b"), "--to", "pt", *restated])

    for layout, name in [("bin", "pytorch_model.bin"), ("tf", "tf_model.h5"), ("flax", "flax_model.msgpack")]:
        assert (tmp_path / layout / name).is_file()
    first, last = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert first.keys() == last.keys()
    for name in first:
        assert first[name].dtype == last[name].dtype, name
        np.testing.assert_array_equal(last[name], first[name], err_msg=name)
    assert RoFormerConfig.from_pretrained(tmp_path / "b") == RoFormerConfig.from_pretrained(tmp_path / "a")

    written, released = tf_variables(tmp_path / "original"), tf_variables(fixture)
    assert sorted(written) == sorted(released)
    for name, value in released.items():
        assert written[name].dtype == value.dtype and written[name].shape == value.shape, name
        np.testing.assert_array_equal(written[name], value, err_msg=name)
    assert json.loads((tmp_path / "original" / "bert_config.json").read_text()) == json.loads(
        (fixture / "bert_config.json").read_text()
    )


@pytest.mark.parametrize("variant", list(HEADS))
@pytest.mark.parametrize("head", CORE_HEADS, ids=[h.name for h in CORE_HEADS])
def test_original_names_of_every_parameter_map_back(variant: str, head: HeadSpec) -> None:
    """Every parameter of every class and member (a projection and an untied decoder included) has an original name
    that the reader maps back to it, bare-model names to the ``roformer.`` ones."""
    config = variant_config(
        variant, vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=8
    )
    if config.has_lm_transform:
        config = config.copy(embedding_size=16, tie_word_embeddings=False)
    names = set()
    for spec in model_schema(config, head):
        if spec.kind == ROTARY_TABLE:
            continue
        original = canonical_to_original(spec)
        assert original_to_canonical(original) == BASE_PREFIX * (not head.prefix) + spec.name, original
        names.add(original)
    assert len(names) == len([s for s in model_schema(config, head) if s.kind != ROTARY_TABLE])


# ---- roformer verify ---------------------------------------------------------------------------------------------


@pytest.fixture
def quick_verify(monkeypatch) -> None:
    """One timed forward pass per cell instead of 2 + 5 (the timings are not what these tests check)."""
    monkeypatch.setattr(verify_module, "WARMUP_RUNS", 0)
    monkeypatch.setattr(verify_module, "TIMED_RUNS", 1)


@pytest.mark.parametrize("variant", ["v2", "sim"])
def test_verify_runs_every_framework_on_the_member(variant: str, tmp_path, quick_verify, monkeypatch) -> None:
    """``roformer verify`` on a converted V2 / Sim checkpoint: every framework runs every head the member has and
    equals the numpy oracle; the run succeeds."""
    for module in ("torch", "tensorflow", "flax"):
        pytest.importorskip(module)
    convert([str(FAMILY / f"{variant}_bert4keras"), str(tmp_path / variant), "--to", "pt", "--variant", variant])
    reports = []
    format_report = verify_module.format_report
    monkeypatch.setattr(verify_module, "format_report", lambda report: reports.append(report) or format_report(report))
    code = main(["verify", str(tmp_path / variant), "--frameworks", "pt,tf,flax"])
    (report,) = reports
    heads = {"v2": 6, "sim": 2}[variant]  # every head but causal_lm; Sim is a decoder: model and causal_lm
    assert len(report.rows) == 3 * heads
    for row in report.rows:
        assert row.error is None and row.max_abs_diff <= ATOL["float32"], row
    assert verify_module.passed(report) and code == 0
