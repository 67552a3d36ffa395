"""``generate`` as transformers users call it, on every backend: beam search, logits processors, lengths,
``num_return_sequences``, ``GenerationConfig`` and ``generation_config.json``.

Greedy and beam results are compared with the reference's ``generate`` (``scripts/make_generation_golden.py``);
since every backend must equal the same golden ids, they also equal each other.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from roformer_core import GenerationConfig, RoFormerConfig

from .backends import backend_params, load_backend
from .cases import BASE_CONFIG, golden_path

CONFIG = RoFormerConfig(**BASE_CONFIG, is_decoder=True)


@functools.cache
def golden() -> dict[str, np.ndarray]:
    with np.load(golden_path("generation_cases.npz")) as data:
        return {k: data[k] for k in data.files}


CASE_NAMES = sorted({k.split("/")[0] for k in golden() if k.endswith("/settings")})


@functools.cache
def model(backend: str):
    """One model per backend for the whole module, so its compiled decoding steps are reused across tests."""
    state = {k[len("param/") :]: v for k, v in golden().items() if k.startswith("param/")}
    return load_backend(backend).build("causal_lm", CONFIG, state)


def generator(backend: str, seed: int):
    """Each framework's seeded random source for sampling."""
    if backend == "pt":
        import torch

        return torch.Generator().manual_seed(seed)
    if backend == "tf":
        import tensorflow as tf

        return tf.random.Generator.from_seed(seed)
    return seed


def generate(backend: str, prompts: np.ndarray, mask: np.ndarray | None = None, **settings) -> np.ndarray:
    return np.asarray(load_backend(backend).generate(model(backend), prompts, attention_mask=mask, **settings))


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("case", CASE_NAMES)
def test_generate_equals_reference(backend: str, case: str) -> None:
    record = golden()
    settings = json.loads(str(record[f"{case}/settings"]))
    got = generate(backend, record["prompts"], record["attention_mask"], pad_token_id=1, **settings)
    np.testing.assert_array_equal(got, record[f"{case}/sequences"], err_msg=f"{case}: {settings}")


def test_golden_cases_exercise_the_features() -> None:
    """The reference's outputs differ where the settings differ, so each case tests its feature."""
    record = golden()
    seqs = {name: record[f"{name}/sequences"] for name in CASE_NAMES}
    assert seqs["beam"].shape[0] == 4 and seqs["beam_early_stopping_true"].shape[0] == 6  # num_return_sequences
    # early_stopping=True ends once 3 hypotheses are done, False one token later, "never" runs to max_length
    assert [seqs[f"beam_early_stopping_{m}"].shape[1] for m in ("true", "false", "never")] == [8, 9, 15]
    new = seqs["greedy_processors"][:, 5:]
    assert not np.isin(new, [18]).any() and (new[:, -1] == 91).all()  # bad word 18 never, eos after min_new_tokens
    np.testing.assert_array_equal(seqs["greedy_min_length"], seqs["greedy_min_new_tokens"])  # 9 in all = 5 + 4 new


@pytest.mark.parametrize("backend", backend_params())
def test_right_padded_beam_search_with_token_types_agrees_across_backends(backend: str) -> None:
    """Right-padded prompts are left-aligned, then beams continue each prompt as if it were alone."""
    prompts = np.array([[67, 80, 4, 80, 47], [29, 97, 7, 0, 0]])
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    types = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])
    settings = {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 6, "repetition_penalty": 1.3}
    got = generate(backend, prompts, mask, token_type_ids=types, **settings)
    expected = generate("pt", prompts, mask, token_type_ids=types, **settings)
    np.testing.assert_array_equal(got, expected)
    alone = generate("pt", prompts[1:, :3], token_type_ids=types[1:, :3], **settings)
    np.testing.assert_array_equal(got[2:, 2:], alone)


