"""Shared model tests: every backend x every case x every head against the reference's golden values."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from roformer_core import HEADS, RoFormerConfig, get_head, numpy_model

from .backends import backend_params, load_backend
from .cases import CASES, CASES_BY_NAME, canonical_params, golden_path
from .tolerances import ATOL

CASE_HEADS = [pytest.param(case.name, head, id=f"{case.name}-{head}") for case in CASES for head in case.heads]
OUTPUT_KEYS = ("output_hidden_states", "output_attentions")


@functools.cache
def golden(case_name: str) -> dict[str, np.ndarray]:
    with np.load(golden_path(f"{case_name}.npz")) as data:
        return {k: data[k] for k in data.files}


def _section(record: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in record.items() if k.startswith(prefix)}


def case_setup(case_name: str, head: str):
    """Config, canonical weights, inputs and reference outputs of one (case, head)."""
    case = CASES_BY_NAME[case_name]
    record = golden(case_name)
    state = canonical_params(head, _section(record, "encoder/"), _section(record, f"{head}/param/"))
    return (
        RoFormerConfig(**case.full_config()),
        state,
        _section(record, f"{head}/in/"),
        _section(record, f"{head}/out/"),
    )


def assert_outputs_match(got: dict, expected: dict[str, np.ndarray], atol: float) -> None:
    assert set(expected) - {"past_key_values"} <= set(got), f"missing outputs: {set(expected) - set(got)}"
    for field, want in expected.items():
        have = np.asarray(got[field], dtype=np.float64)
        assert have.shape == want.shape, f"{field}: shape {have.shape} vs reference {want.shape}"
        diff = float(np.max(np.abs(have - want))) if want.size else 0.0
        assert diff <= atol, f"{field}: max abs diff {diff:.3g} > {atol}"


@pytest.mark.parametrize("case_name, head", CASE_HEADS)
def test_numpy_oracle_matches_reference(case_name: str, head: str) -> None:
    """The core's float64 forward pass reproduces the reference (it is the spec the ports are held to)."""
    config, state, inputs, expected = case_setup(case_name, head)
    got = numpy_model.forward(config, state, head, **inputs)
    assert_outputs_match(got, expected, ATOL["float32"])


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("case_name, head", CASE_HEADS)
def test_matches_reference(backend: str, case_name: str, head: str) -> None:
    """Every output field (logits, loss, hidden states, attention maps) equals the reference within 1e-5."""
    be = load_backend(backend)
    config, state, inputs, expected = case_setup(case_name, head)
    model = be.build(head, config, state)
    got = be.run(model, inputs, output_hidden_states=True, output_attentions=True)
    assert_outputs_match(got, expected, ATOL["float32"])


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("case_name, head", CASE_HEADS)
def test_fast_path_matches_reference(backend: str, case_name: str, head: str) -> None:
    """Without attention maps requested (the fused-attention path where a port has one) every other output field
    equals the reference too."""
    be = load_backend(backend)
    config, state, inputs, expected = case_setup(case_name, head)
    model = be.build(head, config, state)
    got = be.run(model, inputs, output_hidden_states=True)
    expected = {k: v for k, v in expected.items() if k not in ("attentions", "cross_attentions")}
    assert_outputs_match(got, expected, ATOL["float32"])


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("case_name", ["causal_padded", "decoder_cross_attention"])
def test_cached_decoding_equals_full_pass(backend: str, case_name: str) -> None:
    """Feeding the sequence in three pieces through the cache gives the full pass's logits."""
    be = load_backend(backend)
    config, state, inputs, _ = case_setup(case_name, "causal_lm")
    inputs.pop("labels")
    model = be.build("causal_lm", config, state)
    full = be.run(model, inputs)["logits"]
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    extra = {k: v for k, v in inputs.items() if k.startswith("encoder_")}
    pieces, past, start = [], None, 0
    for stop in (3, 5, ids.shape[1]):
        step = {"input_ids": ids[:, start:stop], "attention_mask": mask[:, :stop], **extra}
        if "token_type_ids" in inputs:
            step["token_type_ids"] = inputs["token_type_ids"][:, start:stop]
        out = be.run(model, step, past_key_values=past, use_cache=True)
        pieces.append(out["logits"])
        past, start = out["past_key_values"], stop
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=ATOL["cache"], rtol=0)


