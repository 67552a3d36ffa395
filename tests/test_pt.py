"""PyTorch-specific behaviour: reference interop, compile, checkpointing, generation options, training."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import roformer_pt  # noqa: E402
from roformer_core import RoFormerConfig, get_head, save_checkpoint  # noqa: E402
from roformer_core.rotary import sinusoidal_table  # noqa: E402
from roformer_core.schema import model_schema, untie  # noqa: E402
from roformer_pt import (  # noqa: E402
    RoFormerForCausalLM,
    RoFormerForMaskedLM,
    RoFormerForQuestionAnswering,
    RoFormerForSequenceClassification,
    RoFormerModel,
)

from .cases import BASE_CONFIG  # noqa: E402
from .test_models import case_setup  # noqa: E402
from .tolerances import ATOL  # noqa: E402


def tiny(**overrides) -> RoFormerConfig:
    return RoFormerConfig(**{**BASE_CONFIG, **overrides})


def basic(head: str = "masked_lm"):
    config, state, inputs, expected = case_setup("basic", head)
    model = getattr(roformer_pt, get_head(head).class_name)
    return model.from_state_dict(config, state).eval(), {k: torch.from_numpy(v) for k, v in inputs.items()}, expected


# ---- interop with the reference ----------------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["masked_lm", "causal_lm", "question_answering", "multiple_choice"])
def test_reference_loads_our_checkpoint_without_missing_keys(head: str, tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    config, state, inputs, expected = case_setup("embedding_project_rotary_value", head)
    cls = getattr(roformer_pt, get_head(head).class_name)
    cls.from_state_dict(config, state).save_pretrained(tmp_path)
    ref_cls = getattr(transformers, cls.__name__)
    ref, info = ref_cls.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    kwargs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with torch.no_grad():
        out = ref.eval()(**kwargs)
    key = "logits" if "logits" in expected else "start_logits"
    np.testing.assert_allclose(out[key].numpy(), expected[key], atol=ATOL["float32"])


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "pytorch_model.bin"])
def test_we_load_the_reference_checkpoint(safe: bool, tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    config, state, inputs, expected = case_setup("basic", "masked_lm")
    ref = transformers.RoFormerForMaskedLM(transformers.RoFormerConfig(**config.to_dict()))
    full = untie(model_schema(config, "masked_lm"), state)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in full.items()})
    ref.save_pretrained(tmp_path, safe_serialization=safe)
    names = {p.name for p in tmp_path.iterdir()}
    assert ("model.safetensors" in names) == safe and ("pytorch_model.bin" in names) == (not safe)
    ours = RoFormerForMaskedLM.from_pretrained(tmp_path)
    inputs.pop("labels")
    with torch.no_grad():
        logits = ours(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits
    np.testing.assert_allclose(logits.numpy(), expected["logits"], atol=ATOL["float32"])


def test_sharded_safetensors_and_config_overrides(tmp_path) -> None:
    from safetensors.numpy import save_file

    model, inputs, expected = basic()
    state = model.canonical_state_dict()
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(tmp_path / shard), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    model.config.save_pretrained(tmp_path)
    loaded = RoFormerForMaskedLM.from_pretrained(tmp_path, max_position_embeddings=8)
    assert loaded.config.max_position_embeddings == 8  # shorter table than the input: computed on demand
    inputs.pop("labels")
    with torch.no_grad():
        np.testing.assert_allclose(loaded(**inputs).logits.numpy(), expected["logits"], atol=ATOL["float32"])


def test_save_is_atomic(tmp_path) -> None:
    """A crash while the weights are being written leaves no file under the final name."""
    from roformer_core.checkpoint import write_safetensors

    class Exploding(dict):
        def __getitem__(self, key):
            if key == "b":
                raise OSError("disk full")
            return super().__getitem__(key)

    state = Exploding(a=np.ones(3, np.float32), b=np.ones(2, np.float32))
    with pytest.raises(OSError, match="disk full"):
        write_safetensors(tmp_path / "model.safetensors", state)
    assert list(tmp_path.iterdir()) == []


# ---- torch features ------------------------------------------------------------------------------------------


def test_torch_compile_matches_eager() -> None:
    model, inputs, expected = basic()
    compiled = torch.compile(model, dynamic=False)
    with torch.no_grad():
        out = compiled(**inputs)
    np.testing.assert_allclose(out.logits.numpy(), expected["logits"], atol=ATOL["float32"])
    np.testing.assert_allclose(out.loss.item(), expected["loss"], atol=ATOL["float32"])


def test_gradient_checkpointing_gives_the_same_gradients(monkeypatch) -> None:
    import roformer_pt.layers as layers

    calls = []
    real_checkpoint = layers.checkpoint
    monkeypatch.setattr(layers, "checkpoint", lambda *a, **k: calls.append(1) or real_checkpoint(*a, **k))
    model, inputs, _ = basic()
    model.train()
    for module in model.modules():  # determinism: no dropout
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.roformer.encoder.layer[0].attention.self.dropout_prob = 0.0
    model.roformer.encoder.layer[1].attention.self.dropout_prob = 0.0

    def grads():
        model.zero_grad()
        model(**inputs).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = grads()
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    assert not calls
    checkpointed = grads()
    assert len(calls) == model.config.num_hidden_layers  # every layer went through torch's checkpoint
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5)


def test_bfloat16_runs_close_to_float32() -> None:
    model, inputs, expected = basic()
    model = model.to(torch.bfloat16)
    with torch.no_grad():
        logits = model(**inputs).logits.float().numpy()
    assert np.max(np.abs(logits - expected["logits"])) < 0.1 * np.max(np.abs(expected["logits"]))


def test_training_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = RoFormerForSequenceClassification(tiny(num_labels=2)).train()
    ids = torch.randint(1, 99, (8, 6))
    labels = (ids[:, 0] > 50).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(30):
        loss = model(ids, labels=labels).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
    assert model.config.problem_type == "single_label_classification"  # written on first use, as the reference


# ---- interface details -----------------------------------------------------------------------------------------


def test_return_dict_false_gives_the_reference_tuple() -> None:
    model, inputs, expected = basic()
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True, return_dict=False)
    assert len(out) == 3  # loss, logits, hidden_states (attentions not requested: dropped)
    np.testing.assert_allclose(out[1].numpy(), expected["logits"], atol=ATOL["float32"])


def test_qa_forces_two_labels_like_the_reference() -> None:
    config = tiny(num_labels=5)
    RoFormerForQuestionAnswering(config)
    assert config.num_labels == 2


def test_interface_errors() -> None:
    model = RoFormerModel(tiny()).eval()
    ids = torch.randint(1, 99, (2, 5))
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model()
    with pytest.raises(ValueError, match="head_mask must have shape"):
        model(ids, head_mask=torch.ones(3))
    with pytest.raises(ValueError, match="token_type_ids shape"):
        model(ids, token_type_ids=torch.zeros(2, 4, dtype=torch.long))
    decoder = RoFormerModel(tiny(is_decoder=True)).eval()
    with pytest.raises(ValueError, match="add_cross_attention=True"):
        decoder(ids, encoder_hidden_states=torch.zeros(2, 3, 32))


# ---- generation --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm() -> RoFormerForCausalLM:
    torch.manual_seed(3)
    model = RoFormerForCausalLM(tiny(is_decoder=True)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)  # sharper distributions than the 0.02 initialization
    return model


def test_right_padded_prompts_continue_like_unpadded_ones(lm) -> None:
    a, b = torch.tensor([[5, 6, 7, 8]]), torch.tensor([[9, 10]])
    alone = [lm.generate(x, max_new_tokens=5)[0, x.shape[1] :] for x in (a, b)]
    batch = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    out = lm.generate(batch, attention_mask=mask, max_new_tokens=5)
    assert out.tolist()[1][:4] == [0, 0, 9, 10]  # returned left-aligned
    torch.testing.assert_close(out[0, 4:], alone[0])
    torch.testing.assert_close(out[1, 4:], alone[1])


def test_eos_stops_and_pads(lm) -> None:
    prompt = torch.tensor([[5, 6, 7]])
    free = lm.generate(prompt, max_new_tokens=6)[0, 3:].tolist()
    eos = free[2]
    stop = free.index(eos)
    out = lm.generate(prompt, max_new_tokens=6, eos_token_id=eos, pad_token_id=0)[0, 3:].tolist()
    assert out == free[: stop + 1]  # ends early: the only row finished
    # two rows: the one that emits eos is padded afterwards while the other continues as without eos
    other = next(
        p
        for p in ([9, 10, 11], [12, 13, 14], [20, 21, 22])
        if eos not in lm.generate(torch.tensor([p]), max_new_tokens=6)[0, 3:].tolist()
    )
    both = torch.tensor([[5, 6, 7], other])
    free_other = lm.generate(torch.tensor([other]), max_new_tokens=6)[0, 3:].tolist()
    out = lm.generate(both, max_new_tokens=6, eos_token_id=eos, pad_token_id=0)[:, 3:].tolist()
    assert out[0] == free[: stop + 1] + [0] * (5 - stop)
    assert out[1] == free_other


def test_sampling_is_reproducible_and_respects_top_k(lm) -> None:
    prompt = torch.tensor([[5, 6, 7]])
    draws = [
        lm.generate(prompt, do_sample=True, top_k=3, max_new_tokens=6, generator=torch.Generator().manual_seed(0))
        for _ in range(2)
    ]
    torch.testing.assert_close(draws[0], draws[1])
    greedy = lm.generate(prompt, do_sample=True, top_k=1, max_new_tokens=6)
    torch.testing.assert_close(greedy, lm.generate(prompt, max_new_tokens=6))
    assert lm.generate(prompt, max_new_tokens=0).tolist() == prompt.tolist()


def test_generate_argument_errors(lm) -> None:
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(torch.tensor([[1, 2]]), do_sample=True, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        lm.generate(torch.tensor([[1, 2]]), top_p=1.5)
    with pytest.raises(ValueError, match="is_decoder=True"):
        RoFormerForCausalLM(tiny()).generate(torch.tensor([[1, 2]]))


def test_save_checkpoint_rejects_a_file_as_directory(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        save_checkpoint(tmp_path / "file", tiny(), {})


def test_new_head_is_initialized_when_loading_an_encoder(tmp_path) -> None:
    """Loading skips random initialization of what the checkpoint fills, but a new head still gets it."""
    config, state, _, _ = case_setup("basic", "masked_lm")
    save_checkpoint(tmp_path, config, state)
    model = RoFormerForSequenceClassification.from_pretrained(tmp_path, initializer_range=0.5)
    weight = model.classifier.dense.weight
    assert abs(float(weight.std()) - 0.5) < 0.1 and float(model.classifier.dense.bias.abs().max()) == 0.0
    table = model.roformer.encoder.embed_positions.weight
    np.testing.assert_array_equal(table.numpy(), sinusoidal_table(*table.shape))


@pytest.mark.parametrize(
    "head, bad, message",
    [
        ("causal_lm", lambda y: y.fill_(99), "labels contains 99, out of range for vocab_size=99"),
        ("sequence_classification", lambda y: y.fill_(3), "labels contains 3, out of range for num_labels=3"),
        ("token_classification", lambda y: y.fill_(-2), "labels contains -2"),
        ("multiple_choice", lambda y: y.fill_(-7), "labels contains -7"),
        ("multiple_choice", lambda y: y.fill_(9), "out of range for the number of choices"),
    ],
    ids=["causal_lm", "sequence", "token_negative", "choice_negative", "choice_too_large"],
)
def test_bad_labels_name_the_problem(head: str, bad, message: str) -> None:
    # torch itself raises an IndexError on CPU and a device-side assert (a dead CUDA context) on GPU
    model, inputs, expected = basic(head)
    assert np.isclose(model(**inputs).loss.item(), expected["loss"], atol=1e-5)  # the case's labels are fine
    inputs["labels"] = bad(inputs["labels"].clone())  # (the case's arrays are shared: never write into them)
    with pytest.raises(ValueError, match=message):
        model(**inputs)
    inputs["labels"].fill_(-100)
    assert torch.isnan(model(**inputs).loss)  # every target ignored: NaN, as the reference
