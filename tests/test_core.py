"""The framework-neutral core: config, rotary math, schema, outputs, losses, checkpoint files, import hygiene."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roformer_core import (
    HEADS,
    CheckpointMismatchError,
    MaskedLMOutput,
    RoFormerConfig,
    apply_rotary,
    check_state_dict,
    losses,
    model_schema,
    rotate_pairs,
    sinusoidal_table,
)
from roformer_core.generation import left_align_plan, prepare_prompts
from roformer_core.io import atomic_write_with

ROOT = Path(__file__).resolve().parents[1]

# ---- rotary: the reference's published test values (its unit tests, atol 1e-4) -------------------------------


def test_table_published_values_small() -> None:
    expected = [[0, 0, 0, 1, 1, 1], [0.8415, 0.0464, 0.0022, 0.5403, 0.9989, 1.0000]]
    np.testing.assert_allclose(sinusoidal_table(6, 6)[:2], expected, atol=1e-4)


def test_table_published_values_large() -> None:
    expected = [
        [0, 0, 0, 0, 0],
        [0.8415, 0.8219, 0.8020, 0.7819, 0.7617],
        [0.9093, 0.9364, 0.9581, 0.9749, 0.9870],
    ]
    np.testing.assert_allclose(sinusoidal_table(512, 512)[:3, :5], expected, atol=1e-4)


def test_rotation_published_values() -> None:
    q = np.arange(2 * 12 * 16 * 64, dtype=np.float32).reshape(2, 12, 16, 64) / 100
    table = sinusoidal_table(32, 64)[:16]
    expected = np.array(
        [
            [0.0000, 0.0100, 0.0200, 0.0300, 0.0400, 0.0500, 0.0600, 0.0700],
            [-0.2012, 0.8897, 0.0263, 0.9401, 0.2074, 0.9463, 0.3481, 0.9343],
            [-1.7057, 0.6271, -1.2145, 1.3897, -0.6303, 1.7647, -0.1173, 1.8985],
            [-2.1731, -1.6397, -2.7358, 0.2854, -2.1840, 1.7183, -1.3018, 2.4871],
            [0.2717, -3.6173, -2.9206, -2.1988, -3.6638, 0.3858, -2.9155, 2.2980],
            [3.9859, -2.1580, -0.7984, -4.4904, -4.1181, -2.0252, -4.4782, 1.1253],
        ]
    )
    np.testing.assert_allclose(apply_rotary(q, table)[0, 0, :6, :8], expected, atol=1e-4)
    np.testing.assert_allclose(apply_rotary(-q, table)[0, 0, :6, :8], -expected, atol=1e-4)


def test_worked_example_in_the_rotary_docs() -> None:
    table = sinusoidal_table(2, 4, np.float64)[1:2]
    np.testing.assert_allclose(
        apply_rotary(np.array([[1.0, 2.0, 3.0, 4.0]]), table), [[-1.1426, 1.9221, 2.9598, 4.0298]], atol=1e-4
    )


def test_rotation_is_complex_multiplication() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8))
    table = sinusoidal_table(3, 8, np.float64)
    z = (x[:, 0::2] + 1j * x[:, 1::2]) * np.exp(1j * np.arctan2(table[:, :4], table[:, 4:]))
    out = apply_rotary(x, table)
    np.testing.assert_allclose(out[:, 0::2] + 1j * out[:, 1::2], z, atol=1e-12)
    np.testing.assert_array_equal(rotate_pairs(np.array([1.0, 2.0, 3.0, 4.0])), [-2.0, 1.0, -4.0, 3.0])


def test_table_of_any_length_is_a_prefix_of_a_longer_one() -> None:
    long = sinusoidal_table(5000, 64)
    np.testing.assert_array_equal(long[:1536], sinusoidal_table(1536, 64))
    np.testing.assert_array_equal(long[3000:3010], sinusoidal_table(10, 64, offset=3000))


def test_table_bit_identical_to_reference() -> None:
    modeling = pytest.importorskip("transformers.models.roformer.modeling_roformer")
    layer = modeling.RoFormerSinusoidalPositionalEmbedding(1536, 64)
    layer._init_weight()
    np.testing.assert_array_equal(layer.weight.detach().numpy(), sinusoidal_table(1536, 64))


# ---- config ------------------------------------------------------------------------------------------------------


def test_config_defaults_match_reference() -> None:
    transformers = pytest.importorskip("transformers")
    ref = transformers.RoFormerConfig()
    ours = RoFormerConfig()
    for key, value in ours.to_dict().items():
        if hasattr(ref, key) and key not in ("id2label", "label2id"):
            assert getattr(ref, key) == value, key
    assert ours.num_labels == ref.num_labels == 2


def test_config_json_round_trips_with_reference(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    ours = RoFormerConfig(hidden_size=64, num_attention_heads=4, embedding_size=32, rotary_value=True, num_labels=5)
    ours.save_pretrained(tmp_path / "ours")
    ref = transformers.RoFormerConfig.from_pretrained(tmp_path / "ours")
    assert (ref.hidden_size, ref.embedding_size, ref.rotary_value, ref.num_labels) == (64, 32, True, 5)
    ref.architectures = ["RoFormerForMaskedLM"]
    ref.save_pretrained(tmp_path / "ref")
    back = RoFormerConfig.from_pretrained(tmp_path / "ref")
    assert back.extra["architectures"] == ["RoFormerForMaskedLM"]
    assert "transformers_version" in back.extra
    assert (back.hidden_size, back.embedding_size, back.rotary_value, back.num_labels) == (64, 32, True, 5)
    back.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text())["architectures"] == ["RoFormerForMaskedLM"]


def test_config_overrides_and_null_embedding_size(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roformer", "embedding_size": None, "foo": 1}))
    config = RoFormerConfig.from_pretrained(tmp_path, hidden_size=48, num_attention_heads=6)
    assert config.embedding_size == 48 and config.extra == {"foo": 1}
    assert RoFormerConfig.from_dict(config.to_dict(), num_labels=7).num_labels == 7


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
        ({"hidden_size": 36, "num_attention_heads": 4}, "head size"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"num_hidden_layers": -1}, "num_hidden_layers"),
        ({"intermediate_size": 2.5}, "intermediate_size"),
        ({"hidden_act": "gelu_magic"}, "hidden_act"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
        ({"attention_probs_dropout_prob": -0.1}, "attention_probs_dropout_prob"),
        ({"add_cross_attention": True}, "add_cross_attention"),
        ({"problem_type": "ranking"}, "problem_type"),
        ({"layer_norm_eps": 0}, "layer_norm_eps"),
    ],
)
def test_config_validation_names_the_field(kwargs, field) -> None:
    with pytest.raises(ValueError, match=field):
        RoFormerConfig(**kwargs)


def test_config_file_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no config.json"):
        RoFormerConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        RoFormerConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert'"):
        RoFormerConfig.from_pretrained(tmp_path)


# ---- schema ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [{}, {"embedding_size": 16, "rotary_value": True}, {"is_decoder": True, "add_cross_attention": True}],
    ids=["default", "embedding_project", "cross_attention"],
)
@pytest.mark.parametrize("head", [h.name for h in HEADS])
def test_schema_matches_reference_state_dict(head: str, extra: dict) -> None:
    transformers = pytest.importorskip("transformers")
    kwargs = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=20)
    kwargs.update(num_labels=3, max_position_embeddings=40, type_vocab_size=3, **extra)
    spec = [h for h in HEADS if h.name == head][0]
    ref = getattr(transformers, spec.class_name)(transformers.RoFormerConfig(**kwargs))
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    ours = {p.name: p.shape for p in model_schema(RoFormerConfig(**kwargs), head)}
    assert ours == ref_shapes


def test_check_state_dict_reports_everything_at_once() -> None:
    config = RoFormerConfig(
        vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=4
    )
    schema = model_schema(config, "model")
    state = {p.name: np.zeros(p.shape) for p in schema}
    state["encoder.embed_positions.weight"] = np.zeros((3, 4))  # any length is fine
    del state["embeddings.LayerNorm.bias"]
    state["encoder.layer.0.output.dense.weight"] = np.zeros((4, 8))
    state["pooler.dense.weight"] = np.zeros((8, 8))
    with pytest.raises(CheckpointMismatchError) as info:
        check_state_dict(schema, state)
    err = info.value
    assert err.missing == ["embeddings.LayerNorm.bias"]
    assert err.unexpected == ["pooler.dense.weight"]
    assert err.mismatched == [("encoder.layer.0.output.dense.weight", (4, 8), (8, 4))]


# ---- outputs, losses, generation helpers -------------------------------------------------------------------------


def test_model_output_behaves_like_the_reference() -> None:
    out = MaskedLMOutput(loss=1.5, logits=np.ones(2), attentions=None)
    assert out.logits is out["logits"] is out[1]
    assert out.hidden_states is None and "hidden_states" not in out
    assert out.to_tuple() == (1.5, out.logits)
    assert list(out.keys()) == ["loss", "logits"]
    clone = pickle.loads(pickle.dumps(out))
    assert type(clone) is MaskedLMOutput and clone.loss == 1.5
    with pytest.raises(AttributeError):
        out.nonsense  # noqa: B018


def test_problem_type_resolution() -> None:
    assert losses.resolve_problem_type(None, 1, False) == "regression"
    assert losses.resolve_problem_type(None, 3, True) == "single_label_classification"
    assert losses.resolve_problem_type(None, 3, False) == "multi_label_classification"
    assert losses.resolve_problem_type("regression", 3, True) == "regression"


def test_qa_loss_ignores_out_of_range_positions() -> None:
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]))
    both = losses.question_answering_loss(logits, logits, np.array([2, 9]), np.array([2, 9]))
    assert both == pytest.approx(-np.log(0.7))


def test_target_count_follows_each_loss() -> None:
    config = RoFormerConfig(num_labels=3)
    labels = np.array([[5, -100, 7], [-100, -100, 2]])
    ids = np.ones((2, 3), np.int64)
    assert losses.target_count("masked_lm", {"labels": labels, "input_ids": ids}, config) == 3
    assert losses.target_count("causal_lm", {"labels": labels, "input_ids": ids}, config) == 2  # from position 1
    assert losses.target_count("multiple_choice", {"labels": np.array([1, -100]), "input_ids": ids}, config) == 1
    single = {"labels": np.array([2, -100]), "input_ids": ids}
    assert losses.target_count("sequence_classification", single, config) == 1
    multi = {"labels": np.zeros((2, 3), np.float32), "input_ids": ids}
    assert losses.target_count("sequence_classification", multi, config) == 2  # examples
    qa = {"start_positions": np.array([1, 9]), "end_positions": np.array([2, 9]), "input_ids": ids}
    assert losses.target_count("question_answering", qa, config) == 2


def test_main_outputs_are_the_predictions() -> None:
    got = {head.name: head.main_outputs for head in HEADS}
    assert got == {
        "model": ("last_hidden_state",),
        "masked_lm": ("logits",),
        "causal_lm": ("logits",),
        "sequence_classification": ("logits",),
        "multiple_choice": ("logits",),
        "token_classification": ("logits",),
        "question_answering": ("start_logits", "end_logits"),
    }


def test_left_align_plan() -> None:
    assert left_align_plan(np.array([[0, 1, 1], [1, 1, 1]])) is None
    order = left_align_plan(np.array([[1, 1, 0], [1, 1, 1]]))
    np.testing.assert_array_equal(
        np.take_along_axis(np.array([[5, 6, 0], [1, 2, 3]]), order, 1), [[0, 5, 6], [1, 2, 3]]
    )


def test_prepare_prompts_aligns_fills_pads_and_checks_ids() -> None:
    config = RoFormerConfig(vocab_size=10, type_vocab_size=2)
    # right-padded row whose pad holds an out-of-range id: allowed, replaced by the pad id and moved left
    given_types = [[1, 0, 0], [0, 0, 1]]
    ids, mask, types = prepare_prompts(config, [[5, 6, 999], [1, 2, 3]], [[1, 1, 0], [1, 1, 1]], given_types, 0)
    np.testing.assert_array_equal(ids, [[0, 5, 6], [1, 2, 3]])
    np.testing.assert_array_equal(mask, [[0, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(types, [[0, 1, 0], [0, 0, 1]])
    assert ids.dtype == np.int64
    with pytest.raises(ValueError, match="token_type_ids contains id 7, out of range for type_vocab_size=2"):
        prepare_prompts(config, [[5, 6, 7]], None, [[1, 0, 7]], 0)
    with pytest.raises(ValueError, match="input_ids contains id 10, out of range for vocab_size=10"):
        prepare_prompts(config, [[5, 10]], [[1, 1]], None, 0)
    with pytest.raises(ValueError, match="must be integers"):
        prepare_prompts(config, [[0.5, 1.0]], None, None, 0)
    with pytest.raises(ValueError, match="attention_mask shape"):
        prepare_prompts(config, [[1, 2]], [[1]], None, 0)


# ---- files ---------------------------------------------------------------------------------------------------------


def test_atomic_write_leaves_nothing_on_failure(tmp_path) -> None:
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")

    def crash(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_with(target, crash)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


# ---- import hygiene ----------------------------------------------------------------------------------------------

FRAMEWORKS = ("torch", "tensorflow", "jax", "flax", "keras", "transformers")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(','.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return {m.split(".")[0] for m in result.stdout.strip().split(",")}


def test_core_imports_no_framework() -> None:
    loaded = _modules_after("import roformer_core, roformer_core.numpy_model, roformer_core.checkpoint")
    assert not loaded & set(FRAMEWORKS)


@pytest.mark.parametrize("port", ["roformer_pt", "roformer_tf", "roformer_flax", "roformer_conversion"])
def test_ports_never_import_each_other(port: str) -> None:
    others = {"roformer_pt", "roformer_tf", "roformer_flax"} - {port}
    folder = ROOT / ("conversion" if port == "roformer_conversion" else port)
    for path in folder.rglob("*.py"):
        text = path.read_text()
        for other in others if port != "roformer_conversion" else ():
            assert f"import {other}" not in text and f"from {other}" not in text, f"{path} imports {other}"
        assert "import transformers" not in text and "from transformers" not in text, f"{path} imports transformers"


def test_class_label_limits_and_checks() -> None:
    from roformer_core.losses import class_label_limit, scored_labels
    from roformer_core.validation import check_class_labels

    config = RoFormerConfig(vocab_size=99, num_labels=3)
    assert class_label_limit("masked_lm", config) == (99, "vocab_size")
    assert class_label_limit("causal_lm", config) == (99, "vocab_size")
    assert class_label_limit("token_classification", config) == (3, "num_labels")
    assert class_label_limit("sequence_classification", config) == (3, "num_labels")
    assert class_label_limit("sequence_classification", config, labels_are_integer=False) is None  # multi-label
    assert class_label_limit("sequence_classification", RoFormerConfig(num_labels=1)) is None  # regression
    assert class_label_limit("multiple_choice", config, num_choices=4) == (4, "the number of choices")
    assert class_label_limit("multiple_choice", config) is None
    assert class_label_limit("question_answering", config) is None  # positions are clamped, never out of range
    check_class_labels("labels", 0, 98, 99, "vocab_size")
    check_class_labels("labels", None, None, 99, "vocab_size")  # every label ignored
    with pytest.raises(ValueError, match=r"labels contains 99, out of range for vocab_size=99: .*\[0, 99\) or -100"):
        check_class_labels("labels", 0, 99, 99, "vocab_size")
    with pytest.raises(ValueError, match="labels contains -3"):
        check_class_labels("labels", -3, 2, 3, "num_labels")
    # the causal LM's first label is never scored (position t predicts token t + 1)
    labels = np.array([[7, 1, 2], [8, 3, -100]])
    np.testing.assert_array_equal(scored_labels("causal_lm", labels), labels[:, 1:])
    assert scored_labels("masked_lm", labels) is labels