@pytest.mark.parametrize("backend", backend_params())
def test_greedy_generate_equals_reference(backend: str) -> None:
    be = load_backend(backend)
    record = dict(np.load(golden_path("generate.npz")))
    from .cases import BASE_CONFIG

    config = RoFormerConfig(**BASE_CONFIG, is_decoder=True)
    model = be.build("causal_lm", config, _section(record, "param/"))
    got = be.generate(model, record["prompts"], max_new_tokens=8)
    np.testing.assert_array_equal(got, record["greedy"])
    got = be.generate(model, record["padded_prompts"], attention_mask=record["padded_mask"], max_new_tokens=8)
    np.testing.assert_array_equal(got, record["greedy_padded"])


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize(
    "bad, message",
    [
        ("input_ids", "input_ids contains id 99, out of range for vocab_size=99"),
        ("token_type_ids", "token_type_ids contains id 16, out of range for type_vocab_size=16"),
    ],
)
def test_generate_refuses_bad_prompts(backend: str, bad: str, message: str) -> None:
    be = load_backend(backend)
    from .cases import BASE_CONFIG

    config = RoFormerConfig(**BASE_CONFIG, is_decoder=True)
    model = be.build("causal_lm", config, numpy_model.init_params(config, "causal_lm", seed=0))
    prompts = np.ones((2, 4), np.int64)
    types = np.zeros_like(prompts)
    (prompts if bad == "input_ids" else types)[1, 2] = config.vocab_size if bad == "input_ids" else 16
    with pytest.raises(ValueError, match=message):
        be.generate(model, prompts, max_new_tokens=2, token_type_ids=types)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("head", [h.name for h in HEADS])
