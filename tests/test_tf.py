"""TensorFlow / Keras-specific behaviour of roformer_tf: input forms, Keras training, XLA, serving, loading.

Numerics against the reference are in the shared tests (tests/test_models.py); these cover what only the Keras
port has.
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

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
roformer_tf = pytest.importorskip("roformer_tf")

from roformer_core import RoFormerConfig, model_schema  # noqa: E402
from roformer_core.numpy_model import forward, init_params  # noqa: E402

from .cases import BASE_CONFIG  # noqa: E402
from .tolerances import ATOL  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _config(**changes) -> RoFormerConfig:
    return RoFormerConfig(**{**BASE_CONFIG, **changes})


def _ids(batch: int = 2, length: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, BASE_CONFIG["vocab_size"], size=(batch, length))


def _model(cls_name: str, **changes):
    config = _config(**changes)
    head = cls_name.replace("TFRoFormer", "RoFormer")
    return getattr(roformer_tf, cls_name).from_state_dict(config, init_params(config, head, seed=1, scale=0.2))


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_other_keras_backend_is_refused_at_import() -> None:
    result = _run_python("import roformer_tf", KERAS_BACKEND="jax")
    assert result.returncode != 0
    assert "KERAS_BACKEND='jax'" in result.stderr and "TensorFlow backend" in result.stderr


def test_positional_keyword_and_dict_inputs_agree() -> None:
    model = _model("TFRoFormerForMaskedLM")
    ids = _ids()
    mask = np.ones_like(ids)
    positional = model(ids, mask).logits
    keyword = model(input_ids=ids, attention_mask=mask).logits
    as_dict = model({"input_ids": ids, "attention_mask": mask}).logits
    np.testing.assert_array_equal(positional, keyword)
    np.testing.assert_array_equal(positional, as_dict)
    with pytest.raises(ValueError, match="unknown input"):
        model({"input_ids": ids, "bogus": ids})


def test_tuple_outputs_keep_every_field() -> None:
    model = _model("TFRoFormerForQuestionAnswering")
    out = model(_ids(), output_hidden_states=True, output_attentions=True, return_dict=False)
    as_dict = model(_ids(), output_hidden_states=True, output_attentions=True)
    assert list(as_dict) == ["start_logits", "end_logits", "hidden_states", "attentions"]
    assert len(out) == 4
    np.testing.assert_array_equal(out[1], as_dict["end_logits"])


def test_rotary_table_is_not_a_weight() -> None:
    model = _model("TFRoFormerForMaskedLM")
    names = [v.path for v in model.weights]
    assert not [n for n in names if "embed_positions" in n]
    stored = [s for s in model_schema(model.config, "masked_lm") if s.stored and s.kind != "rotary_table"]
    assert len(model.trainable_weights) == len(stored)


def test_activations_match_the_core_spec() -> None:
    from roformer_core.activations import ACTIVATIONS as SPEC
    from roformer_tf.layers import ACTIVATIONS

    assert set(ACTIVATIONS) == set(SPEC)
    x = np.linspace(-6.0, 6.0, 97)
    for name, fn in ACTIVATIONS.items():
        got = fn(tf.constant(x, tf.float64)).numpy()
        np.testing.assert_allclose(got, SPEC[name](x), atol=1e-6, err_msg=name)
    # float32 under XLA, as the model runs it, out to the far tails (gelu: the erf form, as PyTorch, within 2e-6)
    x = np.linspace(-12.0, 12.0, 4801).astype(np.float32)
    for name, fn in ACTIVATIONS.items():
        got = tf.function(fn, jit_compile=True)(tf.constant(x)).numpy()
        np.testing.assert_allclose(got, SPEC[name](x.astype(np.float64)), rtol=1e-6, atol=2e-6, err_msg=name)


def test_loss_is_a_scalar_mean() -> None:
    model = _model("TFRoFormerForSequenceClassification")
    out = model(_ids(), labels=np.array([0, 2]))
    assert out.loss.shape == () and out.loss.dtype == tf.float32


def _classification_data(n: int = 64, length: int = 8) -> tuple[np.ndarray, np.ndarray]:
    ids = _ids(n, length, seed=3)
    return ids, (ids[:, 0] % 3).astype(np.int64)  # learnable from the first token


def _fit_losses(model, dataset, epochs: int = 4, **compile_args) -> list[float]:
    model.compile(optimizer=keras.optimizers.Adam(3e-3), **compile_args)
    history = model.fit(dataset, epochs=epochs, verbose=0, shuffle=False)
    return history.history["loss"]


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_fit_uses_the_models_own_loss(jit_compile: bool) -> None:
    ids, labels = _classification_data()
    dataset = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": labels}).batch(16)
    model = _model("TFRoFormerForSequenceClassification", hidden_dropout_prob=0.0)
    losses = _fit_losses(model, dataset, jit_compile=jit_compile)
    assert losses[-1] < 0.8 * losses[0], losses
    # targets may also come as Keras' y
    xy = tf.data.Dataset.from_tensor_slices(({"input_ids": ids}, labels)).batch(16)
    assert np.isfinite(model.evaluate(xy, verbose=0))


def test_fit_question_answering_positions_in_the_batch() -> None:
    ids = _ids(32, 8, seed=4)
    batch = {"input_ids": ids, "start_positions": ids[:, 0] % 8, "end_positions": ids[:, 1] % 8}
    model = _model("TFRoFormerForQuestionAnswering", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    losses = _fit_losses(model, tf.data.Dataset.from_tensor_slices(batch).batch(16), epochs=4)
    assert losses[-1] < 0.9 * losses[0], losses


def test_compile_without_targets_says_what_is_missing() -> None:
    model = _model("TFRoFormerForTokenClassification")
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="put labels in the batch"):
        model.fit(tf.data.Dataset.from_tensor_slices({"input_ids": _ids(4)}).batch(2), verbose=0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_training(policy: str) -> None:
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = _model("TFRoFormerForMaskedLM")
        ids = _ids(16, 8, seed=5)
        out = model(ids, labels=ids)
        assert out.logits.dtype == tf.dtypes.as_dtype(policy.split("_")[1])
        assert out.loss.dtype == tf.float32
        dataset = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": ids}).batch(8)
        losses = _fit_losses(model, dataset, epochs=3)
        assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
def test_fit_under_mirrored_strategy_on_two_cpus() -> None:
    # logical devices must be configured before TensorFlow starts: a fresh process
    result = _run_python(
        """
        import json
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from roformer_tf import RoFormerConfig, TFRoFormerForSequenceClassification
        from tests.cases import BASE_CONFIG
        ids = np.random.default_rng(3).integers(1, 99, size=(64, 8))
        data = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": ids[:, 0] % 3}).batch(16)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = TFRoFormerForSequenceClassification(RoFormerConfig(**BASE_CONFIG, hidden_dropout_prob=0.0))
            model.compile(optimizer=keras.optimizers.Adam(3e-3))
        history = model.fit(data, epochs=4, verbose=0, shuffle=False)
        # the pre-step id check sees a distributed batch as per-replica values: a bad id in the second replica's
        # half is found
        ids[12, 5] = 500
        bad = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": ids[:, 0] % 3}).batch(16)
        batch = next(iter(strategy.experimental_distribute_dataset(bad)))
        assert isinstance(batch["input_ids"], tf.distribute.DistributedValues)
        try:
            model._batch_asserts(batch)
            error = None
        except tf.errors.InvalidArgumentError as e:
            error = str(e)
        print(json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"], "error": error}))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["loss"][-1] < 0.8 * report["loss"][0], report
    assert "input_ids out of range for vocab_size=99" in report["error"]


def test_generate_compiles_with_xla_and_samples_reproducibly() -> None:
    from roformer_tf.generation import _COMPILED

    model = _model("TFRoFormerForCausalLM", is_decoder=True)
    prompts = _ids(2, 4)
    greedy = model.generate(prompts, max_new_tokens=5)
    assert greedy.shape == (2, 9)
    assert _COMPILED[model]._jit_compile
    first = model.generate(prompts, max_new_tokens=5, do_sample=True, generator=tf.random.Generator.from_seed(7))
    again = model.generate(prompts, max_new_tokens=5, do_sample=True, generator=tf.random.Generator.from_seed(7))
    np.testing.assert_array_equal(first, again)
    eos = int(greedy[0, 4])
    stopped = model.generate(prompts, max_new_tokens=5, eos_token_id=eos, pad_token_id=0)
    assert stopped[0, 4] == eos and np.all(stopped[0, 5:] == 0)


def test_greedy_generate_equals_pytorch_backend() -> None:
    torch = pytest.importorskip("torch")
    import roformer_pt

    config = _config(is_decoder=True)
    state = init_params(config, "causal_lm", seed=2, scale=0.2)
    prompts = _ids(2, 5, seed=9)
    mask = np.ones_like(prompts)
    mask[1, -2:] = 0
    pt_model = roformer_pt.RoFormerForCausalLM.from_state_dict(config, state).eval()
    expected = pt_model.generate(torch.from_numpy(prompts), attention_mask=torch.from_numpy(mask), max_new_tokens=6)
    tf_model = roformer_tf.TFRoFormerForCausalLM.from_state_dict(config, state)
    got = tf_model.generate(prompts, attention_mask=mask, max_new_tokens=6)
    np.testing.assert_array_equal(np.asarray(got), expected.numpy())


def test_saved_model_serving_signature(tmp_path) -> None:
    model = _model("TFRoFormerForTokenClassification")
    ids = _ids()
    mask = np.ones_like(ids)
    mask[1, -2:] = 0
    types = np.zeros_like(ids)
    expected = model(ids, attention_mask=mask, token_type_ids=types).logits.numpy()
    model.export_saved_model(tmp_path / "served")
    serving = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    got = serving(
        input_ids=tf.constant(ids, tf.int64),
        attention_mask=tf.constant(mask, tf.int64),
        token_type_ids=tf.constant(types, tf.int64),
    )
    np.testing.assert_allclose(got["logits"].numpy(), expected, atol=ATOL["float32"], rtol=0)


def test_out_of_range_ids_raise_inside_tf_function_and_poison_xla() -> None:
    model = _model("TFRoFormerForMaskedLM")
    bad = _ids()
    bad[0, 3] = 500

    def forward(ids):
        return model(ids).logits

    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids"):
        tf.function(forward)(tf.constant(bad))
    # XLA drops asserts: the rows of bad ids come out as NaN instead of silently clamped values
    logits = tf.function(forward, jit_compile=True)(tf.constant(bad)).numpy()
    assert np.isnan(logits[0, 3]).all() and np.isfinite(logits[1]).all()


# the input form and the compile mode are independent paths: two runs cover both values of each
@pytest.mark.parametrize("form, jit_compile", [("dict", True), ("x_y", False)], ids=["dict-xla", "x_y-graph"])
def test_keras_steps_refuse_bad_ids_before_any_update(form: str, jit_compile: bool) -> None:
    ids, labels = _classification_data(32)
    ids[3, 2] = 10_000  # first batch
    types = np.zeros_like(ids)
    types[20, 0] = 16  # second batch; type_vocab_size is 16
    if form == "dict":
        dataset = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "token_type_ids": types, "labels": labels})
    else:
        dataset = tf.data.Dataset.from_tensor_slices(({"input_ids": ids, "token_type_ids": types}, labels))
    dataset = dataset.batch(16)
    model = _model("TFRoFormerForSequenceClassification")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit_compile)
    before = [w.numpy().copy() for w in model.trainable_weights]
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids out of range for vocab_size=99"):
        model.fit(dataset, epochs=1, verbose=0)
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(model.trainable_weights, before))
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids out of range"):
        model.evaluate(dataset, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids out of range"):
        model.predict(ids, batch_size=16, verbose=0)
    good_ids = np.where(ids >= 99, 1, ids)
    with pytest.raises(tf.errors.InvalidArgumentError, match="token_type_ids out of range for type_vocab_size=16"):
        model.evaluate({"input_ids": good_ids, "token_type_ids": types}, labels, batch_size=16, verbose=0)
    # and good data still trains under the same compiled functions
    assert np.isfinite(model.evaluate({"input_ids": good_ids}, labels, batch_size=16, verbose=0))


@pytest.mark.parametrize(
    "cls_name, labels, message, graph_message",
    [
        (
            "TFRoFormerForMaskedLM",
            [[-100, 5, 99, 1, 2, 3, 4]] * 2,
            "labels contains 99, out of range for vocab_size=99",
            "labels out of range for vocab_size=99",
        ),
        ("TFRoFormerForMaskedLM", [[-100, 5, -7, 1, 2, 3, 4]] * 2, "labels contains -7", "a negative label"),
        ("TFRoFormerForCausalLM", [[1, 5, 99, 1, 2, 3, 4]] * 2, "contains 99", "out of range for vocab_size=99"),
        ("TFRoFormerForSequenceClassification", [0, 3], "contains 3, out of range for num_labels=3", "num_labels=3"),
        ("TFRoFormerForTokenClassification", [[0, 1, 2, 3, 0, 0, -100]] * 2, "contains 3", "num_labels=3"),
        ("TFRoFormerForMultipleChoice", [0, 2], "contains 2, out of range for the number of choices=2", "choices=2"),
    ],
    ids=["masked_lm", "negative", "causal_lm", "sequence", "token", "multiple_choice"],
)
def test_out_of_range_labels_raise(cls_name: str, labels: list, message: str, graph_message: str) -> None:
    model = _model(cls_name)
    ids = _ids()[:, None, :].repeat(2, axis=1) if cls_name.endswith("MultipleChoice") else _ids()
    labels = np.array(labels)
    with pytest.raises(ValueError, match=message):
        model(ids, labels=labels)
    with pytest.raises(tf.errors.InvalidArgumentError, match=graph_message):
        tf.function(lambda x, y: model(x, labels=y).loss)(tf.constant(ids), tf.constant(labels))
    # ignored labels (-100) are fine; the causal LM never targets the first label
    fixed = np.where((labels < 0) | (labels >= model.config.vocab_size), -100, labels)
    if cls_name.endswith(("SequenceClassification", "TokenClassification")):
        fixed = np.where(labels >= 3, -100, labels)
    if cls_name.endswith("MultipleChoice"):
        fixed = np.array([0, 1])
    if cls_name.endswith("CausalLM"):
        fixed[:, 0] = 500
    assert np.isfinite(model(ids, labels=fixed).loss.numpy())


@pytest.mark.parametrize("form", ["dict", "x_y"])
def test_keras_fit_refuses_bad_labels_under_xla(form: str) -> None:
    ids, labels = _classification_data(32)
    labels[5] = 3  # first batch; num_labels is 3
    x = {"input_ids": ids}
    dataset = tf.data.Dataset.from_tensor_slices({**x, "labels": labels} if form == "dict" else (x, labels))
    model = _model("TFRoFormerForSequenceClassification")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    before = [w.numpy().copy() for w in model.trainable_weights]
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels out of range for num_labels=3"):
        model.fit(dataset.batch(16), epochs=1, verbose=0)
    # stopped before the compiled step: no update (under XLA the step itself would train on a NaN loss)
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(model.trainable_weights, before))
    labels[5] = 2
    assert np.isfinite(model.evaluate(ids, labels, batch_size=16, verbose=0))


