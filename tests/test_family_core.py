"""The RoFormer family (V1, V2, Sim, GPT-char) in the core: config, weight schema, masks, numpy oracle.

Golden values come from the two oracles, bert4keras 0.11.5 and JunnYu's ``roformer`` 0.4.3, through
``scripts/make_family_golden.py``; these tests read only the committed fixtures.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from roformer_core import RoFormerConfig, load_checkpoint
from roformer_core.masks import causal_mask, unilm_mask
from roformer_core.numpy_model import forward
from roformer_core.schema import (
    ROTARY_TABLE,
    CheckpointMismatchError,
    check_state_dict,
    infer_variant_fields,
    model_schema,
    resolve_checkpoint,
    vocab_params,
)
from roformer_core.variants import VARIANT_FIELDS, variant_config

from .backends import backend_params, load_backend
from .tolerances import ATOL

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "golden" / "family"
FAMILY = FIXTURES / "family"
HEADS = {"v1": "masked_lm", "v2": "masked_lm", "sim": "causal_lm", "gpt": "causal_lm"}
V2_HINT = (
    "this checkpoint has no LayerNorm weights and no biases: it is a RoFormer-V2 checkpoint; load it with "
    "norm_type='rms_norm', use_bias=False"
)
V1_HINT = (
    "this checkpoint has LayerNorm weights and biases: it is a RoFormer (V1) checkpoint, not a RoFormer-V2 one; "
    "load it with norm_type='layer_norm', use_bias=True"
)
# What each oracle was asked for (a missing field would make the comparison vacuous): bert4keras exposes no pooler
# without with_pool; JunnYu's quirk/ runs are compared separately, as documented differences.
COMPARED = {
    "v1": {"logits", "hidden_states", "zero/logits", "zero/hidden_states"},
    "v2": {"logits", "hidden_states", "zero/logits", "zero/hidden_states"},
    "sim": {
        "logits",
        "hidden_states",
        "pooler_output",
        "zero/logits",
        "zero/hidden_states",
        "zero/pooler_output",
    },
    "gpt": {"logits", "hidden_states", "zero/logits", "zero/hidden_states"},
}


def golden(variant: str) -> tuple[RoFormerConfig, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The variant's config, canonical params and every other array of its fixture."""
    data = dict(np.load(GOLDEN / f"{variant}.npz"))
    config = RoFormerConfig.from_dict(json.loads(str(data.pop("config"))))
    params = {k.removeprefix("param/"): data.pop(k) for k in list(data) if k.startswith("param/")}
    return config, params, data


def oracle_run(config: RoFormerConfig, params: dict, data: dict, variant: str, zero_types: bool = False) -> dict:
    types = data["in/token_type_ids"]
    out = forward(
        config,
        params,
        HEADS[variant],
        input_ids=data["in/input_ids"],
        token_type_ids=np.zeros_like(types) if zero_types else types,
        attention_mask=data["in/attention_mask"],
    )
    out["hidden_states"] = np.stack(out["hidden_states"])
    return out


# ---- shared by the ports' generation tests (brute force over the numpy oracle) ----------------------------------

# prompts padded on the left and on the right; the unpadded prompts are PROMPTS[row][PROMPT_MASKS[row] > 0]
PROMPTS = np.array([[0, 0, 2, 14, 9, 3], [2, 21, 7, 30, 3, 0]])
PROMPT_MASKS = (PROMPTS != 0).astype(np.int64)


def unilm_log_probs(config, params, prompt: np.ndarray, continuations: np.ndarray) -> np.ndarray:
    """float64 log-probabilities ``[N, n + 1, V]`` of the next token after ``prompt + continuations[:, :k]``, for
    every ``k <= n``, from one full UniLM pass per row (prompt: type 0, continuation: type 1)."""
    rows, new = continuations.shape
    ids = np.concatenate([np.repeat(prompt[None], rows, 0), continuations], axis=1)
    types = np.concatenate([np.zeros((rows, len(prompt)), np.int64), np.ones((rows, new), np.int64)], axis=1)
    logits = forward(config, params, "causal_lm", input_ids=ids, token_type_ids=types)["logits"]
    logits = logits[:, len(prompt) - 1 :]
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