def test_save_load_round_trip(backend: str, head: str, tmp_path) -> None:
    """save_pretrained then from_pretrained gives the same outputs; the files are canonical safetensors."""
    be = load_backend(backend)
    config, state, inputs, expected = case_setup("basic", head)
    for key in get_head(head).label_args:
        inputs.pop(key, None)
    model = be.build(head, config, state)
    be.save_pretrained(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    reloaded = be.from_pretrained(head, tmp_path)
    key = get_head(head).main_outputs[0]
    np.testing.assert_allclose(be.run(reloaded, inputs)[key], expected[key], atol=ATOL["float32"], rtol=0)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize(
    "change, message",
    [
        ({"input_ids": lambda ids: np.where(np.arange(ids.shape[1]) == 2, 99, ids)}, "input_ids contains id 99"),
        ({"input_ids": lambda ids: ids - 100}, "negative"),
        ({"token_type_ids": lambda t: t + 15}, "type_vocab_size"),
        ({"attention_mask": lambda m: m[:, :-1]}, "attention_mask has shape"),
        ({"labels": lambda y: np.where(np.arange(y.shape[1]) == 2, 99, y)}, "labels contains 99, .* vocab_size=99"),
        ({"labels": lambda y: np.where(np.arange(y.shape[1]) == 2, -5, y)}, "labels contains -5"),
    ],
    ids=["id_too_large", "negative_id", "token_type_too_large", "mask_shape", "label_too_large", "negative_label"],
)
def test_bad_input_names_the_problem(backend: str, change: dict, message: str) -> None:
    be = load_backend(backend)
    config, state, inputs, _ = case_setup("basic", "masked_lm")
    if "labels" not in change:
        inputs.pop("labels")
    model = be.build("masked_lm", config, state)
    for key, fn in change.items():
        inputs[key] = fn(inputs[key])
    with pytest.raises(ValueError, match=message):
        be.run(model, inputs)


@pytest.mark.parametrize("backend", backend_params())
def test_loading_reports_every_mismatch_by_name(backend: str, tmp_path) -> None:
    from roformer_core import save_checkpoint

    be = load_backend(backend)
    config, state, _, _ = case_setup("basic", "masked_lm")
    broken = dict(state)
    del broken["roformer.encoder.layer.0.attention.self.query.weight"]
    broken["roformer.encoder.layer.1.output.dense.weight"] = np.zeros((5, 5), np.float32)
    broken["roformer.encoder.layer.7.output.dense.weight"] = np.zeros((5, 5), np.float32)
    save_checkpoint(tmp_path, config, broken)
    with pytest.raises(ValueError) as info:
        be.from_pretrained("masked_lm", tmp_path)
    text = str(info.value)
    assert "missing: roformer.encoder.layer.0.attention.self.query.weight" in text
    assert "unexpected: roformer.encoder.layer.7.output.dense.weight" in text
    assert "roformer.encoder.layer.1.output.dense.weight: checkpoint [5, 5] vs model [32, 37]" in text


@pytest.mark.parametrize("backend", backend_params())
def test_pretrained_encoder_into_new_head(backend: str, tmp_path) -> None:
    """A masked-LM checkpoint loads into a classifier: the encoder's hidden states are the reference's."""
    from roformer_core import save_checkpoint

    be = load_backend(backend)
    config, state, inputs, expected = case_setup("basic", "masked_lm")
    save_checkpoint(tmp_path, config, state)
    classifier = be.from_pretrained("sequence_classification", tmp_path)
    inputs.pop("labels")
    out = be.run(classifier, inputs, output_hidden_states=True)
    np.testing.assert_allclose(out["hidden_states"], expected["hidden_states"], atol=ATOL["float32"], rtol=0)
    assert out["logits"].shape == (2, config.num_labels)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("head", [h.name for h in HEADS if h.name != "model"])
def test_new_head_parameters_start_by_their_kind(backend: str, head: str, tmp_path) -> None:
    """A bare-model checkpoint loaded into a head: every head parameter starts as the reference's _init_weights
    would (normal with initializer_range, zero biases, unit LayerNorm scales), none left empty or random."""
    from roformer_core import save_checkpoint
    from roformer_core.heads import BASE_PREFIX
    from roformer_core.schema import INITIALIZERS, model_schema

    be = load_backend(backend)
    config = RoFormerConfig(
        **{**CASES_BY_NAME["basic"].full_config(), "initializer_range": 0.5, "num_labels": 40, "hidden_size": 128}
    )
    save_checkpoint(tmp_path, config, numpy_model.init_params(config, "model", seed=3))
    model = be.from_pretrained(head, tmp_path)
    got = model.canonical_state_dict()
    schema = model_schema(model.config, get_head(head))
    new = [spec for spec in schema if spec.stored and not spec.name.startswith(BASE_PREFIX)]
    assert new
    drawn = []
    for spec in new:
        value = np.asarray(got[spec.name], np.float64)
        rule = INITIALIZERS[spec.kind]
        if rule == "normal":
            drawn.append(value.ravel())
        else:
            np.testing.assert_array_equal(value, 1.0 if rule == "ones" else 0.0, err_msg=spec.name)
    # All normal draws of the head pooled (n >= 128: the multiple-choice classifier is [1, E]). For n draws of
    # N(0, s^2) the sample mean has standard error s/sqrt(n) and the sample std about s/sqrt(2n); 6 standard errors
    # fail by chance with probability ~1e-9 per check, and still tell a wrong scale (1.0 or 0.02 instead of 0.5) or
    # a shifted mean apart. The draws are also seeded (conftest), so the outcome is the same in every run.
    if drawn:
        values = np.concatenate(drawn)
        n = values.size
        assert n >= 128, n
        assert abs(values.mean()) < 6 * 0.5 / np.sqrt(n), values.mean()
        assert abs(values.std() - 0.5) < 6 * 0.5 / np.sqrt(2 * n), values.std()


@pytest.mark.parametrize("backend", backend_params())
def test_missing_files_are_reported(backend: str, tmp_path) -> None:
    be = load_backend(backend)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        be.from_pretrained("model", tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        be.from_pretrained("model", tmp_path)
    RoFormerConfig(vocab_size=10, hidden_size=8, num_attention_heads=2, intermediate_size=8).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no weights"):
        be.from_pretrained("model", tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="cannot read safetensors"):
        be.from_pretrained("model", tmp_path)


@pytest.mark.parametrize("backend", backend_params())
def test_weights_that_carry_their_config_load_without_config_json(backend: str, tmp_path) -> None:
    """What transformers.Trainer.save_model / accelerate's save_model write for our PyTorch models: the state dict
    alone, the config inside it under CONFIG_STATE_KEY. Every framework loads it with no config.json."""
    from roformer_core.checkpoint import CONFIG_STATE_KEY, config_state, write_safetensors

    be = load_backend(backend)
    config, state, inputs, expected = case_setup("basic", "masked_lm")
    write_safetensors(tmp_path / "model.safetensors", {**state, CONFIG_STATE_KEY: config_state(config)})
    model = be.from_pretrained("masked_lm", tmp_path)
    assert model.config == config
    np.testing.assert_allclose(be.run(model, inputs)["logits"], expected["logits"], atol=ATOL["float32"], rtol=0)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("case_name, head", [("embedding_project_rotary_value", "model"), ("basic", "masked_lm")])
def test_inputs_embeds_equal_input_ids(backend: str, case_name: str, head: str) -> None:
    """Looking the ids up by hand and passing ``inputs_embeds`` gives the reference's outputs for the ids."""
    be = load_backend(backend)
    config, state, inputs, expected = case_setup(case_name, head)
    table = state[f"{get_head(head).prefix}embeddings.word_embeddings.weight"]
    inputs["inputs_embeds"] = table[inputs.pop("input_ids")].astype(np.float32)  # [B, L, E]
    got = be.run(be.build(head, config, state), inputs)
    key = "last_hidden_state" if head == "model" else "logits"
    np.testing.assert_allclose(got[key], expected[key], atol=ATOL["float32"], rtol=0)
    if "loss" in expected:
        np.testing.assert_allclose(got["loss"], expected["loss"], atol=ATOL["float32"], rtol=0)
