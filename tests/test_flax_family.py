"""Flax-only behaviour of the RoFormer family (V2, Sim; docs/variants.md): the UniLM rule in jax ops, the cache,
jit + bf16, remat, beam search and top-p sampling with padded prompts, compilation counts, the pmap MLM example.

The numerics every port shares (golden outputs of both oracles, every head, greedy generation) are in
test_family_models.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("flax")
import jax.numpy as jnp  # noqa: E402

from roformer_core import numpy_model  # noqa: E402
from roformer_core.decoding import decode_on_host  # noqa: E402
from roformer_core.generation import plan_generation  # noqa: E402
from roformer_core.masks import unilm_mask  # noqa: E402
from roformer_core.safetensors_io import read_safetensors  # noqa: E402
from roformer_flax import FlaxRoFormerCache, FlaxRoFormerForCausalLM, FlaxRoFormerForMaskedLM, FlaxRoFormerModel  # noqa: E402
from roformer_flax.generation import _STEPS  # noqa: E402
from roformer_flax.layers import unilm_rule  # noqa: E402

from .test_family_core import golden  # noqa: E402
from .tolerances import ATOL  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# left-padded prompts of the Sim fixture's vocabulary: [CLS] source [SEP], the second row two tokens shorter
PROMPTS = np.array([[2, 15, 27, 33, 3], [0, 0, 2, 11, 3]])
PROMPT_MASK = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])


def _sim() -> FlaxRoFormerForCausalLM:
    config, params, _ = golden("sim")
    return FlaxRoFormerForCausalLM.from_state_dict(config.copy(eos_token_id=None), params)


def _oracle_logits(model, sequences: np.ndarray, new: int) -> np.ndarray:
    """float64 logits ``[B, T, V]`` of a full UniLM pass over prompts (type 0) and ``new`` generated tokens (type
    1) of the numpy oracle, with the prompts' padding."""
    mask = np.concatenate([PROMPT_MASK, np.ones((len(sequences), new), np.int64)], axis=1)
    types = np.concatenate([np.zeros_like(PROMPTS), np.ones((len(sequences), new), np.int64)], axis=1)
    _, params, _ = golden("sim")
    return numpy_model.forward(
        model.config, params, "causal_lm", input_ids=sequences, attention_mask=mask, token_type_ids=types
    )["logits"]


def test_unilm_rule_in_jax_equals_the_cores_mask_with_and_without_cache() -> None:
    """The compiled rule (cumsum + compare) is the core's ``unilm_mask``: on a whole sequence, and on a step of 3
    tokens after a cached prefix of 4 (the slots not filled yet hidden)."""
    rng = np.random.default_rng(0)
    types = rng.integers(0, 2, (3, 9))
    whole, _ = unilm_rule(jnp.asarray(types), None)
    np.testing.assert_array_equal(np.asarray(whole), unilm_mask(types).astype(bool))

    from roformer_core import RoFormerConfig

    config = RoFormerConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, unilm=True)
    cache = FlaxRoFormerCache.empty(config, 3, 12)
    _, segments = unilm_rule(jnp.asarray(types[:, :4]), cache)
    cache = cache.replace(segments=segments, index=jnp.asarray(4, jnp.int32))
    step, _ = unilm_rule(jnp.asarray(types[:, 4:7]), cache)  # [3, 3, 12]
    expected = unilm_mask(types[:, :7], query_length=3).astype(bool)
    np.testing.assert_array_equal(np.asarray(step)[:, :, :7], expected)
    assert not np.asarray(step)[:, :, 7:].any()


def test_cached_unilm_steps_equal_the_full_pass() -> None:
    """Sim on the fixture's mixed-segment padded batch: a cached prefix of 5 positions, then the remaining 4 in one
    step with their token types (target tokens and padding), gives the logits of one full pass of the numpy
    oracle."""
    model = _sim()
    config, params, data = golden("sim")
    ids, types, mask = data["in/input_ids"], data["in/token_type_ids"], data["in/attention_mask"]
    inputs = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    expected = numpy_model.forward(config, params, "causal_lm", **inputs)
    causal = numpy_model.forward(config.copy(unilm=False), params, "causal_lm", **inputs)
    assert np.abs(causal["logits"] - expected["logits"]).max() > 0.1  # the rule changes these logits
    cache, got = None, []
    for start, stop in ((0, 5), (5, 9)):
        out = model(
            ids[:, start:stop],
            attention_mask=mask[:, :stop],
            token_type_ids=types[:, start:stop],
            past_key_values=cache,
            use_cache=True,
        )
        cache = out.past_key_values
        got.append(np.asarray(out.logits))
    np.testing.assert_allclose(np.concatenate(got, axis=1), expected["logits"], rtol=0, atol=ATOL["cache"])


