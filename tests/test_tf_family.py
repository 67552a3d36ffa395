"""The RoFormer family in TensorFlow / Keras 3 (docs/variants.md): what the shared tests in test_family_models.py do
not reach.

The UniLM rule in TensorFlow ops against the core's mask (also under XLA and with generate's fixed-size cache),
graph and XLA against eager on V2 and Sim, the blocked long-sequence attention with the UniLM rule and with an
explicit 3-D mask, Keras ``fit`` on a V2 masked LM, a Sim model through a ``.keras`` file, the mixed bfloat16
policy on V2, ``TFRoFormerModel(config, add_pooling_layer=...)``, and beam search and top-p sampling on Sim with
padded prompts against a float64 recomputation. The port has no gradient checkpointing (nor has it for V1).
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
roformer_tf = pytest.importorskip("roformer_tf")

from roformer_core import get_head, numpy_model  # noqa: E402
from roformer_core.masks import unilm_mask  # noqa: E402
from roformer_core.variants import variant_config  # noqa: E402
from roformer_tf import TFRoFormerForMaskedLM, TFRoFormerModel  # noqa: E402
from roformer_tf.layers import _attention_blocks, unilm_keep  # noqa: E402

from .test_family_core import PROMPT_MASKS, PROMPTS, unilm_log_probs  # noqa: E402
from .tolerances import ATOL  # noqa: E402

SIZES = {
    "vocab_size": 60,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 32,
    "hidden_act": "relu",
}
HEAD = {"v1": "masked_lm", "v2": "masked_lm", "sim": "causal_lm"}
# a batch with padding on either side and, for Sim, a source (type 0) and a target (type 1) segment
IDS = np.array([[2, 9, 8, 3, 17, 19, 3, 0, 0], [0, 0, 2, 5, 7, 3, 11, 13, 3]])
MASK = (IDS != 0).astype(np.int64)
TYPES = np.array([[0, 0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 1, 1, 1]])


def member(variant: str, seed: int = 0, scale: float = 0.2, **overrides):
    """A tiny model of one member on seeded numpy weights: ``(model, config, params)``."""
    config = variant_config(variant, **{**SIZES, **overrides})
    head = HEAD[variant]
    params = numpy_model.init_params(config, head, seed=seed, scale=scale)
    model = getattr(roformer_tf, "TF" + get_head(head).class_name).from_state_dict(config, params)
    return model, config, params


# ---- the UniLM rule --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("past", [0, 3, 8])
def test_unilm_rule_in_tf_ops_equals_the_core_mask(past: int) -> None:
    """The rule the port computes for the new tokens alone equals the core's mask of the whole sequence's types (the
    rows of the new tokens), for any split into cached and new positions, eagerly and under XLA with a traced cache
    length; keys past the new ones (generate's unwritten cache buffer) are never attended."""
    types = np.random.default_rng(0).integers(0, 2, (4, 12))
    expected = unilm_mask(types, query_length=12 - past).astype(bool)
    got = unilm_keep(tf.constant(types[:, past:]), past, 12).numpy()
    assert got.shape == (4, 1, 12 - past, 12)
    np.testing.assert_array_equal(got[:, 0], expected)
    in_buffer = tf.function(lambda t, p: unilm_keep(t, p, 16), jit_compile=True)
    buffered = in_buffer(tf.constant(types[:, past:]), tf.constant(past)).numpy()[:, 0]
    np.testing.assert_array_equal(buffered[:, :, :12], expected)
    assert not buffered[:, :, 12:].any()


# ---- graph, XLA, attention paths, precision --------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["v2", "sim"])
def test_graph_and_xla_equal_eager_and_the_oracle(variant: str) -> None:
    """The same forward eagerly, in a tf.function graph and XLA-compiled (Sim's rule is built from the token types
    inside the graph): equal to each other and to the float64 oracle, pooler output included."""
    model, config, params = member(variant)
    inputs = {"input_ids": IDS, "attention_mask": MASK, "token_type_ids": TYPES}
    expected = numpy_model.forward(config, params, HEAD[variant], **inputs)
    fields = ["logits"] + (["pooler_output"] if config.add_pooling_layer else [])

    def forward(ids, mask, types):
        out = model(ids, attention_mask=mask, token_type_ids=types, training=False)
        return {field: out[field] for field in fields}

    tensors = [tf.constant(inputs[k]) for k in ("input_ids", "attention_mask", "token_type_ids")]
    runs = {
        "eager": forward(*tensors),
        "graph": tf.function(forward)(*tensors),
        "xla": tf.function(forward, jit_compile=True)(*tensors),
    }
    for name, out in runs.items():
        for field in fields:
            np.testing.assert_allclose(
                out[field].numpy(), expected[field], rtol=0, atol=ATOL["float32"], err_msg=f"{name} {field}"
            )


def test_sim_without_token_types_is_one_bidirectional_segment() -> None:
    """Sim sentence vectors: no token types means one segment (every unpadded key visible, as all-zero types), equal
    to the float64 oracle; a cached step's tokens then see the cached prefix and each other."""
    model, config, params = member("sim")
    zeros = np.zeros_like(IDS)
    expected = numpy_model.forward(
        config, params, "causal_lm", input_ids=IDS, attention_mask=MASK, token_type_ids=zeros
    )
    out = model(IDS, attention_mask=MASK)
    for field in ("logits", "pooler_output"):
        np.testing.assert_allclose(out[field].numpy(), expected[field], rtol=0, atol=ATOL["float32"], err_msg=field)
    first = model(IDS[:, :-2], attention_mask=MASK[:, :-2], use_cache=True)
    step = model(IDS[:, -2:], attention_mask=MASK, past_key_values=first.past_key_values, use_cache=True)
    # the prefix was encoded without the two new tokens: it sees only itself, they see everything
    seen = np.ones((IDS.shape[1],) * 2, np.int64)
    seen[:-2, -2:] = 0
    split = numpy_model.forward(config, params, "causal_lm", input_ids=IDS, attention_mask=seen[None] * MASK[:, None])
    np.testing.assert_allclose(step.logits.numpy(), split["logits"][:, -2:], rtol=0, atol=ATOL["cache"])


def test_blocked_attention_with_the_unilm_rule_and_an_explicit_3d_mask() -> None:
    """Sequences long enough for the blocked attention path (a slice of heads per step): Sim's UniLM rule (source,
    target, padding) and a V1 encoder given an explicit ``[B, L, L]`` mask both equal the float64 oracle."""
    length = 600
    rng = np.random.default_rng(1)
    ids = rng.integers(1, SIZES["vocab_size"], (2, length))
    padding = np.ones_like(ids)
    padding[1, -40:] = 0
    types = np.zeros_like(ids)
    types[0, 250:] = 1
    types[1, 400:] = 1
    shape = tf.TensorShape((2, SIZES["num_attention_heads"], length, SIZES["hidden_size"] // 4))
    assert _attention_blocks(shape, shape) is not None  # the blocked path, not the batched one

    sim, config, params = member("sim")
    expected = numpy_model.forward(
        config, params, "causal_lm", input_ids=ids, attention_mask=padding, token_type_ids=types
    )
    got = sim(ids, attention_mask=padding, token_type_ids=types)
    np.testing.assert_allclose(got.logits.numpy(), expected["logits"], rtol=0, atol=ATOL["float32"])

    v1, config, params = member("v1", max_position_embeddings=length)
    mask = unilm_mask(rng.integers(0, 2, ids.shape), padding)  # [B, L, L], a different rule on every row
    expected = numpy_model.forward(config, params, "masked_lm", input_ids=ids, attention_mask=mask)
    got = v1(ids, attention_mask=mask)
    np.testing.assert_allclose(got.logits.numpy(), expected["logits"], rtol=0, atol=ATOL["float32"])


def test_mixed_bfloat16_v2_runs_close_to_float32() -> None:
    """A V2 masked LM built under Keras' mixed bfloat16 policy computes in bfloat16 (RMS norm included) within the
    bfloat16 tolerance of the float64 oracle, relative to the logits' scale."""
    config = variant_config("v2", **SIZES)
    params = numpy_model.init_params(config, "masked_lm", seed=0, scale=0.2)
    expected = numpy_model.forward(config, params, "masked_lm", input_ids=IDS, attention_mask=MASK)["logits"]
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = TFRoFormerForMaskedLM.from_state_dict(config, params)
        out = model(IDS, attention_mask=MASK, labels=np.where(MASK > 0, IDS, -100))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.logits.dtype == tf.bfloat16 and out.loss.dtype == tf.float32
    error = np.abs(out.logits.numpy().astype(np.float32) - expected)[MASK.astype(bool)]
    assert error.max() < ATOL["bfloat16"] * np.abs(expected).max(), (error.max(), np.abs(expected).max())


# ---- Keras ---------------------------------------------------------------------------------------------------------


def test_keras_fit_trains_a_v2_masked_lm() -> None:
    """``compile`` + ``fit`` (XLA-compiled steps) on a fresh V2 masked LM lowers its own loss; the trained model
    still has V2's parameters only (no biases, no norm weights, no LM transform)."""
    keras.utils.set_random_seed(0)
    model = TFRoFormerForMaskedLM(variant_config("v2", **SIZES, hidden_dropout_prob=0.0))
    ids = np.random.default_rng(2).integers(1, SIZES["vocab_size"], (32, 8))
    data = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": ids}).batch(8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    losses = model.fit(data, epochs=4, verbose=0, shuffle=False).history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    names = set(model.canonical_state_dict())
    assert not any(name.endswith(".bias") or "LayerNorm" in name or "transform" in name for name in names), names


def test_keras_file_keeps_sims_pooler_and_unilm_rule(tmp_path) -> None:
    """``model.save("x.keras")`` then ``keras.models.load_model``: the Sim causal LM comes back with its config
    (unilm, the linear pooler) and gives the same logits and pooler output on a seq2seq batch."""
    model, _, _ = member("sim")
    path = tmp_path / "sim.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.config.unilm and loaded.config.add_pooling_layer and loaded.config.pooler_activation == "linear"
    before = model(IDS, attention_mask=MASK, token_type_ids=TYPES)
    after = loaded(IDS, attention_mask=MASK, token_type_ids=TYPES)
    for field in ("logits", "pooler_output"):
        np.testing.assert_array_equal(after[field].numpy(), before[field].numpy())


def test_model_add_pooling_layer_overrides_the_config(tmp_path) -> None:
    """``TFRoFormerModel(config, add_pooling_layer=True)`` on a V1 config: a pooler whose output equals the oracle's,
    the caller's config untouched, saved and reloaded with it; ``False`` drops Sim's pooler."""
    config = variant_config("v1", **SIZES)
    keras.utils.set_random_seed(0)
    model = TFRoFormerModel(config, add_pooling_layer=True)
    assert not config.add_pooling_layer and model.config.add_pooling_layer
    params = model.canonical_state_dict()
    assert {"pooler.dense.weight", "pooler.dense.bias"} <= set(params)
    expected = numpy_model.forward(model.config, params, "model", input_ids=IDS, attention_mask=MASK)
    pooled = model(IDS, attention_mask=MASK).pooler_output.numpy()
    np.testing.assert_allclose(pooled, expected["pooler_output"], rtol=0, atol=ATOL["float32"])
    model.save_pretrained(tmp_path)
    again = TFRoFormerModel.from_pretrained(tmp_path)
    np.testing.assert_array_equal(again(IDS, attention_mask=MASK).pooler_output.numpy(), pooled)

    bare = TFRoFormerModel(variant_config("sim", **SIZES), add_pooling_layer=False)
    assert bare.pooler is None and not bare.config.add_pooling_layer
    assert "pooler_output" not in bare(IDS)


# ---- generation ------------------------------------------------------------------------------------------------


def test_beam_search_on_sim_finds_the_best_continuation_of_padded_prompts() -> None:
    """With as many beams as tokens, beam search over two steps is exhaustive: each padded prompt's result is the
    two-token continuation of highest float64 log-probability under the UniLM rule, found by brute force."""
    model, config, params = member("sim", eos_token_id=None)
    vocab = config.vocab_size
    sequences = np.asarray(model.generate(PROMPTS, attention_mask=PROMPT_MASKS, num_beams=vocab, max_new_tokens=2))
    assert sequences.shape == (2, PROMPTS.shape[1] + 2)
    for row in range(2):
        prompt = PROMPTS[row][PROMPT_MASKS[row] > 0]
        first = unilm_log_probs(config, params, prompt, np.zeros((1, 0), np.int64))[0, 0]  # [V]
        second = unilm_log_probs(config, params, prompt, np.arange(vocab)[:, None])[:, 1]  # [V, V]
        best = np.unravel_index(np.argmax(first[:, None] + second), (vocab, vocab))
        np.testing.assert_array_equal(sequences[row, -2:], best)
        np.testing.assert_array_equal(sequences[row, : PROMPTS.shape[1]][-len(prompt) :], prompt)


def test_top_p_sampling_on_sim_draws_from_the_nucleus_of_padded_prompts() -> None:
    """XLA-compiled top-p sampling: every sampled token lies in the top-p nucleus of the float64 UniLM distribution
    of its own unpadded prompt, and the same generator seed draws the same tokens."""
    model, config, params = member("sim", eos_token_id=None, scale=0.5)
    settings = {"do_sample": True, "top_p": 0.6, "temperature": 0.5, "max_new_tokens": 5}

    def sample(seed: int) -> np.ndarray:
        generator = tf.random.Generator.from_seed(seed)
        return np.asarray(model.generate(PROMPTS, attention_mask=PROMPT_MASKS, generator=generator, **settings))

    sequences = sample(3)
    np.testing.assert_array_equal(sample(3), sequences)
    nucleus_sizes = []
    for row in range(2):
        prompt = PROMPTS[row][PROMPT_MASKS[row] > 0]
        new = sequences[row, PROMPTS.shape[1] :]
        scores = unilm_log_probs(config, params, prompt, new[None])[0] / settings["temperature"]  # [n, V]
        for step, token in enumerate(new):
            probs = np.exp(scores[step] - scores[step].max())
            probs /= probs.sum()
            order = np.argsort(-probs)
            # the smallest set of most likely tokens whose mass reaches top_p
            size = int(np.searchsorted(np.cumsum(probs[order]), settings["top_p"])) + 1
            nucleus_sizes.append(size)
            assert token in order[:size], (row, step, token, order[:size])
    assert max(nucleus_sizes) < config.vocab_size // 2, nucleus_sizes  # the nucleus is a real restriction
