"""Every port runs the RoFormer family (V2, Sim, GPT-char; docs/variants.md).

Each backend is held to the two oracles' golden outputs (bert4keras and JunnYu's ``roformer``, fixtures written by
scripts/make_family_golden.py) and, on every head, to the float64 numpy oracle, which test_family_core holds to both
oracles. Generation with the UniLM rule is checked against a full recomputation of the whole sequence.
"""

from __future__ import annotations

import numpy as np
import pytest

from roformer_core import HEADS, get_head, numpy_model
from roformer_core.masks import causal_mask, unilm_mask

from .backends import backend_params, load_backend
from .test_family_core import FAMILY, golden
from .tolerances import ATOL

GOLDEN_HEAD = {"v2": "masked_lm", "sim": "causal_lm", "gpt": "causal_lm"}
FIELDS = ("logits", "pooler_output", "hidden_states")


def _inputs(data: dict[str, np.ndarray], zero_types: bool = False) -> dict[str, np.ndarray]:
    types = data["in/token_type_ids"]
    return {
        "input_ids": data["in/input_ids"],
        "token_type_ids": np.zeros_like(types) if zero_types else types,
        "attention_mask": data["in/attention_mask"],
    }


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("variant", list(GOLDEN_HEAD))
def test_port_equals_bert4keras_and_junnyu(backend: str, variant: str) -> None:
    """The golden head of each member on the oracles' own weights and inputs: mixed segments (the UniLM seq2seq
    mask for Sim) and all-zero segments (Sim sentence vectors)."""
    be = load_backend(backend)
    config, params, data = golden(variant)
    model = be.build(GOLDEN_HEAD[variant], config, params)
    compared = 0
    for tag in ("", "zero/"):
        out = be.run(model, _inputs(data, zero_types=bool(tag)), output_hidden_states=True)
        for source in ("bert4keras", "junnyu"):
            for field in FIELDS:
                key = f"{source}/{tag}{field}"
                if key in data:
                    np.testing.assert_allclose(out[field], data[key], rtol=0, atol=ATOL["float32"], err_msg=key)
                    compared += 1
    assert compared >= 5, compared


def _head_inputs(head: str, data: dict[str, np.ndarray], config) -> dict[str, np.ndarray]:
    inputs = _inputs(data)
    rng = np.random.default_rng(5)
    batch, length = inputs["input_ids"].shape
    if head == "multiple_choice":  # two choices per row
        inputs = {k: np.stack([v, v[::-1]], axis=1) for k, v in inputs.items()}
        inputs["labels"] = np.array([0, 1, 1, 0][:batch])
    elif head in ("masked_lm", "causal_lm", "token_classification"):
        classes = config.vocab_size if head.endswith("_lm") else config.num_labels
        inputs["labels"] = np.where(inputs["attention_mask"] > 0, rng.integers(0, classes, (batch, length)), -100)
    elif head == "sequence_classification":
        inputs["labels"] = rng.integers(0, config.num_labels, batch)
    elif head == "question_answering":
        inputs["start_positions"] = rng.integers(0, length, batch)
        inputs["end_positions"] = rng.integers(0, length, batch)
    return inputs


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("variant", ["v2", "sim"])
@pytest.mark.parametrize("head", [h.name for h in HEADS])
def test_every_head_equals_the_numpy_oracle(backend: str, variant: str, head: str) -> None:
    """All seven classes of V2 and Sim (with its pooler and UniLM mask), losses included, on random weights."""
    be = load_backend(backend)
    config, _, data = golden(variant)
    if head == "causal_lm":
        config = config.copy(is_decoder=True)
    params = numpy_model.init_params(config, head, seed=11, scale=0.2)
    inputs = _head_inputs(head, data, config)
    expected = numpy_model.forward(config, params, head, **inputs)
    got = be.run(be.build(head, config, params), inputs)
    fields = [*get_head(head).main_outputs, "loss"] + (["pooler_output"] if config.add_pooling_layer else [])
    for field in fields:
        if field in expected:
            np.testing.assert_allclose(got[field], expected[field], rtol=0, atol=ATOL["float32"], err_msg=field)
    assert ("pooler_output" in got) == bool(config.add_pooling_layer)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("variant", ["sim", "gpt"])
