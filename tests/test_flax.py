"""Flax-only behaviour: jit/pmap, bf16, remat, the reference's parameter tree, generate, the pmap training recipe.

The shared numerics (every head against the reference) are in test_models.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("flax")
import jax.numpy as jnp  # noqa: E402

import roformer_flax  # noqa: E402
from roformer_core import HEADS, RoFormerConfig  # noqa: E402
from roformer_core.numpy_model import init_params  # noqa: E402
from roformer_flax import training  # noqa: E402

from .cases import BASE_CONFIG  # noqa: E402
from .tolerances import ATOL  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _inputs(config: RoFormerConfig, batch: int = 2, length: int = 7, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), np.int32)
    mask[-1, -2:] = 0
    return {"input_ids": rng.integers(1, config.vocab_size, (batch, length)).astype(np.int32), "attention_mask": mask}


def _model(cls, **overrides):
    config = RoFormerConfig(**{**BASE_CONFIG, **overrides})
    head = cls.head.name
    return cls.from_state_dict(config, init_params(config, head, seed=1, scale=0.2))


def test_forward_is_jitted_and_works_inside_user_jit_and_pmap() -> None:
    model = _model(roformer_flax.FlaxRoFormerForMaskedLM)
    inputs = _inputs(model.config)
    eager = model(**inputs).logits

    @jax.jit
    def user_fn(params, input_ids, attention_mask):
        return model(input_ids, attention_mask=attention_mask, params=params).logits

    np.testing.assert_allclose(user_fn(model.params, **inputs), eager, atol=ATOL["float32"], rtol=0)
    devices = jax.local_device_count()
    stacked = {k: np.stack([v] * devices) for k, v in inputs.items()}
    pmapped = jax.pmap(lambda p, ids, mask: model(ids, attention_mask=mask, params=p).logits)(
        training.replicate(model.params), stacked["input_ids"], stacked["attention_mask"]
    )
    np.testing.assert_allclose(pmapped[0], eager, atol=ATOL["float32"], rtol=0)
    # a whole output object can leave a jitted function (the output classes are pytrees)
    out = jax.jit(lambda p: model(inputs["input_ids"], params=p, output_hidden_states=True))(model.params)
    assert isinstance(out, roformer_flax.modeling.ModelOutput) and len(out.hidden_states) == 3


def test_bfloat16_computes_in_bf16_with_float32_params_and_table() -> None:
    config = RoFormerConfig(**BASE_CONFIG)
    state = init_params(config, "masked_lm", seed=1, scale=0.2)
    fp32 = roformer_flax.FlaxRoFormerForMaskedLM.from_state_dict(config, state)
    bf16 = roformer_flax.FlaxRoFormerForMaskedLM.from_state_dict(config, state, dtype=jnp.bfloat16)
    assert {x.dtype for x in jax.tree_util.tree_leaves(bf16.params)} == {jnp.dtype(jnp.float32)}
    table = roformer_flax.layers.rotary_table(9, config.head_dim)
    assert table.dtype == jnp.float32
    inputs = _inputs(config)
    low = bf16(**inputs, output_hidden_states=True)
    assert low.logits.dtype == jnp.bfloat16 and low.hidden_states[-1].dtype == jnp.bfloat16
    high = fp32(**inputs).logits
    scale = float(jnp.max(jnp.abs(high)))
    assert float(jnp.max(jnp.abs(low.logits.astype(jnp.float32) - high))) <= ATOL["bfloat16"] * max(scale, 1.0)


def test_loss_and_dropout_in_train_mode() -> None:
    model = _model(roformer_flax.FlaxRoFormerForMaskedLM, hidden_dropout_prob=0.1)
    inputs = _inputs(model.config)
    labels = np.where(inputs["attention_mask"] == 1, inputs["input_ids"], -100)
    evaluated = model(**inputs, labels=labels).loss
    trained = [model(**inputs, labels=labels, train=True, dropout_rng=jax.random.PRNGKey(i)).loss for i in (0, 0, 1)]
    assert float(trained[0]) == float(trained[1]) != float(trained[2])
    assert float(trained[0]) != float(evaluated)
    with pytest.raises(ValueError, match="dropout_rng"):
        model(**inputs, train=True)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    plain_model = _model(roformer_flax.FlaxRoFormerForSequenceClassification)
    model = _model(roformer_flax.FlaxRoFormerForSequenceClassification)
    inputs = _inputs(model.config)
    labels = np.array([0, 2])

    def loss(params, of=model):
        return of(**inputs, labels=labels, params=params).loss

    def primitives(jaxpr) -> set[str]:  # every primitive, nested jaxprs (jit, remat, scan) included
        names = set()
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for value in eqn.params.values():
                for sub in value if isinstance(value, (list, tuple)) else [value]:
                    if (inner := getattr(sub, "jaxpr", None)) is not None:
                        names |= primitives(getattr(inner, "jaxpr", inner))
        return names

    def uses_remat() -> bool:
        jaxpr = jax.make_jaxpr(jax.grad(loss))(model.params).jaxpr
        return any("remat" in name or "checkpoint" in name for name in primitives(jaxpr))

    assert not uses_remat()
    model.enable_gradient_checkpointing()
    assert uses_remat()  # the layers really are rematerialized
    plain = jax.grad(lambda p: loss(p, plain_model))(plain_model.params)
    remat = jax.grad(loss)(model.params)
    for a, b in zip(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(remat)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_parameter_tree_is_the_references() -> None:
    """With embedding_size == hidden_size our masked-LM tree is the reference Flax port's, value for value."""
    transformers = pytest.importorskip("transformers")
    model = _model(roformer_flax.FlaxRoFormerForMaskedLM)
    reference = transformers.FlaxRoFormerForMaskedLM(transformers.RoFormerConfig(**BASE_CONFIG), seed=0, _do_init=True)
    ours_tree = jax.tree_util.tree_structure(model.params)
    assert jax.tree_util.tree_structure(reference.params) == ours_tree
    inputs = _inputs(model.config)
    want = reference(inputs["input_ids"], attention_mask=inputs["attention_mask"], params=model.params).logits
    np.testing.assert_allclose(model(**inputs).logits, want, atol=ATOL["float32"], rtol=0)