@pytest.mark.parametrize(
    "length, blocks",
    [(600, (4, 600)), (1034, (1, 1034)), (1600, (1, 800))],
    ids=["all-heads-per-step", "one-head-per-step", "half-the-queries-per-step"],
)
@pytest.mark.parametrize("is_decoder", [False, True], ids=["encoder", "decoder"])
def test_long_sequence_attention_path_matches_explicit_path(
    is_decoder: bool, length: int, blocks: tuple[int, int]
) -> None:
    from roformer_tf.layers import _attention_blocks

    model = _model("TFRoFormerModel", is_decoder=is_decoder)
    ids = _ids(4, length)
    shape = tf.TensorShape((4, model.config.num_attention_heads, length, 8))
    assert _attention_blocks(shape, shape) == blocks
    # padding at the end, padding in front (a masked first key), and a sequence with every key masked (uniform
    # weights in the reference); the encoder's blocks take the row maxima before adding this bias
    mask = np.ones_like(ids)
    mask[1, -50:] = 0
    mask[2, :7] = 0
    mask[3] = 0
    explicit = model(ids, attention_mask=mask, output_attentions=True).last_hidden_state.numpy()
    fast = model(ids, attention_mask=mask).last_hidden_state.numpy()
    np.testing.assert_allclose(fast, explicit, atol=ATOL["float32"], rtol=0)


