"""What PyTorch and Hugging Face users do with a model: transformers.Trainer (train, save, resume), accelerate,
num_parameters / tie_weights as transformers defines them, torch.jit.trace and torch.export."""

from __future__ import annotations

import json
import warnings

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
accelerate = pytest.importorskip("accelerate")
safetensors_torch = pytest.importorskip("safetensors.torch")

from torch.utils._pytree import tree_leaves  # noqa: E402

import roformer_pt  # noqa: E402
from roformer_core import RoFormerConfig, get_head  # noqa: E402
from roformer_core.checkpoint import CONFIG_STATE_KEY  # noqa: E402
from roformer_core.heads import HEADS, MODEL, HeadSpec  # noqa: E402

from .tolerances import ATOL  # noqa: E402

TINY = {
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 32,
    "num_labels": 3,
}
EXAMPLES, LENGTH, CHOICES = 16, 8, 2
LOSS_HEADS = [head for head in HEADS if head is not MODEL]
# graph capture takes seconds per class: the classes whose inputs or outputs differ in structure (tied weights,
# a cache, [B, C, L] inputs, two logits)
CAPTURE_HEADS = [
    head for head in HEADS if head.name in ("masked_lm", "causal_lm", "multiple_choice", "question_answering")
]


def tiny_model(head: HeadSpec, seed: int = 0, **overrides):
    config = RoFormerConfig(**{**TINY, "is_decoder": head.name == "causal_lm", **overrides})
    torch.manual_seed(seed)
    return getattr(roformer_pt, head.class_name)(config)


def dataset(head: HeadSpec) -> list[dict[str, torch.Tensor]]:
    """A fixed tiny training set whose labels are a function of the ids (so the loss can go down)."""
    generator = torch.Generator().manual_seed(1)
    shape = (EXAMPLES, CHOICES, LENGTH) if head.name == "multiple_choice" else (EXAMPLES, LENGTH)
    ids = torch.randint(1, TINY["vocab_size"], shape, generator=generator)
    if head.name == "causal_lm":  # counting sequences: each next token is predictable
        ids = (ids[:, :1] + torch.arange(LENGTH)) % (TINY["vocab_size"] - 1) + 1
    if head.name == "sequence_classification":  # the first token names the class
        ids[:, 0] = 1 + torch.arange(EXAMPLES) % TINY["num_labels"]
    label_columns = {
        "masked_lm": lambda: {"labels": ids},
        "causal_lm": lambda: {"labels": ids},
        "sequence_classification": lambda: {"labels": ids[:, 0] - 1},
        "multiple_choice": lambda: {"labels": (ids[:, 0, -1] > ids[:, 1, -1]).long()},
        "token_classification": lambda: {"labels": ids % TINY["num_labels"]},
        "question_answering": lambda: {"start_positions": ids[:, 0] % LENGTH, "end_positions": ids[:, 1] % LENGTH},
        "model": dict,
    }
    labels = label_columns[head.name]()
    columns = {"input_ids": ids, "attention_mask": torch.ones_like(ids), **labels}
    return [{name: column[n] for name, column in columns.items()} for n in range(EXAMPLES)]