@pytest.mark.parametrize("head", [h for h in HEADS if h.name != "model"], ids=lambda h: h.name)
def test_loaded_tree_with_new_head_is_the_initialized_tree(head) -> None:
    """Loading a bare checkpoint into a head draws only the head; the tree (paths, shapes, dtypes) is what the
    module initializes, so the schema and the module tree agree for every head."""
    config = RoFormerConfig(**BASE_CONFIG, embedding_size=24)
    cls = getattr(roformer_flax, f"Flax{head.class_name}")
    loaded = cls.from_state_dict(config.copy(), init_params(config, "model", seed=1))
    fresh = cls(config.copy(), seed=0)
    shapes = jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), loaded.params)
    assert shapes == jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), fresh.params)


def test_reference_flax_msgpack_loads(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    reference = transformers.FlaxRoFormerForMaskedLM(transformers.RoFormerConfig(**BASE_CONFIG), seed=3)
    reference.save_pretrained(tmp_path)
    model = roformer_flax.FlaxRoFormerForMaskedLM.from_pretrained(tmp_path)
    inputs = _inputs(model.config)
    want = reference(inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    np.testing.assert_allclose(model(**inputs).logits, want, atol=ATOL["float32"], rtol=0)


def test_mismatched_inputs_are_reported() -> None:
    model = _model(roformer_flax.FlaxRoFormerModel)
    inputs = _inputs(model.config)
    with pytest.raises(ValueError, match="token_type_ids shape"):
        model(**inputs, token_type_ids=np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(inputs["input_ids"], inputs_embeds=np.zeros((2, 7, 32), np.float32))
    with pytest.raises(ValueError, match="head_mask must have shape"):
        model(**inputs, head_mask=np.ones(3))


def test_sequences_longer_than_max_positions_and_cache_growth() -> None:
    model = _model(roformer_flax.FlaxRoFormerForCausalLM, is_decoder=True, max_position_embeddings=8)
    ids = np.random.default_rng(0).integers(1, 99, (1, 20))
    full = model(ids).logits
    past, pieces = None, []
    for start, stop in ((0, 3), (3, 4), (4, 5), (5, 12), (12, 20)):  # the cache grows past its first capacity
        out = model(ids[:, start:stop], past_key_values=past, use_cache=True)
        pieces.append(out.logits)
        past = out.past_key_values
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=ATOL["cache"], rtol=0)


def test_generate_sampling_is_reproducible_and_stops_at_eos() -> None:
    model = _model(roformer_flax.FlaxRoFormerForCausalLM, is_decoder=True)
    prompts = np.array([[5, 6, 7], [8, 9, 10]])
    a = model.generate(prompts, max_new_tokens=6, do_sample=True, top_k=10, top_p=0.9, generator=1)
    b = model.generate(prompts, max_new_tokens=6, do_sample=True, top_k=10, top_p=0.9, generator=1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 9) and a.dtype == np.int64
    greedy = model.generate(prompts, max_new_tokens=6)
    stop = int(greedy[0, 3])
    stopped = model.generate(prompts, max_new_tokens=6, eos_token_id=stop)
    assert stopped[0, 3] == stop and (stopped[0, 4:] == model.config.pad_token_id).all()
    with pytest.raises(ValueError, match="is_decoder"):
        _model(roformer_flax.FlaxRoFormerForCausalLM).generate(prompts)


_PMAP_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    import jax, numpy as np
    from roformer_core import RoFormerConfig
    from roformer_flax import FlaxRoFormerForMaskedLM
    from roformer_flax import training as T

    assert jax.local_device_count() == 8, jax.devices()
    config = RoFormerConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=37, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = FlaxRoFormerForMaskedLM(config, seed=0)
    rng = np.random.default_rng(0)
    def batch(seed):
        r = np.random.default_rng(seed)
        ids = r.integers(1, 99, (16, 12)).astype(np.int32)
        labels = np.where(r.random((16, 12)) < 0.3, ids, -100)  # an uneven number of targets per device
        return {"input_ids": ids, "attention_mask": np.ones_like(ids), "labels": labels}
    tx, schedule = T.create_optimizer(1e-3, num_train_steps=10, warmup_steps=2, weight_decay=0.01)
    fresh = lambda: T.TrainState.create(model.params, tx, seed=0)
    flat = lambda t: np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(t)])
    result = {}

    # one step: 1 device x 16, 8 devices x 2, 1 device x 16 in 4 accumulated micro-batches
    one_step = jax.jit(T.make_train_step(model, learning_rate_fn=schedule))  # compiled once, used twice
    single, m1 = one_step(fresh(), batch(1))
    single, m1 = one_step(single, batch(2))
    p_step = T.make_pmap_train_step(model, learning_rate_fn=schedule)
    multi = T.replicate(fresh())
    for s in (1, 2):
        multi, m8 = p_step(multi, T.shard_batch(batch(s)))
    multi, m8 = T.unreplicate(multi), T.unreplicate(m8)
    accumulated_step = jax.jit(T.make_train_step(model, accumulation_steps=4))
    accum, ma = accumulated_step(fresh(), batch(1))
    accum, ma = accumulated_step(accum, batch(2))
    result["loss"] = [float(m1["loss"]), float(m8["loss"]), float(ma["loss"])]
    result["param_diff_pmap"] = float(np.max(np.abs(flat(single.params) - flat(multi.params))))
    result["param_diff_accum"] = float(np.max(np.abs(flat(single.params) - flat(accum.params))))
    result["moved"] = float(np.max(np.abs(flat(single.params) - flat(model.params))))

    # resume: 4 steps straight vs 2 steps, save, restore into a fresh state, 2 more (with dropout on)
    config_d = config.copy(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    model_d = FlaxRoFormerForMaskedLM(config_d, seed=0)
    step = T.make_pmap_train_step(model_d)
    state = T.replicate(T.TrainState.create(model_d.params, tx, seed=7))
    straight = []
    for s in range(4):
        state, m = step(state, T.shard_batch(batch(10 + s)))
        straight.append(float(m["loss"][0]))
    state = T.replicate(T.TrainState.create(model_d.params, tx, seed=7))
    resumed = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(2):
            state, m = step(state, T.shard_batch(batch(10 + s)))
            resumed.append(float(m["loss"][0]))
        T.save_train_state(tmp, T.unreplicate(state), model_d)
        del state
        state = T.replicate(T.restore_train_state(tmp, T.TrainState.create(model_d.params, tx, seed=0)))
        for s in range(2, 4):
            state, m = step(state, T.shard_batch(batch(10 + s)))
            resumed.append(float(m["loss"][0]))
        reloaded = FlaxRoFormerForMaskedLM.from_pretrained(tmp)
    result["straight"], result["resumed"] = straight, resumed
    json.dump(result, sys.stdout)
    """
)


def test_accumulated_step_with_a_micro_batch_without_targets() -> None:
    """A micro-batch whose labels are all ignored adds nothing: the step equals one on the other micro-batch."""
    model = _model(roformer_flax.FlaxRoFormerForMaskedLM, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 99, (4, 9)).astype(np.int32)
    labels = np.where(rng.random((4, 9)) < 0.4, ids, -100)
    labels[:2] = -100  # the first micro-batch has no targets
    batch = {"input_ids": ids, "attention_mask": np.ones_like(ids), "labels": labels}
    tx, _ = training.create_optimizer(1e-3, num_train_steps=10, warmup_steps=0)
    state = training.TrainState.create(model.params, tx)
    accumulated, metrics = jax.jit(training.make_train_step(model, accumulation_steps=2))(state, batch)
    half = {k: v[2:] for k, v in batch.items()}
    alone, alone_metrics = jax.jit(training.make_train_step(model))(state, half)
    assert float(metrics["num_targets"]) == float((labels != -100).sum()) > 0
    np.testing.assert_allclose(float(metrics["loss"]), float(alone_metrics["loss"]), atol=1e-6, rtol=0)
    for a, b in zip(jax.tree_util.tree_leaves(accumulated.params), jax.tree_util.tree_leaves(alone.params)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_pmap_step_equals_single_device_and_resume_continues_the_curve() -> None:
    """8 devices x 2 examples == 1 device x 16 (loss and updated parameters); resuming repeats the loss curve."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", _PMAP_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    single, multi, accumulated = result["loss"]
    assert abs(single - multi) <= 1e-5 and abs(single - accumulated) <= 1e-5, result["loss"]
    assert result["param_diff_pmap"] <= 1e-5 and result["param_diff_accum"] <= 1e-5, result
    assert result["moved"] > 1e-4  # the step did update the parameters
    np.testing.assert_allclose(result["resumed"], result["straight"], atol=1e-6, rtol=0)
    assert len(set(result["straight"])) == 4


@pytest.mark.parametrize("is_decoder", [False, True], ids=["encoder", "decoder"])
def test_blocked_attention_matches_the_numpy_oracle_on_long_inputs(is_decoder: bool) -> None:
    """Past one query block the fused path attends block by block (padding the last block); same numbers."""
    from roformer_core import numpy_model

    config = RoFormerConfig(**{**BASE_CONFIG, "num_hidden_layers": 1, "is_decoder": is_decoder})
    state = init_params(config, "model", seed=2, scale=0.2)
    model = roformer_flax.FlaxRoFormerModel.from_state_dict(config, state)
    inputs = _inputs(config, batch=2, length=600)
    inputs["attention_mask"][0, 550:] = 0
    want = numpy_model.forward(config, state, "model", **inputs)["last_hidden_state"]
    np.testing.assert_allclose(model(**inputs).last_hidden_state, want, atol=ATOL["float32"], rtol=0)
    explicit = model(**inputs, output_attentions=True).last_hidden_state
    np.testing.assert_allclose(explicit, want, atol=ATOL["float32"], rtol=0)


def test_loads_pytorch_model_bin(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    config = RoFormerConfig(**{**BASE_CONFIG, "embedding_size": 24})
    state = init_params(config, "masked_lm", seed=4, scale=0.2)
    config.save_pretrained(tmp_path)
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "pytorch_model.bin")
    model = roformer_flax.FlaxRoFormerForMaskedLM.from_pretrained(tmp_path)
    np.testing.assert_array_equal(
        model.params["roformer"]["embeddings_project"]["kernel"], state["roformer.embeddings_project.weight"].T
    )


def test_activation_table_is_the_cores() -> None:
    from roformer_core.activations import ACTIVATIONS as SPEC
    from roformer_flax.layers import ACTIVATIONS

    assert set(ACTIVATIONS) == set(SPEC)
    x = np.linspace(-6, 6, 101)
    for name, fn in ACTIVATIONS.items():
        np.testing.assert_allclose(fn(jnp.asarray(x, jnp.float32)), SPEC[name](x), atol=2e-6, rtol=0, err_msg=name)


def test_fast_path_applies_fractional_head_mask() -> None:
    model = _model(roformer_flax.FlaxRoFormerForTokenClassification)
    inputs = {**_inputs(model.config), "head_mask": np.array([[1.0, 0.0, 0.5, 1.0], [0.25, 1.0, 1.0, 0.0]])}
    fast = model(**inputs).logits
    explicit = model(**inputs, output_attentions=True).logits
    np.testing.assert_allclose(fast, explicit, atol=ATOL["float32"], rtol=0)
    assert float(jnp.max(jnp.abs(fast - model(**_inputs(model.config)).logits))) > 1e-3


@pytest.mark.parametrize(
    "cls_name, labels, message",
    [
        ("FlaxRoFormerForSequenceClassification", [0, 3], "labels contains 3, out of range for num_labels=3"),
        ("FlaxRoFormerForTokenClassification", [[0, 1, 2, -1, 0, 0, -100]] * 2, "labels contains -1"),
        ("FlaxRoFormerForMultipleChoice", [0, 2], "out of range for the number of choices=2"),
        ("FlaxRoFormerForCausalLM", [[1, 5, 99, 1, 2, 3, 4]] * 2, "out of range for vocab_size=99"),
    ],
    ids=["sequence", "token_negative", "multiple_choice", "causal_lm"],
)
def test_bad_labels_raise_and_give_nan_inside_jit(cls_name: str, labels: list, message: str) -> None:
    model = _model(getattr(roformer_flax, cls_name))
    inputs = _inputs(model.config)
    if cls_name.endswith("MultipleChoice"):
        inputs = {k: np.repeat(v[:, None], 2, axis=1) for k, v in inputs.items()}
    labels = np.array(labels)
    with pytest.raises(ValueError, match=message):
        model(**inputs, labels=labels)
    # traced labels cannot raise: the loss is NaN, never a silently wrapped class (-1 -> the last one)
    loss = jax.jit(lambda y: model(**inputs, labels=y).loss)(labels)
    assert np.isnan(loss)
    good = np.where((labels < 0) & (labels != -100), 0, labels) % 2
    if cls_name.endswith("CausalLM"):
        good[:, 0] = 500  # the first label is never a target
    assert np.isfinite(model(**inputs, labels=good).loss)


def test_generate_recompiles_only_for_settings_that_change_the_program() -> None:
    model = _model(roformer_flax.FlaxRoFormerForCausalLM, is_decoder=True)
    ids = np.array([[5, 6, 7], [8, 9, 10]])
    greedy = model.generate(ids, max_new_tokens=4)
    # greedy decoding ignores the sampling settings: same program, same tokens
    again = model.generate(ids, max_new_tokens=4, temperature=0.5, top_k=3, top_p=0.8)
    np.testing.assert_array_equal(again, greedy)
    assert model._jit_generate._cache_size() == 1
    # the temperature is traced: a new value reuses the sampling program, and still changes the draw
    cold = model.generate(ids, max_new_tokens=4, do_sample=True, temperature=1e-4, top_k=0, generator=3)
    hot = model.generate(ids, max_new_tokens=4, do_sample=True, temperature=50.0, top_k=0, generator=3)
    assert model._jit_generate._cache_size() == 2
    np.testing.assert_array_equal(cold, greedy)  # near-zero temperature samples the argmax
    assert not np.array_equal(hot, greedy)


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_weight_decay_skips_exactly_the_biases_and_norms_of_the_schema(variant: str) -> None:
    """optax's decay mask is the core rule: every kernel and embedding decays, no bias or LayerNorm parameter does."""
    from flax.traverse_util import flatten_dict

    from roformer_core.variants import variant_config

    config = variant_config(variant, **{k: v for k, v in BASE_CONFIG.items() if k not in ("use_bias", "norm_type")})
    model = roformer_flax.FlaxRoFormerForMaskedLM(config, seed=0)
    mask = flatten_dict(training.decay_mask(model.params))
    decayed = sorted("/".join(path) for path, decays in mask.items() if decays)
    kept = sorted("/".join(path) for path, decays in mask.items() if not decays)
    assert all(path.endswith(("kernel", "embedding")) for path in decayed), decayed
    assert all(path.endswith("bias") or "/LayerNorm/" in path for path in kept), kept
    # V1 has biases and LayerNorm parameters to leave out; V2 has neither (no biases, weightless RMS norms)
    assert bool(kept) == (variant == "v1")