def test_unilm_on_long_inputs_takes_the_blocked_path_and_equals_the_oracle() -> None:
    """Past 128 queries the fused attention runs block by block of queries; the UniLM rule (a different mask per
    query) must follow each block: 2 x 300 tokens with source, target and padding equal the numpy oracle."""
    model = _sim()
    config, params, _ = golden("sim")
    rng = np.random.default_rng(1)
    ids = rng.integers(4, config.vocab_size, (2, 300))
    types = (np.arange(300)[None] >= np.array([[120], [200]])).astype(np.int64)
    mask = np.ones((2, 300), np.int64)
    mask[1, 280:] = 0
    inputs = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    expected = numpy_model.forward(config, params, "causal_lm", **inputs)["logits"]
    np.testing.assert_allclose(model(**inputs).logits, expected, rtol=0, atol=ATOL["float32"])


def test_v2_in_bfloat16_under_a_user_jit_is_close_to_float32() -> None:
    """V2's masked LM in bf16 (float32 parameters, the RMS norm computed in float32) inside the user's own
    ``jax.jit`` stays within the bf16 tolerance of the float32 model."""
    config, params, data = golden("v2")
    fp32 = FlaxRoFormerForMaskedLM.from_state_dict(config, params)
    bf16 = FlaxRoFormerForMaskedLM.from_state_dict(config, params, dtype=jnp.bfloat16)
    ids, mask = data["in/input_ids"], data["in/attention_mask"]

    @jax.jit
    def logits(p, ids, mask):
        return bf16(ids, attention_mask=mask, params=p).logits

    low = logits(bf16.params, ids, mask)
    assert low.dtype == jnp.bfloat16
    assert {x.dtype for x in jax.tree_util.tree_leaves(bf16.params)} == {jnp.dtype(jnp.float32)}
    high = np.asarray(fp32(ids, attention_mask=mask).logits)
    np.testing.assert_allclose(np.asarray(low, np.float32), high, rtol=0, atol=ATOL["bfloat16"])