def test_blocked_attention_ignores_huge_scores_of_masked_keys() -> None:
    """The blocks take row maxima before adding the padding bias; masked keys whose raw scores dwarf every kept
    one (here by ~1e4) must still get weight 0 without the kept weights underflowing to 0/0."""
    from roformer_tf.layers import _attend_in_blocks

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((3, 4, 256, 16)).astype(np.float32) for _ in range(3))
    keep = np.ones((3, 256), bool)
    keep[0, :9] = keep[1, 200:] = False
    keep[2] = False  # every key masked: uniform weights
    k = np.where(keep[:, None, :, None], k, 100.0 * np.sign(q.mean(axis=2, keepdims=True)))  # [3, 4, 256, 16]
    bias = np.where(keep, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
    # float64 masked softmax, written out: the reference adds finfo.min to the masked scores, so a row with every
    # key masked has equal scores and uniform weights
    scores = np.einsum("bhqd,bhkd->bhqk", q.astype(np.float64), k.astype(np.float64)) + bias
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    expected = (weights / weights.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(expected[2], np.broadcast_to(v[2].mean(axis=1, keepdims=True), v[2].shape), atol=1e-5)
    for heads, queries in [(2, 256), (1, 128)]:
        blocked = _attend_in_blocks(*map(tf.constant, (q, k, v, bias)), heads, queries).numpy()
        np.testing.assert_allclose(blocked, expected, atol=ATOL["float32"], rtol=0)


def test_attention_block_choice() -> None:
    from roformer_tf.layers import _attention_blocks

    def blocks(batch: int, heads: int, queries: int, keys: int):
        return _attention_blocks(tf.TensorShape((batch, heads, queries, 64)), tf.TensorShape((batch, heads, keys, 64)))

    assert blocks(4, 12, 512, 512) == (6, 512)  # base model, 4 x 512
    assert blocks(1, 12, 2048, 2048) == (1, 1024)
    assert blocks(1, 12, 2053, 2053) == (1, 2053)  # prime length: whole heads, not 1-query steps
    assert blocks(2, 12, 256, 256) is None  # fits: batched
    assert blocks(64, 12, 1, 4096) is None  # a decoding step
    assert blocks(None, 12, 512, 512) is None  # unknown batch


def test_rotary_rows_equal_the_core_table_far_out() -> None:
    from roformer_core.rotary import sinusoidal_table
    from roformer_tf.layers import TFRoFormerSinusoidalPositionalEmbedding

    sin_pos, cos_pos = TFRoFormerSinusoidalPositionalEmbedding(128).call(0, 200_000)
    table = sinusoidal_table(200_000, 128)
    np.testing.assert_array_equal(sin_pos.numpy()[:, ::2], table[:, :64])
    np.testing.assert_array_equal(cos_pos.numpy()[:, ::2], table[:, 64:])


def test_longer_than_max_positions_inside_xla() -> None:
    model = _model("TFRoFormerModel", max_position_embeddings=8)
    ids = _ids(1, 20)
    eager = model(ids).last_hidden_state.numpy()
    compiled = tf.function(lambda x: model(x).last_hidden_state, jit_compile=True)(tf.constant(ids)).numpy()
    np.testing.assert_allclose(compiled, eager, atol=ATOL["float32"], rtol=0)


def test_pytorch_bin_loads_and_saved_checkpoint_loads_in_reference(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = _config()
    state = init_params(config, "masked_lm", seed=4, scale=0.2)
    ids = _ids()
    # pytorch_model.bin (read with weights_only)
    config.save_pretrained(tmp_path / "bin")
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "bin" / "pytorch_model.bin")
    model = roformer_tf.TFRoFormerForMaskedLM.from_pretrained(tmp_path / "bin")
    ours = model(ids).logits.numpy()
    oracle = forward(config, state, "masked_lm", input_ids=ids)["logits"]  # the .bin's weights were the ones loaded
    np.testing.assert_allclose(ours, oracle, atol=ATOL["float32"], rtol=0)
    # save_pretrained -> the reference PyTorch class
    model.save_pretrained(tmp_path / "saved")
    reference = transformers.RoFormerForMaskedLM.from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        theirs = reference(torch.from_numpy(ids)).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=ATOL["float32"], rtol=0)


def test_reference_tf_model_h5_loads(tmp_path) -> None:
    pytest.importorskip("transformers")
    result = _run_python(
        f"""
        import numpy as np
        from transformers import RoFormerConfig, TFRoFormerForMaskedLM
        from tests.cases import BASE_CONFIG
        model = TFRoFormerForMaskedLM(RoFormerConfig(**BASE_CONFIG))
        ids = np.arange(14).reshape(2, 7) + 1
        np.save({str(tmp_path / "logits.npy")!r}, model(ids).logits.numpy())
        model.save_pretrained({str(tmp_path / "h5")!r})
        """,
        TF_USE_LEGACY_KERAS="1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "h5" / "tf_model.h5").is_file()
    model = roformer_tf.TFRoFormerForMaskedLM.from_pretrained(tmp_path / "h5")
    ids = np.arange(14).reshape(2, 7) + 1
    expected = np.load(tmp_path / "logits.npy")
    np.testing.assert_allclose(model(ids).logits.numpy(), expected, atol=ATOL["float32"], rtol=0)