@pytest.mark.parametrize("backend", backend_params())
def test_sampling_returns_reproducible_sequences(backend: str) -> None:
    prompts = golden()["prompts"]
    for settings in (
        {"num_return_sequences": 3},  # the compiled loop
        {"num_return_sequences": 3, "repetition_penalty": 1.3},  # the host loop
        {"num_beams": 3, "num_return_sequences": 2},  # beam sampling
    ):
        first, again = (
            generate(backend, prompts, do_sample=True, max_new_tokens=6, generator=generator(backend, 3), **settings)
            for _ in range(2)
        )
        np.testing.assert_array_equal(first, again)
        assert first.shape == (2 * settings["num_return_sequences"], 11)
        np.testing.assert_array_equal(first[:, :5], np.repeat(prompts, settings["num_return_sequences"], axis=0))
        assert len({tuple(row) for row in first[:, 5:]}) > 1  # the draws differ between returned sequences
    # top_k=1 leaves one token to draw: sampling through the processors is greedy decoding through them
    greedy = generate(backend, prompts, max_new_tokens=6, repetition_penalty=1.3)
    sampled = generate(
        backend,
        prompts,
        do_sample=True,
        top_k=1,
        max_new_tokens=6,
        repetition_penalty=1.3,
        generator=generator(backend, 0),
    )
    np.testing.assert_array_equal(sampled, greedy)