def batch(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {name: torch.stack([example[name] for example in examples]) for name in examples[0]}


def eval_outputs(model, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        return dict(model(**inputs))


def training_args(output_dir, max_steps: int, gradient_checkpointing: bool = False) -> transformers.TrainingArguments:
    return transformers.TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=2e-2,
        seed=3,
        data_seed=4,
        use_cpu=True,
        report_to=[],
        save_safetensors=True,
        save_strategy="steps",
        save_steps=2,
        logging_steps=1,
        gradient_checkpointing=gradient_checkpointing,
        disable_tqdm=True,
    )


# ---- transformers.Trainer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", LOSS_HEADS, ids=[head.name for head in LOSS_HEADS])
def test_trainer_trains_saves_resumes_and_reloads(head: HeadSpec, tmp_path) -> None:
    data = dataset(head)
    everything = batch(data)
    model = tiny_model(head)
    loss_before = eval_outputs(model, everything)["loss"]

    # one class also goes through Trainer's gradient_checkpointing flag
    args = training_args(tmp_path / "run", 4, gradient_checkpointing=head.name == "masked_lm")
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    assert trainer.state.global_step == 4
    after = eval_outputs(model, everything)
    assert after["loss"] < 0.9 * loss_before, (loss_before, after["loss"])

    # save_model writes the state dict only (Trainer calls save_pretrained on transformers.PreTrainedModel alone):
    # the config travels inside it
    trainer.save_model(tmp_path / "saved")
    assert not (tmp_path / "saved" / "config.json").exists()
    cls = type(model)
    reloaded = cls.from_pretrained(tmp_path / "saved")
    assert reloaded.config == model.config
    for value, expected in zip(tree_leaves(eval_outputs(reloaded, everything)), tree_leaves(after), strict=True):
        assert torch.equal(value, expected)

    # resuming from checkpoint-2 in a new Trainer continues to step 4 and lands on the same weights
    resumed_model = tiny_model(head, seed=1)
    resumed = transformers.Trainer(model=resumed_model, args=training_args(tmp_path / "resumed", 4), train_dataset=data)
    resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    assert resumed.state.global_step == 4
    logged = [
        [(entry["step"], entry["loss"]) for entry in t.state.log_history if "loss" in entry] for t in (trainer, resumed)
    ]
    assert logged[0] == logged[1] and len(logged[0]) == 4  # steps 1-2 restored from the checkpoint, 3-4 retrained
    expected = model.state_dict()
    for name, value in resumed_model.state_dict().items():
        assert torch.equal(value, expected[name]), name
    if head.name in ("masked_lm", "causal_lm"):
        decoder = resumed_model.cls.predictions.decoder
        assert decoder.weight is resumed_model.roformer.embeddings.word_embeddings.weight
        assert decoder.bias is resumed_model.cls.predictions.bias


def test_trainer_saves_and_reloads_the_bare_model(tmp_path) -> None:
    model = tiny_model(MODEL)
    trainer = transformers.Trainer(model=model, args=training_args(tmp_path / "run", 1))
    trainer.save_model(tmp_path / "saved")
    inputs = {"input_ids": batch(dataset(MODEL))["input_ids"]}
    reloaded = roformer_pt.RoFormerModel.from_pretrained(tmp_path / "saved")
    assert torch.equal(
        eval_outputs(reloaded, inputs)["last_hidden_state"], eval_outputs(model, inputs)["last_hidden_state"]
    )


# ---- accelerate --------------------------------------------------------------------------------------------------


def test_accelerate_loop_saves_models_that_reload(tmp_path) -> None:
    head = get_head("masked_lm")
    data = dataset(head)
    model = tiny_model(head)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    accelerator = accelerate.Accelerator(cpu=True)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    losses = []
    for _ in range(2):
        for inputs in loader:
            loss = model(**inputs).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    assert sum(losses[-2:]) < 0.9 * sum(losses[:2]), losses

    everything = batch(data)
    expected = eval_outputs(accelerator.unwrap_model(model), everything)
    accelerator.save_model(model, tmp_path / "weights")  # model.safetensors only
    reloaded = roformer_pt.RoFormerForMaskedLM.from_pretrained(tmp_path / "weights")
    assert torch.equal(eval_outputs(reloaded, everything)["logits"], expected["logits"])

    # the save accelerate documents for transformers models, here through torch.save into pytorch_model.bin
    accelerator.unwrap_model(model).save_pretrained(
        tmp_path / "pretrained",
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
        safe_serialization=False,
    )
    assert sorted(p.name for p in (tmp_path / "pretrained").iterdir()) == ["config.json", "pytorch_model.bin"]
    reloaded = roformer_pt.RoFormerForMaskedLM.from_pretrained(tmp_path / "pretrained")
    assert torch.equal(eval_outputs(reloaded, everything)["logits"], expected["logits"])


# ---- state dict, num_parameters, tie_weights ---------------------------------------------------------------------


def test_state_dict_holds_tied_weights_once_and_loads_back(tmp_path) -> None:
    model = tiny_model(get_head("masked_lm"))
    state = model.state_dict()
    assert model._tied_weights_keys == ["cls.predictions.decoder.weight", "cls.predictions.decoder.bias"]
    assert not set(model._tied_weights_keys) & set(state)
    safetensors_torch.save_file(state, tmp_path / "model.safetensors")  # refuses tensors that share memory
    for assign in (False, True):
        other = tiny_model(get_head("masked_lm"), seed=1)
        result = other.load_state_dict(safetensors_torch.load_file(tmp_path / "model.safetensors"), assign=assign)
        assert not result.missing_keys and not result.unexpected_keys
        assert other.cls.predictions.decoder.weight is other.roformer.embeddings.word_embeddings.weight
        assert torch.equal(other.cls.predictions.decoder.weight, model.roformer.embeddings.word_embeddings.weight)
    # the config rides along (weights-only saves reload), and a state dict without it -- the reference's, with its
    # tied copies -- still loads strictly
    assert RoFormerConfig.from_dict(json.loads(bytes(state[CONFIG_STATE_KEY].tolist()))) == model.config
    ref = transformers.RoFormerForMaskedLM(transformers.RoFormerConfig(**model.config.to_dict()))
    other.load_state_dict(ref.state_dict())
    assert torch.equal(other.roformer.embeddings.word_embeddings.weight, ref.roformer.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("tie", [True, False])
def test_num_parameters_equals_the_reference(tie: bool) -> None:
    for head in HEADS:
        ours = tiny_model(head, tie_word_embeddings=tie)
        ref = getattr(transformers, head.class_name)(transformers.RoFormerConfig(**ours.config.to_dict()))
        for model in (ours, ref):  # a frozen table changes only_trainable counts
            model.get_parameter(f"{head.prefix}embeddings.token_type_embeddings.weight").requires_grad_(False)
        for only_trainable in (False, True):
            for exclude_embeddings in (False, True):
                kwargs = {"only_trainable": only_trainable, "exclude_embeddings": exclude_embeddings}
                assert ours.num_parameters(**kwargs) == ref.num_parameters(**kwargs), (head.name, kwargs)


def test_tie_weights_reties_replaced_input_embeddings() -> None:
    model = tiny_model(get_head("masked_lm"))
    replacement = torch.nn.Embedding(TINY["vocab_size"], TINY["hidden_size"], padding_idx=0)
    model.roformer.embeddings.word_embeddings = replacement
    model.tie_weights()
    assert model.cls.predictions.decoder.weight is replacement.weight
    ids = batch(dataset(MODEL))["input_ids"][:2]
    logits = eval_outputs(model, {"input_ids": ids})["logits"]
    ref = transformers.RoFormerForMaskedLM(transformers.RoFormerConfig(**model.config.to_dict()))
    ref.load_state_dict(model.state_dict(), strict=False)  # our state dict holds each tied tensor once
    ref.tie_weights()
    assert torch.equal(ref.cls.predictions.decoder.weight, replacement.weight)
    assert torch.allclose(eval_outputs(ref, {"input_ids": ids})["logits"], logits, atol=ATOL["float32"])


# ---- torch.jit.trace and torch.export ----------------------------------------------------------------------------


@pytest.mark.parametrize("head", CAPTURE_HEADS, ids=[head.name for head in CAPTURE_HEADS])
def test_jit_trace_gives_tuples_that_follow_the_input_shape(head: HeadSpec) -> None:
    model = tiny_model(head).eval()
    ids = batch(dataset(head))["input_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates jit.trace in favour of export
        # expected: the branches on the length (rotary table rows, causal mask) are recorded for L <= max positions
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, (ids[:2],))
    other = ids[2:5, ..., : LENGTH - 3]  # another batch size and length
    expected = model(other, return_dict=False)
    got = traced(other)
    assert isinstance(got, tuple) and len(got) == len(expected)
    for value, reference in zip(tree_leaves(got), tree_leaves(expected), strict=True):
        assert torch.allclose(value, reference, atol=ATOL["float32"])


@pytest.mark.parametrize("head", CAPTURE_HEADS, ids=[head.name for head in CAPTURE_HEADS])
def test_torch_export_with_a_dynamic_length(head: HeadSpec) -> None:
    model = tiny_model(head).eval()
    inputs = batch(dataset(head))
    ids, mask = inputs["input_ids"][:2], inputs["attention_mask"][:2]
    mask[1, ..., -3:] = 0
    length = torch.export.Dim("length", max=TINY["max_position_embeddings"])
    dynamic = {ids.dim() - 1: length}
    program = torch.export.export(
        model,
        args=(ids,),
        kwargs={"attention_mask": mask},
        dynamic_shapes={"input_ids": dynamic, "attention_mask": dynamic},
    )
    for cut in (0, 3):
        short_ids, short_mask = ids[..., : LENGTH - cut], mask[..., : LENGTH - cut]
        got = program.module()(short_ids, attention_mask=short_mask)
        expected = model(short_ids, attention_mask=short_mask)
        assert type(got) is type(expected) and list(got) == list(expected)
        for value, reference in zip(tree_leaves(got), tree_leaves(expected), strict=True):
            assert torch.allclose(value, reference, atol=ATOL["float32"])
