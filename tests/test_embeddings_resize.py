"""``get_input_embeddings`` / ``set_input_embeddings`` / ``resize_token_embeddings`` in every framework.

The rule (which parameters carry vocabulary rows, how new rows start) is the core's
(``roformer_core.schema.vocab_params`` / ``resize_vocab``); these tests check each port applies it: old rows and
old tokens' logits unchanged, new rows drawn N(0, initializer_range**2) from the seed, new LM bias entries zero,
ties kept, ``config.vocab_size`` updated, a save / load round trip, and the same weights in all three frameworks.
"""

from __future__ import annotations

import numpy as np
import pytest

from roformer_core import RoFormerConfig, numpy_model
from roformer_core.checkpoint import save_checkpoint

from .backends import BACKEND_NAMES, backend_params, load_backend
from .tolerances import ATOL

V = 99
E = 24
WORD = "roformer.embeddings.word_embeddings.weight"
BIAS = "cls.predictions.bias"
DECODER = "cls.predictions.decoder.weight"
HEAD_TIES = [
    pytest.param("masked_lm", True, id="masked_lm-tied"),
    pytest.param("masked_lm", False, id="masked_lm-untied"),
    pytest.param("causal_lm", True, id="causal_lm-tied"),
]


def _config(head: str, tied: bool) -> RoFormerConfig:
    return RoFormerConfig(
        vocab_size=V,
        embedding_size=E,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        pad_token_id=3,
        tie_word_embeddings=tied,
        is_decoder=head == "causal_lm",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def _checkpoint(tmp_path, head: str, tied: bool):
    config = _config(head, tied)
    state = numpy_model.init_params(config, head, seed=7, scale=0.2)
    save_checkpoint(tmp_path / "ckpt", config, state)
    return tmp_path / "ckpt", state


def _ids(high: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, high, size=(2, 9))


def _logits(backend, model, ids: np.ndarray) -> np.ndarray:
    return np.asarray(backend.run(model, {"input_ids": ids})["logits"])


@pytest.mark.parametrize(("head", "tied"), HEAD_TIES)
@pytest.mark.parametrize("backend_name", backend_params())
def test_growing_keeps_old_rows_and_logits_and_draws_new_rows_by_the_rule(
    backend_name: str, head: str, tied: bool, tmp_path
) -> None:
    backend = load_backend(backend_name)
    path, state = _checkpoint(tmp_path, head, tied)
    model = backend.from_pretrained(head, path)
    ids = _ids(V)
    before = _logits(backend, model, ids)

    returned = model.resize_token_embeddings(V + 5, pad_to_multiple_of=8, seed=11)  # 104 -> 104 (a multiple of 8)

    assert model.config.vocab_size == 104
    assert tuple(np.shape(getattr(returned, "embeddings", getattr(returned, "weight", returned)))) == (104, E)
    after = model.canonical_state_dict()
    config = _config(head, tied).copy(vocab_size=104)
    rng = np.random.default_rng(11)  # the rule: new rows from N(0, initializer_range**2), embeddings first
    np.testing.assert_array_equal(after[WORD][:V], state[WORD])
    np.testing.assert_array_equal(after[WORD][V:], rng.normal(0.0, 0.02, (5, E)).astype(np.float32))
    np.testing.assert_array_equal(after[BIAS][:V], state[BIAS])
    np.testing.assert_array_equal(after[BIAS][V:], np.zeros(5, np.float32))
    if tied:
        assert DECODER not in after
    else:
        np.testing.assert_array_equal(after[DECODER][:V], state[DECODER])
        np.testing.assert_array_equal(after[DECODER][V:], rng.normal(0.0, 0.02, (5, E)).astype(np.float32))
    grown = _logits(backend, model, ids)
    assert grown.shape == (*ids.shape, 104)
    np.testing.assert_allclose(grown[..., :V], before, atol=ATOL["float32"], rtol=0)
    # new ids run too, and the whole model is the oracle's with the resized (tied or untied) weights
    new_ids = _ids(104)
    want = numpy_model.forward(config, after, head, input_ids=new_ids)["logits"]
    np.testing.assert_allclose(_logits(backend, model, new_ids), want, atol=ATOL["float32"], rtol=0)


@pytest.mark.parametrize("backend_name", backend_params())
def test_shrinking_keeps_the_first_rows_and_rejects_bad_sizes(backend_name: str, tmp_path) -> None:
    backend = load_backend(backend_name)
    path, state = _checkpoint(tmp_path, "masked_lm", False)
    model = backend.from_pretrained("masked_lm", path)
    ids = _ids(40)
    before = _logits(backend, model, ids)
    model.resize_token_embeddings(40)
    after = model.canonical_state_dict()
    assert model.config.vocab_size == 40
    for name in (WORD, BIAS, DECODER):
        np.testing.assert_array_equal(after[name], state[name][:40])
    np.testing.assert_allclose(_logits(backend, model, ids), before[..., :40], atol=ATOL["float32"], rtol=0)
    with pytest.raises(ValueError, match=r"pad_token_id \(3\) must be in \[0, vocab_size=3\)"):
        model.resize_token_embeddings(3)
    with pytest.raises(TypeError, match="new_num_tokens must be an int"):
        model.resize_token_embeddings("50")
    with pytest.raises(ValueError, match="pad_to_multiple_of must be positive"):
        model.resize_token_embeddings(50, pad_to_multiple_of=0)
    assert model.config.vocab_size == 40  # nothing changed by a refused resize


@pytest.mark.parametrize("backend_name", backend_params())
def test_save_after_resize_loads_with_the_new_vocab_size(backend_name: str, tmp_path) -> None:
    backend = load_backend(backend_name)
    path, _ = _checkpoint(tmp_path, "masked_lm", False)  # untied: every vocab-sized parameter is stored
    model = backend.from_pretrained("masked_lm", path)
    model.resize_token_embeddings(V + 13, seed=2)
    backend.save_pretrained(model, tmp_path / "resized")
    loaded = backend.from_pretrained("masked_lm", tmp_path / "resized")
    assert loaded.config.vocab_size == V + 13
    want, got = model.canonical_state_dict(), loaded.canonical_state_dict()
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    ids = _ids(V + 13)
    np.testing.assert_array_equal(_logits(backend, loaded, ids), _logits(backend, model, ids))


@pytest.mark.parametrize("backend_name", backend_params())
def test_set_input_embeddings_stays_tied(backend_name: str, tmp_path) -> None:
    backend = load_backend(backend_name)
    path, state = _checkpoint(tmp_path, "masked_lm", True)
    model = backend.from_pretrained("masked_lm", path)
    model.resize_token_embeddings(V + 1, seed=0)
    table = np.random.default_rng(5).normal(0.0, 0.2, (V + 1, E)).astype(np.float32)
    if backend_name == "pt":
        import torch

        embedding = torch.nn.Embedding(V + 1, E, padding_idx=3)
        embedding.weight.data = torch.from_numpy(table)
        model.set_input_embeddings(embedding)
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
        assert model.get_output_embeddings().out_features == V + 1
    else:
        model.set_input_embeddings(table)
    np.testing.assert_array_equal(model.canonical_state_dict()[WORD], table)
    ids = _ids(V + 1)
    want = numpy_model.forward(model.config, model.canonical_state_dict(), "masked_lm", input_ids=ids)["logits"]
    np.testing.assert_allclose(_logits(backend, model, ids), want, atol=ATOL["float32"], rtol=0)
    wrong = np.zeros((V, E), np.float32)
    with pytest.raises(ValueError, match="use resize_token_embeddings"):
        model.set_input_embeddings(torch.nn.Embedding(V, E) if backend_name == "pt" else wrong)


def test_pt_resize_keeps_the_decoder_the_embedding_tensor(tmp_path) -> None:
    backend = load_backend("pt")
    path, _ = _checkpoint(tmp_path, "causal_lm", True)
    model = backend.from_pretrained("causal_lm", path)
    embedding = model.resize_token_embeddings(V + 4)
    assert embedding is model.get_input_embeddings() and embedding.num_embeddings == V + 4
    decoder = model.get_output_embeddings()
    assert decoder.weight is embedding.weight and decoder.bias is model.cls.predictions.bias
    assert decoder.out_features == V + 4


def test_the_three_frameworks_resize_to_the_same_weights(tmp_path) -> None:
    """From one checkpoint and one seed, every framework holds the same canonical weights, new rows included."""
    path, _ = _checkpoint(tmp_path, "masked_lm", False)
    states = {}
    for name in BACKEND_NAMES:
        backend = load_backend(name)
        model = backend.from_pretrained("masked_lm", path)
        model.resize_token_embeddings(V + 6, pad_to_multiple_of=4, seed=21)  # 105 -> 108
        states[name] = model.canonical_state_dict()
    reference = states.pop("pt")
    assert reference[WORD].shape == (108, E)
    for name, state in states.items():
        assert sorted(state) == sorted(reference), name
        for key in reference:
            np.testing.assert_array_equal(state[key], reference[key], err_msg=f"{name}: {key}")


@pytest.mark.parametrize("backend", backend_params())
def test_added_tokens_then_resize_then_run(backend: str, tmp_path) -> None:
    """The user's flow: add tokens to the tokenizer, resize the model to ``len(tokenizer)``, encode text with the
    new tokens (never split), run the masked LM, save both and load them back."""
    from roformer_conversion import SAMPLE_CHECKPOINT
    from roformer_core import RoFormerTokenizerFast

    be = load_backend(backend)
    tokenizer = RoFormerTokenizerFast.from_pretrained(SAMPLE_CHECKPOINT)
    model = be.from_pretrained("masked_lm", SAMPLE_CHECKPOINT)
    old_size = model.config.vocab_size
    assert tokenizer.add_tokens(["机器学习", "深度模型"]) == 2
    assert tokenizer.add_special_tokens({"additional_special_tokens": ["[ENT]"]}) == 1
    assert len(tokenizer) == old_size + 3
    model.resize_token_embeddings(len(tokenizer), seed=0)
    assert model.config.vocab_size == len(tokenizer)
    batch = tokenizer(["[ENT]机器学习和深度模型"], return_tensors="np")
    ids = batch["input_ids"]
    new_ids = [tokenizer.convert_tokens_to_ids(t) for t in ("[ENT]", "机器学习", "深度模型")]
    assert new_ids == [old_size + 2, old_size, old_size + 1]
    assert set(new_ids) <= set(ids[0].tolist())
    logits = np.asarray(be.run(model, dict(batch))["logits"])
    assert logits.shape == (1, ids.shape[1], len(tokenizer)) and np.isfinite(logits).all()
    tokenizer.save_pretrained(tmp_path)
    be.save_pretrained(model, tmp_path)
    reloaded = be.from_pretrained("masked_lm", tmp_path)
    again = RoFormerTokenizerFast.from_pretrained(tmp_path)(["[ENT]机器学习和深度模型"], return_tensors="np")
    np.testing.assert_array_equal(again["input_ids"], ids)
    np.testing.assert_allclose(be.run(reloaded, dict(again))["logits"], logits, rtol=0, atol=ATOL["float32"])