@pytest.mark.parametrize("backend", backend_params())
def test_generation_config_object_and_keyword_overrides(backend: str) -> None:
    record = golden()
    prompts, mask = record["prompts"], record["attention_mask"]
    settings = json.loads(str(record["beam_early_stopping_true/settings"]))
    config = GenerationConfig(pad_token_id=1, **{**settings, "early_stopping": False})
    got = generate(backend, prompts, mask, generation_config=config, early_stopping=True)
    np.testing.assert_array_equal(got, record["beam_early_stopping_true/sequences"])
    assert config.early_stopping is False  # the override did not change the caller's object
    # max_length (prompt + new tokens) is the same request as max_new_tokens, and an override replaces the other
    by_length = generate(backend, prompts, mask, generation_config=config, max_length=15)
    np.testing.assert_array_equal(by_length, generate(backend, prompts, mask, generation_config=config))
    assert (
        generate(backend, prompts, num_beams=3, num_return_sequences=2, max_new_tokens=0).tolist()
        == np.repeat(prompts, 2, axis=0).tolist()
    )


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({"num_beams": 0}, ValueError, "num_beams must be an integer >= 1"),
        ({"num_return_sequences": 2}, ValueError, "num_return_sequences=2 needs at least as many beams"),
        ({"num_beams": 2, "num_return_sequences": 3, "do_sample": True}, ValueError, "needs at least as many beams"),
        ({"max_length": 9, "max_new_tokens": 3}, ValueError, "either max_length .* or max_new_tokens"),
        ({"max_length": 5}, ValueError, "max_length=5 .* leaves no room after the 5-token prompt"),
        ({"early_stopping": "sometimes"}, ValueError, "early_stopping must be True, False or 'never'"),
        ({"bad_words_ids": [5, 6]}, ValueError, "bad_words_ids must be a non-empty list of non-empty lists"),
        ({"bad_words_ids": [[5], [99]]}, ValueError, "bad_words_ids contains 99, out of range for vocab_size=99"),
        ({"repetition_penalty": 0.0}, ValueError, "repetition_penalty must be > 0"),
        ({"num_beam": 3}, TypeError, "unknown setting.*'num_beam'.*num_beams"),
        ({"generation_config": {"num_beams": 3}}, TypeError, "must be a roformer_core.GenerationConfig"),
    ],
)
def test_bad_settings_are_refused_by_name(backend: str, settings: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        generate(backend, golden()["prompts"], **settings)


def test_generation_config_json_is_read_and_written_by_transformers(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    ours = GenerationConfig(
        max_new_tokens=7, num_beams=4, early_stopping="never", bad_words_ids=[[3], [4, 5]], eos_token_id=[2, 3]
    )
    ours.save_pretrained(tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "generation_config.json").read_text()) == {
        "bad_words_ids": [[3], [4, 5]],
        "early_stopping": "never",
        "eos_token_id": [2, 3],
        "max_new_tokens": 7,
        "num_beams": 4,
    }
    theirs = transformers.GenerationConfig.from_pretrained(tmp_path / "ours")
    for name in GenerationConfig.field_names():
        assert getattr(theirs, name) == getattr(ours, name), name
    written = transformers.GenerationConfig(num_beams=3, length_penalty=0.5, min_new_tokens=2, repetition_penalty=1.2)
    written.save_pretrained(tmp_path / "theirs")
    read = GenerationConfig.from_pretrained(tmp_path / "theirs")
    assert (read.num_beams, read.length_penalty, read.min_new_tokens, read.repetition_penalty) == (3, 0.5, 2, 1.2)
    assert read.extras == {"transformers_version": transformers.__version__}
    read.save_pretrained(tmp_path / "again")  # unknown keys are written back
    assert GenerationConfig.from_pretrained(tmp_path / "again") == read


def test_unimplemented_settings_from_a_file_warn(tmp_path) -> None:
    (tmp_path / "generation_config.json").write_text(json.dumps({"num_beams": 2, "suppress_tokens": [4]}))
    config = GenerationConfig.from_pretrained(tmp_path)
    assert config.extras == {"suppress_tokens": [4]}
    with pytest.warns(UserWarning, match=r"ignores .*\['suppress_tokens'\]"):
        generate("pt", golden()["prompts"], generation_config=config, max_new_tokens=2)


@pytest.mark.parametrize("backend", backend_params())
def test_save_pretrained_writes_the_generation_config_and_from_pretrained_uses_it(backend: str, tmp_path) -> None:
    be = load_backend(backend)
    lm = model(backend)
    lm.generation_config = GenerationConfig(num_beams=3, max_new_tokens=8, num_return_sequences=2, pad_token_id=1)
    try:
        be.save_pretrained(lm, tmp_path)
    finally:
        lm.generation_config = None
    assert GenerationConfig.from_pretrained(tmp_path).num_beams == 3
    loaded = be.from_pretrained("causal_lm", tmp_path)
    assert loaded.generation_config == GenerationConfig(
        num_beams=3, max_new_tokens=8, num_return_sequences=2, pad_token_id=1
    )
    if backend == "pt":  # the loaded settings drive generate(); the other backends decode alike (tests above)
        record = golden()
        got = be.generate(loaded, record["prompts"], attention_mask=record["attention_mask"])
        np.testing.assert_array_equal(got, record["beam/sequences"])


def test_prompts_from_the_tokenizer_without_sep() -> None:
    """The documented way: ``add_special_tokens=False`` so that generate continues the text, not a new segment."""
    import torch

    from roformer_conversion import SAMPLE_CHECKPOINT
    from roformer_core import RoFormerTokenizerFast
    from roformer_pt import RoFormerForCausalLM

    tokenizer = RoFormerTokenizerFast.from_pretrained(SAMPLE_CHECKPOINT)
    lm = RoFormerForCausalLM.from_pretrained(SAMPLE_CHECKPOINT, is_decoder=True)
    batch = tokenizer(["今天天气非常好。", "我们去公园"], add_special_tokens=False, padding=True, return_tensors="pt")
    out = lm.generate(**batch, max_new_tokens=4, num_beams=2)
    with_specials = tokenizer(["今天天气非常好。"], return_tensors="pt")["input_ids"]
    assert with_specials[0, -1] == tokenizer.sep_token_id  # what the default encoding would have continued after
    text = batch["input_ids"][0]
    assert tokenizer.sep_token_id not in text.tolist()
    torch.testing.assert_close(out[0, : len(text)], text)  # the first prompt is the longest: no padding
    alone = lm.generate(text[None], max_new_tokens=4, num_beams=2)
    torch.testing.assert_close(out[:1], alone)