# ---- numpy oracle vs bert4keras and JunnYu ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(HEADS))
def test_numpy_oracle_equals_bert4keras_and_junnyu(variant: str) -> None:
    config, params, data = golden(variant)
    runs = {"": oracle_run(config, params, data, variant), "zero/": oracle_run(config, params, data, variant, True)}
    compared = {"bert4keras": set(), "junnyu": set()}
    for key, expected in data.items():
        source, _, field = key.partition("/")
        if source not in compared or field.startswith("quirk/"):
            continue
        tag, name = ("zero/", field.removeprefix("zero/")) if field.startswith("zero/") else ("", field)
        np.testing.assert_allclose(runs[tag][name], expected, rtol=0, atol=ATOL["float32"], err_msg=key)
        compared[source].add(field)
    assert compared["bert4keras"] == COMPARED[variant]
    # JunnYu's masked LM has no pooler and its zero-type runs are only needed for Sim's sentence vectors
    junnyu = {f for f in COMPARED[variant] if variant == "sim" or not f.startswith("zero/")}
    assert compared["junnyu"] == junnyu


def test_unilm_logits_depend_on_the_segments_and_sentence_vectors_on_the_source_only() -> None:
    config, params, data = golden("sim")
    mixed, zero = oracle_run(config, params, data, "sim"), oracle_run(config, params, data, "sim", True)
    assert np.abs(mixed["logits"] - zero["logits"]).max() > 0.1
    # row 2: [CLS] x x [SEP] (types 0) then target (types 1): [CLS] sees the source only, so its pooled vector is
    # that of the source encoded alone
    source = {k: v[2:3, :4] for k, v in data.items() if k.startswith("in/")}
    alone = oracle_run(config, params, source, "sim")
    np.testing.assert_allclose(mixed["pooler_output"][2:3], alone["pooler_output"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", ["sim", "gpt"])
def test_junnyu_first_pass_quirk_is_documented_not_copied(variant: str) -> None:
    """JunnYu's 2-D mask is never causal (nor UniLM) on a pass without a cache: its logits then differ from the
    rule that bert4keras (and our oracle) apply; with an explicit 3-D mask it agrees (previous test)."""
    config, params, data = golden(variant)
    ours = oracle_run(config, params, data, variant)
    assert np.abs(data["junnyu/quirk/logits"] - ours["logits"]).max() > 0.1
    bidirectional = config.copy(is_decoder=False, unilm=False)
    np.testing.assert_allclose(
        oracle_run(bidirectional, params, data, variant)["logits"],
        data["junnyu/quirk/logits"],
        rtol=0,
        atol=ATOL["float32"],
    )


@pytest.mark.parametrize("variant", ["sim", "gpt"])
def test_explicit_3d_mask_gives_the_same_logits_as_the_config_rule(variant: str) -> None:
    config, params, data = golden(variant)
    ids, types, padding = data["in/input_ids"], data["in/token_type_ids"], data["in/attention_mask"]
    if variant == "sim":
        mask = unilm_mask(types, padding)
    else:
        mask = causal_mask(ids.shape[1], ids.shape[1])[None] * padding[:, None, :]
    plain = config.copy(is_decoder=False, unilm=False)
    out = forward(plain, params, HEADS[variant], input_ids=ids, token_type_ids=types, attention_mask=mask)
    np.testing.assert_allclose(out["logits"], data["bert4keras/logits"], rtol=0, atol=ATOL["float32"])


# ---- masks ------------------------------------------------------------------------------------------------------


def test_unilm_mask_worked_example() -> None:
    types = np.array([[0, 0, 0, 0, 1, 1, 1, 0, 0]])  # C = [0,0,0,0,1,2,3,3,3]
    allowed = [4, 4, 4, 4, 5, 6, 9, 9, 9]  # row i allows keys 0 .. allowed[i] - 1
    expected = np.array([[int(j < n) for j in range(9)] for n in allowed])
    np.testing.assert_array_equal(unilm_mask(types)[0], expected)
    padding = np.array([[1, 1, 1, 1, 1, 1, 1, 0, 0]])
    expected[:, 7:] = 0
    np.testing.assert_array_equal(unilm_mask(types, padding)[0], expected)
    # a cached step: the last two positions as queries see what their rows of the full mask see
    np.testing.assert_array_equal(unilm_mask(types, padding, query_length=2)[0], expected[7:])
    np.testing.assert_array_equal(unilm_mask(np.zeros((1, 5), dtype=int)), np.ones((1, 5, 5)))


def test_unilm_mask_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"token_type_ids must be \[batch, length\]"):
        unilm_mask(np.zeros(5))
    with pytest.raises(ValueError, match="must have the same shape"):
        unilm_mask(np.zeros((1, 5)), np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"query_length must be in \[1, 5\]"):
        unilm_mask(np.zeros((1, 5)), query_length=6)


# ---- config -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(HEADS))
def test_variant_config_round_trips_through_config_json(variant: str, tmp_path) -> None:
    config, _, _ = golden(variant)
    assert {k: getattr(config, k) for k in VARIANT_FIELDS[variant]} == VARIANT_FIELDS[variant]
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    for key in ("norm_type", "use_bias", "pooler_activation", "add_pooling_layer", "unilm"):
        assert written[key] == getattr(config, key)
    assert RoFormerConfig.from_pretrained(tmp_path) == config


def test_junnyu_config_json_keys_are_read() -> None:
    v2 = RoFormerConfig.from_pretrained(FIXTURES / "family" / "v2_junnyu")
    assert (v2.norm_type, v2.use_bias, v2.hidden_act, v2.has_lm_transform) == ("rms_norm", False, "relu", False)
    sim = RoFormerConfig.from_pretrained(FIXTURES / "family" / "sim_junnyu", unilm=True, add_pooling_layer=True)
    assert (sim.pooler_activation, sim.is_decoder, sim.norm_type, sim.use_bias) == ("linear", True, "layer_norm", True)
    assert sim.extra["transformers_version"] == "4.50.3"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("norm_type", "rms", r"norm_type must be one of \('layer_norm', 'rms_norm'\), got 'rms'"),
        ("use_bias", "no", "use_bias must be true or false, got 'no'"),
        ("unilm", 1, "unilm must be true or false, got 1"),
        ("add_pooling_layer", None, "add_pooling_layer must be true or false, got None"),
        ("pooler_activation", "tan", r"pooler_activation 'tan' is not one of .*'linear' for RoFormer-Sim"),
    ],
)
def test_bad_family_values_name_the_field(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoFormerConfig(**{field: value})


def test_rms_norm_needs_embedding_size_equal_to_hidden_size() -> None:
    with pytest.raises(ValueError, match="norm_type='rms_norm' needs embedding_size == hidden_size"):
        variant_config("v2", hidden_size=64, num_attention_heads=4, embedding_size=32)
    with pytest.raises(ValueError, match="unknown RoFormer variant 'v3'; known: v1, v2, sim, gpt"):
        variant_config("v3")


# ---- weight schema and checkpoint checks ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["v2", "sim"])
def test_schema_equals_the_junnyu_checkpoint(variant: str) -> None:
    """The keys of JunnYu's saved checkpoint are exactly our schema (tied copies included), with our shapes; the
    checkpoint loads through the core's check and holds the golden weights."""
    pytest.importorskip("torch")  # reading pytorch_model.bin
    config, params, _ = golden(variant)
    _, state = load_checkpoint(FIXTURES / "family" / f"{variant}_junnyu")
    schema = {s.name: s.shape for s in model_schema(config, HEADS[variant]) if s.kind != ROTARY_TABLE}
    assert {k: tuple(v.shape) for k, v in state.items()} == schema
    plan = resolve_checkpoint(config, HEADS[variant], state)
    assert plan.newly_initialized == [] and plan.ignored == []
    assert plan.arrays.keys() == params.keys()
    for name, value in params.items():
        np.testing.assert_array_equal(plan.arrays[name], value, err_msg=name)


def test_variant_schemas_have_what_each_member_has() -> None:
    sizes = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    v1 = {s.name for s in model_schema(variant_config("v1", **sizes), "masked_lm")}
    v2_specs = model_schema(variant_config("v2", **sizes), "masked_lm")
    v2 = {s.name for s in v2_specs}
    assert not [n for n in v2 if n.endswith(".bias") or "LayerNorm" in n]
    assert v1 - v2 == {n for n in v1 if n.endswith(".bias") or "LayerNorm" in n or "transform" in n}
    assert [s.name for s in v2_specs if s.name.startswith("cls.")] == ["cls.predictions.decoder.weight"]
    assert [s.name for s in vocab_params(variant_config("v2", **sizes), "masked_lm")] == [
        "roformer.embeddings.word_embeddings.weight"
    ]
    sim = {s.name for s in model_schema(variant_config("sim", **sizes), "causal_lm")}
    assert sim - v1 == {"roformer.pooler.dense.weight", "roformer.pooler.dense.bias"}
    assert infer_variant_fields(v2) == {"norm_type": "rms_norm", "add_pooling_layer": False, "use_bias": False}
    assert infer_variant_fields(sim) == {"norm_type": "layer_norm", "add_pooling_layer": True, "use_bias": True}


def test_original_checkpoints_hold_the_golden_weights() -> None:
    """The committed bert4keras checkpoints, read with TensorFlow and renamed by the converter's rule, are the
    golden weights; the V2 one is recognisable from its variables alone (bert_config.json does not say)."""
    tf = pytest.importorskip("tensorflow")
    from roformer_conversion.original import original_to_canonical

    for variant in HEADS:
        _, params, _ = golden(variant)
        reader = tf.train.load_checkpoint(str(FIXTURES / "family" / f"{variant}_bert4keras" / "bert_model.ckpt"))
        state = {}
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            state[original_to_canonical(name)] = value.T if name.endswith("/kernel") else value
        assert state.keys() == params.keys(), variant
        for name, value in params.items():
            np.testing.assert_array_equal(state[name], value, err_msg=name)
        fields = infer_variant_fields(state)
        assert fields["norm_type"] == VARIANT_FIELDS[variant].get("norm_type", "layer_norm")
        assert fields["add_pooling_layer"] == (variant == "sim")


def test_v2_checkpoint_with_a_v1_config_says_which_fields_to_set() -> None:
    """A user loading JunnYu's V2 directory with a config that lacks the V2 fields gets the fields to set, in the
    checks every port (resolve_checkpoint) and the converter (check_state_dict) use."""
    pytest.importorskip("torch")
    directory = FIXTURES / "family" / "v2_junnyu"
    config, state = load_checkpoint(directory, norm_type="layer_norm", use_bias=True)
    with pytest.raises(CheckpointMismatchError, match=re.escape(V2_HINT)) as info:
        resolve_checkpoint(config, "masked_lm", state, source=str(directory))
    assert "missing: roformer.embeddings.LayerNorm.weight" in str(info.value)
    with pytest.raises(CheckpointMismatchError, match=re.escape(V2_HINT)):
        check_state_dict(model_schema(config, "masked_lm"), state)
    with pytest.raises(CheckpointMismatchError, match=re.escape(V2_HINT)):  # the bare model too
        resolve_checkpoint(config, "model", state)


@pytest.mark.parametrize("head", ["masked_lm", "model", "sequence_classification"])
def test_v1_checkpoint_with_a_v2_config_says_which_fields_to_set(head: str) -> None:
    config, params, _ = golden("v1")
    v2 = config.copy(norm_type="rms_norm", use_bias=False)
    with pytest.raises(CheckpointMismatchError, match=re.escape(V1_HINT)):
        resolve_checkpoint(v2, head, params)


def test_pooler_checkpoint_and_config() -> None:
    """JunnYu's Sim config.json does not say that the model has a pooler; its weights do, and load_checkpoint gives
    the config one (an explicit add_pooling_layer=False names the field instead of dropping the pooler silently).
    A config with a pooler loads a pooler-less checkpoint with the pooler newly initialized."""
    pytest.importorskip("torch")
    config, state = load_checkpoint(FIXTURES / "family" / "sim_junnyu")
    assert config.add_pooling_layer and infer_variant_fields(state)["add_pooling_layer"]
    assert resolve_checkpoint(config, "causal_lm", state).newly_initialized == []
    config, state = load_checkpoint(FIXTURES / "family" / "sim_junnyu", add_pooling_layer=False)
    with pytest.raises(CheckpointMismatchError, match=r"has a pooler \(pooler.dense\); load it with add_pooling_l"):
        resolve_checkpoint(config, "causal_lm", state)
    v1, params, _ = golden("v1")
    plan = resolve_checkpoint(v1.copy(add_pooling_layer=True), "masked_lm", params)
    assert plan.newly_initialized == ["roformer.pooler.dense.weight", "roformer.pooler.dense.bias"]


# ---- ports ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", backend_params())
def test_a_v2_checkpoint_loaded_as_v1_is_an_error_in_every_port(backend: str) -> None:
    """What transformers does silently (29 weights missing, LayerNorm and a random head in their place) is an error
    in every framework, naming the fields to set."""
    be = load_backend(backend)
    with pytest.raises(ValueError, match=re.escape(V2_HINT)):
        be.from_pretrained("masked_lm", FAMILY / "v2_junnyu", norm_type="layer_norm", use_bias=True)


# ---- numpy oracle vs JunnYu's seven classes ---------------------------------------------------------------------

# JunnYu's classes, by our head names: written by `scripts/make_family_golden.py --junnyu-heads`
JUNNYU_HEADS = {
    "model": {"last_hidden_state"},
    "masked_lm": {"logits", "loss"},
    "causal_lm": {"logits", "pooler_output", "loss"},  # JunnYu's causal LM always has a pooler
    "sequence_classification": {"logits", "loss"},
    "multiple_choice": {"logits", "loss"},
    "token_classification": {"logits", "loss"},
    "question_answering": {"start_logits", "end_logits", "loss"},
}
JUNNYU_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def junnyu_expected(variant: str, head: str) -> set[str]:
    """The ``<run>/<field>`` a fixture must hold (a missing one would make the comparison vacuous)."""
    fields = JUNNYU_HEADS[head] | ({"pooler_output"} if head == "model" and variant == "sim" else set())
    if variant != "sim" or head not in ("multiple_choice", "token_classification"):
        return {f"main/{f}" for f in fields}
    # JunnYu's multiple choice and token-classification loss take only a 2-D mask: no UniLM there
    return {f"bidirectional/{f}" for f in fields} | ({"main/logits"} if head == "token_classification" else set())


@pytest.mark.parametrize("head", list(JUNNYU_HEADS))
@pytest.mark.parametrize("variant", ["v1", "v2", "sim"])
def test_numpy_oracle_equals_junnyu_on_every_head(variant: str, head: str) -> None:
    """Every output and loss of each of JunnYu's classes on seeded random weights (its state-dict keys are our
    canonical names, exactly). Run ``main`` gave JunnYu the 3-D mask stating our causal / UniLM rule (its 2-D mask
    is never causal without a cache). Two deliberate differences, asserted rather than skipped (docs/variants.md,
    "Where the oracles differ"):

    * JunnYu's multiple choice flattens the mask to ``[B * C, L]`` and its token-classification loss indexes
      ``attention_mask.view(-1)``: both take only a 2-D mask, so Sim's (UniLM) run ``bidirectional`` is JunnYu
      with the padding mask, equal to our config without the UniLM rule and different from ours with it.
    * JunnYu's token-classification loss ignores the positions where the 2-D mask is 0 whatever their labels; ours
      (as transformers') lets the labels decide (-100 is ignored). The fixture labels padding too: ours equals
      JunnYu's loss with -100 written at padding and differs with the labels as given.
    """
    data = dict(np.load(GOLDEN / f"junnyu_heads_{variant}.npz"))
    base = RoFormerConfig.from_dict(json.loads(str(data["config"])))
    config = base.copy(**json.loads(str(data[f"{head}/config"])))  # a pooler where JunnYu's class has one
    encoder = "" if head == "model" else "roformer."  # the bare model's state dict has no "roformer." prefix
    names = [s.name for s in model_schema(config, head) if s.stored and s.kind != ROTARY_TABLE]
    params = {}
    for name in names:
        shared = f"param/roformer.{name.removeprefix(encoder)}"
        params[name] = data[shared] if name.startswith(encoder) and shared in data else data[f"{head}/param/{name}"]
    stored = {k for k in data if k.startswith(f"{head}/param/")}
    assert stored == {f"{head}/param/{n}" for n in names if f"{head}/param/{n}" in data}  # none left unused
    where = "multiple_choice/in" if head == "multiple_choice" else "in"
    inputs = {k: data[f"{where}/{k}"] for k in JUNNYU_INPUTS}
    targets = {k.rpartition("/")[2]: v for k, v in data.items() if k.startswith(f"{head}/in/")}
    targets = {k: v for k, v in targets.items() if k not in JUNNYU_INPUTS}
    assert bool(targets) == (head != "model")

    def ours(run_config: RoFormerConfig, **run_targets) -> dict:
        return forward(run_config, params, head, **{k: v.copy() for k, v in inputs.items()}, **run_targets)

    compared = set()
    for run in ("main", "bidirectional"):
        expected = {k.rpartition("/")[2]: v for k, v in data.items() if k.startswith(f"{head}/{run}/")}
        if not expected:
            continue
        run_config = config if run == "main" else config.copy(unilm=False, is_decoder=False)
        run_targets = targets if "loss" in expected else {}
        if head == "token_classification" and run_targets:
            padded = inputs["attention_mask"] == 0
            assert (targets["labels"][padded] != -100).all()  # JunnYu got labels on padding
            raw = ours(run_config, **targets)["loss"]
            assert abs(raw - expected["loss"]) > 1e-3, "JunnYu's loss ignores padded positions; ours does not"
            run_targets = {"labels": np.where(padded, -100, targets["labels"])}
        out = ours(run_config, **run_targets)
        for field, value in expected.items():
            np.testing.assert_allclose(out[field], value, rtol=0, atol=ATOL["float32"], err_msg=f"{run}/{field}")
            compared.add(f"{run}/{field}")
        if run == "bidirectional":
            assert config.unilm
            assert np.abs(ours(config)["logits"] - expected["logits"]).max() > 1e-3, "our UniLM rule is not JunnYu's"
    assert compared == junnyu_expected(variant, head)