def test_v2_gradient_checkpointing_gives_the_same_gradients() -> None:
    """``enable_gradient_checkpointing`` on V2 (no biases, no norm weights) rematerializes the layers and leaves
    the gradient of the masked-LM loss unchanged."""
    config, params, data = golden("v2")
    plain = FlaxRoFormerForMaskedLM.from_state_dict(config, params)
    remat = FlaxRoFormerForMaskedLM.from_state_dict(config, params)
    remat.enable_gradient_checkpointing()
    ids, mask = data["in/input_ids"], data["in/attention_mask"]
    labels = np.where(mask > 0, ids, -100)

    def grad(model):
        def loss(p):
            return model(ids, attention_mask=mask, labels=labels, params=p).loss

        return loss, jax.grad(loss)(model.params)

    loss, expected = grad(plain)
    remat_loss, got = grad(remat)
    assert "remat" in str(jax.make_jaxpr(jax.grad(remat_loss))(remat.params))
    assert "remat" not in str(jax.make_jaxpr(jax.grad(loss))(plain.params))
    for a, b in zip(jax.tree_util.tree_leaves(expected), jax.tree_util.tree_leaves(got), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_add_pooling_layer_gives_the_model_a_pooler() -> None:
    """``FlaxRoFormerModel(config, add_pooling_layer=True)`` (the reference's constructor argument) builds the
    pooler on a copy of the config; its ``pooler_output`` is the numpy oracle's."""
    config, params, data = golden("v2")
    model = FlaxRoFormerModel(config, add_pooling_layer=True, seed=3)
    assert not config.add_pooling_layer and model.config.add_pooling_layer
    assert set(model.params["pooler"]["dense"]) == {"kernel", "bias"}
    state = model.canonical_state_dict()
    ids, mask = data["in/input_ids"], data["in/attention_mask"]
    expected = numpy_model.forward(model.config, state, "model", input_ids=ids, attention_mask=mask)
    got = model(ids, attention_mask=mask)
    np.testing.assert_allclose(got.pooler_output, expected["pooler_output"], rtol=0, atol=ATOL["float32"])
    sim_config, _, _ = golden("sim")
    assert not FlaxRoFormerModel(sim_config, add_pooling_layer=False, _do_init=False).config.add_pooling_layer
    with pytest.raises(TypeError, match="add_pooling_layer must be True or False"):
        FlaxRoFormerModel(config, add_pooling_layer="yes")


class _OracleDecoder:
    """:func:`decode_on_host`'s decoder answered by full float64 passes of the numpy oracle (UniLM types: the
    prompt 0, generated tokens 1), an implementation independent of the Flax cache."""

    def __init__(self, model) -> None:
        self.model = model

    def prefill(self, input_ids, attention_mask, token_type_ids, capacity):
        self.ids, self.mask = input_ids, attention_mask
        return self._last()

    def extend(self, next_ids, beam_order):
        if beam_order is not None:
            self.ids, self.mask = self.ids[beam_order], self.mask[beam_order]
        self.ids = np.concatenate([self.ids, next_ids[:, None]], axis=1)
        self.mask = np.concatenate([self.mask, np.ones_like(self.mask[:, :1])], axis=1)
        return self._last()

    def _last(self):
        prompt = PROMPTS.shape[1]
        types = (np.arange(self.ids.shape[1]) >= prompt).astype(np.int64)[None].repeat(len(self.ids), 0)
        _, params, _ = golden("sim")
        out = numpy_model.forward(
            self.model.config, params, "causal_lm", input_ids=self.ids, attention_mask=self.mask, token_type_ids=types
        )
        return out["logits"][:, -1]

    def uniform(self, shape):
        raise AssertionError("beam search without sampling draws nothing")


def test_sim_beam_search_with_padded_prompts_equals_the_oracle_and_compiles_one_step() -> None:
    """Beam search on Sim with a left-padded batch: the tokens of the same search run on full numpy recomputations;
    every token reuses one compiled step."""
    model = _sim()
    settings = {"num_beams": 3, "max_new_tokens": 5, "num_return_sequences": 2}
    got = model.generate(PROMPTS, attention_mask=PROMPT_MASK, **settings)
    plan = plan_generation(model.config, None, dict(settings), PROMPTS, PROMPT_MASK)
    expected = decode_on_host(plan, _OracleDecoder(model))
    assert got.shape == (4, 10)
    np.testing.assert_array_equal(got, expected)
    assert len({tuple(row) for row in got[:2]}) == 2  # two different beams per prompt
    prefill, step = _STEPS[model]
    assert prefill._cache_size() == 1 and step._cache_size() == 1


def test_sim_top_p_sampling_with_padded_prompts_stays_in_the_nucleus() -> None:
    """Top-p sampling on Sim, padded prompts: every sampled token lies in the nucleus (smallest set of tokens
    whose probability reaches top_p) of the oracle's distribution at its step; the same seed gives the same tokens,
    a tiny top_p the oracle's greedy tokens; the whole loop is one compiled program."""
    model = _sim()
    new, top_p = 6, 0.6
    sample = {"max_new_tokens": new, "do_sample": True, "top_k": 0, "top_p": top_p}
    got = model.generate(PROMPTS, attention_mask=PROMPT_MASK, generator=7, **sample)
    np.testing.assert_array_equal(model.generate(PROMPTS, attention_mask=PROMPT_MASK, generator=7, **sample), got)
    assert model._jit_generate._cache_size() == 1  # one program for every step and both calls

    logits = _oracle_logits(model, got, new)[:, PROMPTS.shape[1] - 1 : -1]  # [B, new, V], the steps' scores
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    chosen = got[:, PROMPTS.shape[1] :]
    order = np.argsort(-probs, axis=-1)
    before = np.cumsum(np.take_along_axis(probs, order, -1), -1) - np.take_along_axis(probs, order, -1)
    rank = np.argmax(order == chosen[..., None], axis=-1)
    assert (np.take_along_axis(before, rank[..., None], -1) < top_p).all()
    assert (chosen != logits.argmax(-1)).any()  # it sampled: not every token is the argmax

    narrow = model.generate(PROMPTS, attention_mask=PROMPT_MASK, generator=7, **{**sample, "top_p": 1e-6})
    greedy_logits = _oracle_logits(model, narrow, new)[:, PROMPTS.shape[1] - 1 : -1]
    np.testing.assert_array_equal(narrow[:, PROMPTS.shape[1] :], greedy_logits.argmax(-1))


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_pmap_example_pretrains_a_tiny_v2_on_two_devices(tmp_path: Path) -> None:
    """``examples/flax_pmap_mlm.py --variant v2`` as a user runs it, on 2 host devices: the loss goes down and the
    checkpoint it writes is a V2 one (no biases, no norm weights) that loads back."""
    pytest.importorskip("optax")
    (tmp_path / "corpus.txt").write_text("今天天气非常好。我们去公园散步吧。\n" * 20, encoding="utf-8")
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONPATH": str(REPO),
    }
    tiny = ["--max_seq_length", "16", "--per_device_batch_size", "4", "--hidden_size", "32"]
    tiny += ["--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "64"]
    command = [sys.executable, str(REPO / "examples" / "flax_pmap_mlm.py"), "--variant", "v2", *tiny]
    command += ["--train_file", "corpus.txt", "--output_dir", "out", "--num_train_steps", "12"]
    command += ["--warmup_steps", "2", "--learning_rate", "2e-2"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    losses = json.loads((out / "trainer_state.json").read_text())["losses"]
    assert len(losses) == 12 and np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.2, losses
    config = json.loads((out / "config.json").read_text())
    assert config["norm_type"] == "rms_norm" and config["use_bias"] is False
    names = set(read_safetensors(out / "model.safetensors"))
    assert not any("LayerNorm" in name or name.endswith("bias") for name in names), sorted(names)
    model = FlaxRoFormerForMaskedLM.from_pretrained(out)
    assert model.config.norm_type == "rms_norm"
    assert np.isfinite(np.asarray(model(np.array([[2, 5, 6, 3]])).logits)).all()
