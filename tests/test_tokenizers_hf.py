"""The tokenizer APIs Hugging Face users call every day, compared live with transformers' RoFormer tokenizers.

`pad` and the data collators built on it, `encode_plus`/`batch_encode_plus`, pre-split words
(`is_split_into_words`, `word_ids`), overflowing windows with a stride, and `add_tokens`/`add_special_tokens`
with save and reload. Every test builds the reference tokenizers on the same vocabulary as ours
(tests/fixtures/tokenizer/golden.json) and needs transformers.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from roformer_core.tokenization import RoFormerTokenizer, RoFormerTokenizerFast

transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
VOCAB = json.loads((ROOT / "tests" / "fixtures" / "tokenizer" / "golden.json").read_text(encoding="utf-8"))["vocab"]
CLASSES = [RoFormerTokenizer, RoFormerTokenizerFast]
CLASS_IDS = ["slow", "fast"]
TEXTS = ["今天天气非常好。", "我们一起去公园散步吧", "中国人民", "hello unaffable [MASK] 中国"]
CONTEXT = "今天天气非常好我们一起去公园散步吧顺便讨论下机器学习的最新进展"


def _make(cls: type, vocab_file: str, **kwargs: Any) -> Any:
    return cls(vocab_file, **kwargs) if cls is RoFormerTokenizer else cls(vocab_file=vocab_file, **kwargs)


def _plain(value: Any) -> Any:
    """Lists all the way down, for comparing outputs (tensors, tuples, BatchEncodings)."""
    if isinstance(value, dict) or hasattr(value, "keys"):
        return {key: _plain(value[key]) for key in value}
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(token + "\n" for token in VOCAB), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module", params=CLASSES, ids=CLASS_IDS)
def ours(request: pytest.FixtureRequest, vocab_file: str) -> Any:
    return _make(request.param, vocab_file)


@pytest.fixture(scope="module")
def reference(vocab_file: str) -> Any:
    return transformers.RoFormerTokenizerFast(vocab_file=vocab_file)


# ---------------------------------------------------------------------- pad and the data collators


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_matches_reference(ours: Any, reference: Any, side: str) -> None:
    features = [
        dict(ours(text, return_special_tokens_mask=True), labels=[index] * 3) for index, text in enumerate(TEXTS)
    ]
    assert [_plain(reference(text, return_special_tokens_mask=True)) for text in TEXTS] == [
        {key: value for key, value in feature.items() if key != "labels"} for feature in _plain(features)
    ]
    calls = [
        ({}, None),
        ({"padding": "max_length", "max_length": 20}, None),
        ({"pad_to_multiple_of": 8}, "np"),
        ({"padding_side": "left" if side == "right" else "right"}, "pt"),
        ({"return_attention_mask": False}, None),
        ({"padding": False}, None),
    ]
    ours.padding_side = reference.padding_side = side
    try:
        for options, tensors in calls:
            without_mask = [{key: value for key, value in f.items() if key != "attention_mask"} for f in features]
            for batch in (features, without_mask):
                expected = reference.pad([dict(f) for f in batch], return_tensors=tensors, **options)
                got = ours.pad([dict(f) for f in batch], return_tensors=tensors, **options)
                assert list(got) == list(expected) and _plain(got) == _plain(expected), options
                if tensors is not None:
                    assert {key: value.dtype for key, value in got.items()} == {
                        key: value.dtype for key, value in expected.items()
                    }
        # a dict of lists (a batch) and a single example
        columns = {key: [f[key] for f in features] for key in features[0] if key != "labels"}
        assert _plain(ours.pad(columns)) == _plain(reference.pad(columns))
        single = {key: value for key, value in features[0].items() if key != "labels"}
        options = {"padding": "max_length", "max_length": 12}
        assert _plain(ours.pad(single, **options)) == _plain(reference.pad(dict(single), **options))
    finally:
        ours.padding_side = reference.padding_side = "right"


def test_pad_keeps_the_tensor_kind_of_its_input(ours: Any, reference: Any) -> None:
    torch = pytest.importorskip("torch")
    features = [
        {"input_ids": torch.tensor(ours(text)["input_ids"]), "label": 0.5 * index} for index, text in enumerate(TEXTS)
    ]
    got, expected = ours.pad(features), reference.pad(features)
    assert isinstance(got["input_ids"], torch.Tensor)
    assert {key: value.dtype for key, value in got.items()} == {key: value.dtype for key, value in expected.items()}
    assert _plain(got) == _plain(expected)


def test_data_collator_with_padding(ours: Any, reference: Any) -> None:
    pytest.importorskip("torch")
    features = [dict(ours(text), label=index % 2) for index, text in enumerate(TEXTS)]
    for options in ({}, {"pad_to_multiple_of": 8}, {"padding": "max_length", "max_length": 16}):
        got = transformers.DataCollatorWithPadding(ours, **options)([dict(f) for f in features])
        expected = transformers.DataCollatorWithPadding(reference, **options)([dict(f) for f in features])
        assert list(got) == list(expected) == ["input_ids", "token_type_ids", "attention_mask", "labels"]
        assert _plain(got) == _plain(expected)


@pytest.mark.parametrize("return_tensors", ["pt", "np"])
def test_data_collator_for_language_modeling(ours: Any, reference: Any, return_tensors: str) -> None:
    torch = pytest.importorskip("torch")
    texts = TEXTS * 4  # enough tokens that every branch (mask, random token, keep) is taken
    features = [ours(text, return_special_tokens_mask=True) for text in texts]
    batches = []
    for tokenizer in (ours, reference):
        collator = transformers.DataCollatorForLanguageModeling(
            tokenizer, mlm_probability=0.15, return_tensors=return_tensors
        )
        torch.manual_seed(0)
        np.random.seed(0)
        batches.append(_plain(collator([dict(f) for f in features])))
    got, expected = batches
    assert got == expected
    labels = np.array(got["labels"])
    masked = labels != -100
    assert 5 < masked.sum() < labels.size // 2
    # special tokens and padding are never chosen
    assert not (masked & (np.array(got["attention_mask"]) == 0)).any()
    assert not masked[:, 0].any()


def test_data_collator_for_token_classification(ours: Any, reference: Any) -> None:
    pytest.importorskip("torch")
    sentences = [["今天", "天气", "非常好"], ["我们", "一起去", "公园", "hello"], ["中国人民"]]
    tags = [[1, 2, 0], [1, 0, 2, 1], [3]]

    def features(tokenizer: Any) -> list[dict[str, Any]]:
        # the usual NER recipe: tokens inherit their word's tag, special tokens get -100
        result = []
        for words, word_tags in zip(sentences, tags):
            encoding = tokenizer(words, is_split_into_words=True)
            labels = [-100 if word is None else word_tags[word] for word in encoding.word_ids()]
            result.append({**encoding, "labels": labels})
        return result

    ours_features, reference_features = features(ours), features(reference)
    assert ours_features == [dict(f) for f in reference_features]
    got = transformers.DataCollatorForTokenClassification(ours)(ours_features)
    expected = transformers.DataCollatorForTokenClassification(reference)(reference_features)
    assert _plain(got) == _plain(expected)
    assert got["labels"].shape == got["input_ids"].shape


# ---------------------------------------------------------------------- encode_plus, pre-split words


def test_encode_plus_and_batch_encode_plus(ours: Any, reference: Any) -> None:
    options = {"return_special_tokens_mask": True, "return_offsets_mapping": True, "padding": True}
    for text, pair in [(TEXTS[0], None), (TEXTS[1], TEXTS[2])]:
        assert _plain(ours.encode_plus(text, pair, **options)) == _plain(reference.encode_plus(text, pair, **options))
    batch = [TEXTS[0], (TEXTS[1], TEXTS[2]), TEXTS[3]]
    assert _plain(ours.batch_encode_plus(batch, **options)) == _plain(reference.batch_encode_plus(batch, **options))
    tensors = ours.batch_encode_plus(TEXTS, padding=True, return_tensors="np")
    assert np.array_equal(
        tensors["input_ids"], reference.batch_encode_plus(TEXTS, padding=True, return_tensors="np")["input_ids"]
    )
    with pytest.raises(TypeError, match="batch_encode_plus"):
        ours.encode_plus(TEXTS)
    with pytest.raises(TypeError, match="encode_plus"):
        ours.batch_encode_plus(TEXTS[0])


def test_split_into_words_matches_reference(ours: Any, reference: Any) -> None:
    batch = [["今天天气", "非常好", "Hello", "", "  ", "中国人民"], ["我们", "[MASK]", "一起去公园", "unaffable"]]
    pairs = [["中国", "人民"], ["hello", "world"]]
    options = {"is_split_into_words": True, "return_offsets_mapping": True, "return_special_tokens_mask": True}
    for text, pair, extra in [
        (batch, None, {}),
        (batch, pairs, {"padding": True}),
        (batch[0], pairs[0], {"truncation": True, "max_length": 9}),
        (batch, None, {"padding": True, "padding_side": "left", "return_tensors": "np"}),
    ]:
        got, expected = ours(text, pair, **options, **extra), reference(text, pair, **options, **extra)
        assert _plain(got) == _plain(expected)
        rows = len(expected["input_ids"]) if isinstance(text[0], list) else 1
        for row in range(rows):
            assert got.word_ids(row) == expected.word_ids(row)
            assert got.sequence_ids(row) == expected.sequence_ids(row)
    split = ours.batch_encode_plus(list(zip(batch, pairs)), is_split_into_words=True)
    assert _plain(split) == _plain(reference.batch_encode_plus(list(zip(batch, pairs)), is_split_into_words=True))
    assert ours.encode_plus(batch[0], is_split_into_words=True).word_ids()[:3] == [None, 0, 0]
    with pytest.raises(ValueError, match="is_split_into_words"):
        ours(TEXTS[0]).word_ids()
    with pytest.raises(TypeError, match="list of words"):
        ours([["a", 1]], is_split_into_words=True)
    with pytest.raises(TypeError, match="is_split_into_words=True"):
        ours([["a", "b", "c"]])


# ---------------------------------------------------------------------- overflowing windows


def test_overflowing_windows_match_reference(ours: Any, reference: Any) -> None:
    questions = ["中国人民", "我们"]
    contexts = [CONTEXT, "中国"]
    extra = {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_length": True}
    for options in [
        {"truncation": "only_second", "max_length": 12, "stride": 3, "padding": "max_length"},
        {"truncation": True, "max_length": 12, "stride": 2},
        {"truncation": True, "max_length": 10, "stride": 0, "padding": True},
    ]:
        got = ours(questions, contexts, return_overflowing_tokens=True, **options, **extra)
        expected = reference(questions, contexts, return_overflowing_tokens=True, **options, **extra)
        assert list(got) == list(expected) and _plain(got) == _plain(expected), options
        for row in range(len(expected["input_ids"])):
            assert got.sequence_ids(row) == expected.sequence_ids(row)
    # the last call: five windows of the long context, one row for the short one
    assert got["overflow_to_sample_mapping"] == [0, 0, 0, 0, 0, 1]
    # one text: the windows still come as a batch; tensors and truncation from the left
    single = {"truncation": True, "max_length": 6, "stride": 2, "return_overflowing_tokens": True}
    assert _plain(ours(CONTEXT, **single)) == _plain(reference(CONTEXT, **single))
    padded = ours(CONTEXT, **single, padding=True, return_tensors="np")
    assert padded["input_ids"].shape == (12, 6)
    assert _plain(padded) == _plain(reference(CONTEXT, **single, padding=True, return_tensors="np"))
    ours.truncation_side = reference.truncation_side = "left"
    try:
        assert _plain(ours(CONTEXT, **single)) == _plain(reference(CONTEXT, **single))
    finally:
        ours.truncation_side = reference.truncation_side = "right"


def test_overflowing_windows_random_settings(ours: Any, reference: Any) -> None:
    rng = random.Random(5)
    pool = [*TEXTS, CONTEXT, "", "中 中 中 中"]
    for _ in range(60):
        size = rng.randint(1, 3)
        texts = [rng.choice(pool) for _ in range(size)]
        pairs = [rng.choice(pool) for _ in range(size)] if rng.random() < 0.6 else None
        options = {
            "truncation": rng.choice([True, "only_first", "only_second"]),
            "max_length": rng.randint(0, 14),
            "stride": rng.randint(0, 4),
            "padding": rng.choice([False, True]),
            "return_offsets_mapping": True,
        }
        try:
            expected: Any = _plain(reference(texts, pairs, return_overflowing_tokens=True, **options))
        except BaseException:  # tokenizers panics (a BaseException) on a stride too large for a text
            expected = "error"
        try:
            got: Any = _plain(ours(texts, pairs, return_overflowing_tokens=True, **options))
        except ValueError:
            got = "error"
        assert got == expected, (texts, pairs, options)


def test_stride_errors_are_clear(ours: Any) -> None:
    with pytest.raises(ValueError, match="stride"):
        ours(CONTEXT, truncation=True, max_length=6, stride=5, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="stride"):
        ours("中国", CONTEXT, truncation=True, max_length=8, stride=4, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="stride"):
        ours(CONTEXT, stride=-1)


# ---------------------------------------------------------------------- added tokens


def _add(tokenizer: Any) -> list[int]:
    return [
        tokenizer.add_tokens(["新词", "FooBar", "中国", "天气好"]),
        tokenizer.add_tokens("新词"),
        tokenizer.add_special_tokens({"additional_special_tokens": ["<ent>", "[MASK]"]}),
    ]


ADDED_TEXTS = ["今天天气好新词foobar FooBar <ent>中国人民 <ENT>", "新词新词", "天气好 [MASK] 中国"]


@pytest.mark.parametrize("cls", CLASSES, ids=CLASS_IDS)
def test_added_tokens_match_reference(vocab_file: str, tmp_path: Path, cls: type) -> None:
    ours, reference = _make(cls, vocab_file), transformers.RoFormerTokenizerFast(vocab_file=vocab_file)
    assert _add(ours) == _add(reference) == [4, 0, 1]
    assert len(ours) == len(reference) == len(VOCAB) + 4 and ours.vocab_size == len(VOCAB)
    assert ours.get_vocab() == reference.get_vocab()
    assert ours.get_added_vocab() == reference.get_added_vocab()
    assert ours.all_special_tokens == reference.all_special_tokens
    options = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
    expected = _plain(reference(ADDED_TEXTS, **options))
    assert _plain(ours(ADDED_TEXTS, **options)) == expected
    assert ours.convert_ids_to_tokens(expected["input_ids"][0])[1:5] == ["今天", "天气好", "新词", "FooBar"]
    for ids in expected["input_ids"]:
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)
    assert _plain(pickle.loads(pickle.dumps(ours))(ADDED_TEXTS, **options)) == expected

    ours.save_pretrained(tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "added_tokens.json").read_text(encoding="utf-8")) == {
        "新词": 223, "FooBar": 224, "天气好": 225, "<ent>": 226,
    }  # fmt: skip
    if cls is RoFormerTokenizerFast:
        saved = json.loads((tmp_path / "ours" / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
        reference.save_pretrained(tmp_path / "theirs")
        theirs = json.loads((tmp_path / "theirs" / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
        assert saved == theirs
    else:
        reference.save_pretrained(tmp_path / "theirs")
    for directory in ("ours", "theirs"):
        for loader in CLASSES:
            loaded = loader.from_pretrained(tmp_path / directory)
            assert len(loaded) == len(reference)
            assert _plain(loaded(ADDED_TEXTS, **options)) == expected, (directory, loader)
        assert _plain(transformers.RoFormerTokenizerFast.from_pretrained(tmp_path / directory)(ADDED_TEXTS)) == {
            key: expected[key] for key in ("input_ids", "token_type_ids", "attention_mask")
        }


def test_added_tokens_are_never_split_by_jieba(ours: Any, vocab_file: str) -> None:
    tokenizer = _make(type(ours), vocab_file)
    assert tokenizer.tokenize("我们一起去公园") == ["我们", "一起", "去", "公园"]
    tokenizer.add_tokens(["们一起去公"])
    assert tokenizer.tokenize("我们一起去公园") == ["我", "们一起去公", "园"]
    assert tokenizer.convert_tokens_to_ids("们一起去公") == len(VOCAB)
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    assert tokenizer.pad_token_id == len(VOCAB) + 1 and len(tokenizer) == len(VOCAB) + 2
    batch = tokenizer(["我们", "我们一起去公园"], padding=True)
    assert batch["input_ids"][0][-1] == len(VOCAB) + 1


def test_added_token_errors(ours: Any) -> None:
    from tokenizers import AddedToken

    with pytest.raises(ValueError, match="not one of"):
        ours.add_special_tokens({"bos_token": "<s>"})
    with pytest.raises(TypeError, match="new_tokens"):
        ours.add_tokens(5)
    with pytest.raises(ValueError, match="lstrip"):
        ours.add_tokens([AddedToken("x", lstrip=True)])


def test_pad_errors_are_clear(ours: Any) -> None:
    with pytest.raises(ValueError, match="input_ids"):
        ours.pad([{"attention_mask": [1]}])
    with pytest.raises(TypeError, match="list of dicts"):
        ours.pad("中国")
    with pytest.raises(ValueError, match="keys"):
        ours.pad([{"input_ids": [1]}, {"input_ids": [1], "labels": [0]}])
    with pytest.raises(ValueError, match="different lengths"):
        ours.pad([{"input_ids": [1, 2]}, {"input_ids": [1]}], padding=False, return_tensors="np")
    with pytest.raises(ValueError, match="not numbers"):
        ours.pad([{"input_ids": [1], "id": "a"}, {"input_ids": [1], "id": "b"}], return_tensors="np")