def test_generation_equals_full_recomputation(backend: str, variant: str) -> None:
    """Greedy decoding with the cache: the prompt (types 0) is encoded once, bidirectionally for Sim; every
    generated token (type 1) sees the prompt and the tokens before it. Each new token is the argmax of a full
    float64 pass over the whole sequence under the member's rule."""
    be = load_backend(backend)
    config, _, data = golden(variant)
    config = config.copy(eos_token_id=None)
    # weights on which the UniLM and the plain causal rule continue these prompts differently (4 of 12 tokens)
    params = numpy_model.init_params(config, "causal_lm", seed=3, scale=0.2)
    model = be.build("causal_lm", config, params)
    prompts = data["in/input_ids"][:2, :5]
    new = 6
    sequences = np.asarray(be.generate(model, prompts, max_new_tokens=new))
    assert sequences.shape == (2, 5 + new)
    np.testing.assert_array_equal(sequences[:, :5], prompts)
    # UniLM: generated tokens are the target segment (type 1); a GPT-style decoder keeps type 0
    types = np.concatenate([np.zeros_like(prompts), np.full((2, new), int(config.unilm), prompts.dtype)], axis=1)
    full = numpy_model.forward(config, params, "causal_lm", input_ids=sequences, token_type_ids=types)
    np.testing.assert_array_equal(full["logits"][:, 4:-1].argmax(-1), sequences[:, 5:])
    if variant == "sim":  # the rule matters here: a plain causal pass continues differently
        causal = config.copy(unilm=False)
        plain = numpy_model.forward(causal, params, "causal_lm", input_ids=sequences, token_type_ids=types)
        assert (plain["logits"][:, 4:-1].argmax(-1) != sequences[:, 5:]).sum() >= 3


@pytest.mark.parametrize("backend", backend_params())
def test_explicit_3d_mask_with_and_without_cache(backend: str) -> None:
    """A ``[B, Lq, Lk]`` mask (1 = attend) on a V1 encoder equals the numpy oracle, in a full pass and in a cached
    step (the step's rows of the same mask)."""
    be = load_backend(backend)
    config, params, data = golden("gpt")
    inputs = _inputs(data)
    mask = unilm_mask(inputs["token_type_ids"], inputs["attention_mask"])
    plain = config.copy(is_decoder=False)
    expected = numpy_model.forward(plain, params, "causal_lm", **{**inputs, "attention_mask": mask})
    model = be.build("causal_lm", plain, params)
    got = be.run(model, {**inputs, "attention_mask": mask})
    np.testing.assert_allclose(got["logits"], expected["logits"], rtol=0, atol=ATOL["float32"])

    decoder = be.build("causal_lm", config, params)
    ids, length = inputs["input_ids"], inputs["input_ids"].shape[1]
    full_mask = causal_mask(length, length)[None] * inputs["attention_mask"][:, None, :]
    first = be.run(
        decoder,
        {"input_ids": ids[:, :-1], "attention_mask": full_mask[:, :-1, :-1]},
        use_cache=True,
    )
    step = be.run(
        decoder,
        {"input_ids": ids[:, -1:], "attention_mask": full_mask[:, -1:, :]},
        past_key_values=first["past_key_values"],
        use_cache=True,
    )
    whole = numpy_model.forward(config, params, "causal_lm", input_ids=ids, attention_mask=full_mask)
    np.testing.assert_allclose(step["logits"][:, 0], whole["logits"][:, -1], rtol=0, atol=ATOL["cache"])


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("checkpoint, overrides", [("v2_junnyu", {}), ("sim_junnyu", {"unilm": True})])
def test_junnyu_checkpoints_load_and_save_in_their_layout(backend: str, checkpoint: str, overrides, tmp_path) -> None:
    """What users download (JunnYu's pytorch_model.bin + config.json): loads with only ``unilm=True`` for Sim (the
    pooler comes from the weights), equals JunnYu's outputs, and saves back in that layout."""
    be = load_backend(backend)
    variant = checkpoint.split("_")[0]
    head = GOLDEN_HEAD[variant]
    _, _, data = golden(variant)
    model = be.from_pretrained(head, FAMILY / checkpoint, **overrides)
    out = be.run(model, _inputs(data))
    np.testing.assert_allclose(out["logits"], data["junnyu/logits"], rtol=0, atol=ATOL["float32"])
    be.save_pretrained(model, tmp_path)
    again = be.from_pretrained(head, tmp_path)
    np.testing.assert_array_equal(be.run(again, _inputs(data))["logits"], out["logits"])
