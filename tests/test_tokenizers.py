"""RoFormer tokenizers: golden outputs of the reference, agreement of our two classes, robustness, persistence.

The golden file (tests/fixtures/tokenizer/golden.json, written by scripts/make_tokenizer_fixtures.py) holds the
test vocabulary and what the reference `RoFormerTokenizerFast` returns; every test here passes without
transformers. Tests that compare with the reference live need it and are skipped without it.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import random
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from roformer_core.tokenization import BatchEncoding, RoFormerTokenizer, RoFormerTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "fixtures" / "tokenizer" / "golden.json").read_text(encoding="utf-8"))
CLASSES = [RoFormerTokenizer, RoFormerTokenizerFast]
CLASS_IDS = ["slow", "fast"]


def _make(cls: type, vocab_file: str, **kwargs: Any) -> Any:
    return cls(vocab_file, **kwargs) if cls is RoFormerTokenizer else cls(vocab_file=vocab_file, **kwargs)


def _plain(value: Any) -> Any:
    """Lists all the way down (offsets come as tuples from us and lists from JSON)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _random_text(rng: random.Random, length: int) -> str:
    """Random Unicode: CJK, ASCII, whitespace of all kinds, controls, zero-width, combining marks, emoji, astral."""
    pool = [
        *GOLDEN["vocab"][5:],
        *"今天天气非常好中国人民 \u3000\t\n\r\x00\x07\x1c\x85\u00a0\u2028\u200b\u200d\ufeff\ufffd",
        "\u0301", "\u0308", "\u3099", "é", "É", "İ", "ß", "Σ", "ガ", "ｶﾞ", "가", "😀", "👍🏽", "𠀀", "\U0002b820",
        "\U000e0041", "\U0010fffd", "[MASK]", "[CLS]", "[mask]", "Ａ", "ﬁ", "\U0001d165\u0316", "x" * 120,
    ]  # fmt: skip
    parts = []
    for _ in range(length):
        choice = rng.random()
        if choice < 0.6:
            parts.append(rng.choice(pool))
        elif choice < 0.8:
            parts.append(chr(rng.randint(0x20, 0x7E)))
        else:
            codepoint = rng.randint(0, 0x10FFFF)
            parts.append(chr(codepoint) if not 0xD800 <= codepoint <= 0xDFFF else "\u4e2d")
    return "".join(parts)


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(token + "\n" for token in GOLDEN["vocab"]), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module", params=CLASSES, ids=CLASS_IDS)
def tokenizer(request: pytest.FixtureRequest, vocab_file: str) -> Any:
    return _make(request.param, vocab_file)


@pytest.fixture(scope="module")
def both(vocab_file: str) -> list[Any]:
    return [_make(cls, vocab_file) for cls in CLASSES]


# ---------------------------------------------------------------------- golden outputs of the reference


def test_vocabulary_exercises_both_paths(tokenizer: Any) -> None:
    vocab = tokenizer.get_vocab()
    assert {"非常", "有限公司", "##lo", "##able"} <= vocab.keys()
    # rjieba yields "今天天气" whole; it is not in the vocabulary, so it falls back to characters.
    assert "今天天气" not in vocab
    assert tokenizer.tokenize("今天天气非常好。") == ["今", "天", "天", "气", "非常", "好", "。"]
    assert tokenizer.tokenize("unaffable") == ["un", "##aff", "##able"]


@pytest.mark.parametrize("case", GOLDEN["texts"], ids=lambda case: repr(case["text"])[:30])
def test_texts_match_reference_fast(tokenizer: Any, case: dict[str, Any]) -> None:
    encoding = tokenizer(case["text"], return_offsets_mapping=True)
    assert encoding["input_ids"] == case["input_ids"]
    assert tokenizer.convert_ids_to_tokens(encoding["input_ids"]) == case["tokens"]
    assert _plain(encoding["offset_mapping"]) == case["offset_mapping"]


@pytest.mark.parametrize(
    "case", GOLDEN["calls"], ids=lambda case: json.dumps(case["arguments"], ensure_ascii=False)[:60]
)
def test_calls_match_reference_fast(tokenizer: Any, case: dict[str, Any]) -> None:
    arguments = dict(case["arguments"])
    text = arguments.pop("text")
    if isinstance(text, list) and text and isinstance(text[0], list):
        text = [tuple(pair) for pair in text]
    encoding = tokenizer(text, **arguments)
    assert isinstance(encoding, BatchEncoding)
    assert list(encoding) == list(case["expected"])
    assert _plain(dict(encoding)) == case["expected"]


@pytest.mark.parametrize("case", GOLDEN["decodes"], ids=lambda case: str(case["arguments"]))
def test_decode_matches_reference_fast(tokenizer: Any, case: dict[str, Any]) -> None:
    assert tokenizer.decode(case["ids"], **case["arguments"]) == case["expected"]


# ---------------------------------------------------------------------- our two classes agree; robustness


def test_slow_and_fast_agree_on_random_unicode(both: list[Any]) -> None:
    rng = random.Random(0)
    texts = [_random_text(rng, rng.randint(0, 30)) for _ in range(400)]
    pairs = [(texts[index], texts[-index - 1]) for index in range(50)]
    slow, fast = both
    options = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
    assert _plain(dict(slow(texts, **options))) == _plain(dict(fast(texts, **options)))
    assert _plain(dict(slow(pairs, padding=True, **options))) == _plain(dict(fast(pairs, padding=True, **options)))
    # The batch path and the one-text path agree too.
    assert [fast(text)["input_ids"] for text in texts[:50]] == fast(texts[:50])["input_ids"]


def test_offsets_point_into_the_text(tokenizer: Any) -> None:
    rng = random.Random(1)
    for _ in range(200):
        text = _random_text(rng, rng.randint(0, 20))
        encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        assert len(encoding["offset_mapping"]) == len(encoding["input_ids"])
        for start, end in encoding["offset_mapping"]:
            assert 0 <= start < end <= len(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "   \t\n ",
        "\u3000\u3000",
        "\u200b\u200d\ufeff",
        "\x00\x01\x7f",
        "\u0301\u0301",
        "😀👍🏽",
        "𠀀\U0010fffd",
    ],
)
def test_degenerate_texts_do_not_crash(tokenizer: Any, text: str) -> None:
    encoding = tokenizer(text, text, return_offsets_mapping=True)
    assert encoding["input_ids"][0] == tokenizer.cls_token_id
    assert len(encoding["input_ids"]) == len(encoding["offset_mapping"]) == len(encoding["token_type_ids"])


def test_special_tokens_in_text_survive(tokenizer: Any) -> None:
    tokens = tokenizer.tokenize("今天[MASK]好 [SEP][CLS]x[PAD] [UNK]")
    assert tokens == ["今天", "[MASK]", "好", "[SEP]", "[CLS]", "[UNK]", "[PAD]", "[UNK]"]
    encoding = tokenizer("a [MASK] b", return_offsets_mapping=True, add_special_tokens=False)
    assert encoding["input_ids"][1] == tokenizer.mask_token_id
    assert encoding["offset_mapping"][1] == (2, 8)
    # Written in lower case it is text, as in the reference (special tokens are matched before lowercasing).
    assert "[MASK]" not in tokenizer.tokenize("[mask]")


def test_additional_special_tokens(vocab_file: str) -> None:
    for cls in CLASSES:
        tokenizer = _make(cls, vocab_file, additional_special_tokens=["中国"])
        assert tokenizer.tokenize("中华人民共和国中国人") == ["中", "华", "人", "民", "共", "和", "国", "中国", "人"]
        assert tokenizer.convert_tokens_to_ids("中国") in tokenizer.all_special_ids


def test_one_megabyte_string(both: list[Any]) -> None:
    rng = random.Random(2)
    chunk = "".join(_random_text(rng, 8) + "今天天气非常好，我们一起去公园。" for _ in range(60))
    text = (chunk * (1_000_000 // len(chunk) + 1))[:1_000_000]
    start = time.perf_counter()
    slow_ids = both[0](text)["input_ids"]
    fast = both[1](text, return_offsets_mapping=True)
    assert slow_ids == fast["input_ids"]
    assert len(fast["offset_mapping"]) == len(slow_ids) > 100_000
    assert time.perf_counter() - start < 30


# ---------------------------------------------------------------------- API


def test_templates_and_masks(tokenizer: Any) -> None:
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert tokenizer.build_inputs_with_special_tokens([7, 8]) == [cls_id, 7, 8, sep_id]
    assert tokenizer.build_inputs_with_special_tokens([7], [9]) == [cls_id, 7, sep_id, 9, sep_id]
    assert tokenizer.get_special_tokens_mask([7, 8]) == [1, 0, 0, 1]
    assert tokenizer.get_special_tokens_mask([7], [9]) == [1, 0, 1, 0, 1]
    assert tokenizer.get_special_tokens_mask([cls_id, 7, sep_id], already_has_special_tokens=True) == [1, 0, 1]
    assert tokenizer.create_token_type_ids_from_sequences([7, 8]) == [0, 0, 0, 0]
    assert tokenizer.create_token_type_ids_from_sequences([7], [9, 9]) == [0, 0, 0, 1, 1, 1]
    assert tokenizer.num_special_tokens_to_add() == 2 and tokenizer.num_special_tokens_to_add(pair=True) == 3
    assert tokenizer.all_special_tokens == ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]


def test_encode_tokenize_convert_decode(tokenizer: Any) -> None:
    ids = tokenizer.encode("今天天气非常好。")
    assert ids == tokenizer("今天天气非常好。")["input_ids"]
    assert tokenizer.encode("中国", "人民") == tokenizer("中国", "人民")["input_ids"]
    assert tokenizer.tokenize("中国", "人民", add_special_tokens=True) == ["[CLS]", "中国", "[SEP]", "人民", "[SEP]"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer.convert_tokens_to_ids(tokens) == ids
    assert tokenizer.convert_tokens_to_ids("not-in-vocab") == tokenizer.unk_token_id
    assert tokenizer.convert_ids_to_tokens(10**6) == "[UNK]"
    assert tokenizer.convert_ids_to_tokens(ids, skip_special_tokens=True) == tokens[1:-1]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "今 天 天 气 非常 好 。"
    assert tokenizer.decode(np.array(ids)) == tokenizer.decode(ids) == "[CLS] 今 天 天 气 非常 好 。 [SEP]"
    assert tokenizer.decode(tokenizer.encode("hello unaffable", add_special_tokens=False)) == "hello unaffable"
    batch = tokenizer(["中国", "我们一起去公园"], padding=True, return_tensors="np")["input_ids"]
    assert tokenizer.batch_decode(batch, skip_special_tokens=True) == ["中国", "我们 一起 去 公园"]
    assert tokenizer.decode(tokenizer.mask_token_id) == "[MASK]"
    assert len(tokenizer) == tokenizer.vocab_size == len(GOLDEN["vocab"])
    assert tokenizer.is_fast is isinstance(tokenizer, RoFormerTokenizerFast)


def test_padding_side_and_truncation_side(vocab_file: str) -> None:
    tokenizer = _make(RoFormerTokenizerFast, vocab_file, padding_side="left", truncation_side="left")
    encoding = tokenizer(["中国", "我们一起去公园"], padding=True, truncation=True, max_length=5)
    pad, cls_id, sep_id = tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id
    assert encoding["input_ids"][0] == [pad, pad, cls_id, tokenizer.convert_tokens_to_ids("中国"), sep_id]
    assert encoding["input_ids"][1][1:-1] == tokenizer.convert_tokens_to_ids(["一起", "去", "公园"])
    assert encoding["attention_mask"][0] == [0, 0, 1, 1, 1]


def test_numpy_tensors_and_shapes(tokenizer: Any) -> None:
    encoding = tokenizer("中国", return_tensors="np", return_offsets_mapping=True)
    assert encoding["input_ids"].dtype == np.int64 and encoding["input_ids"].shape == (1, 3)
    assert encoding.offset_mapping.shape == (1, 3, 2)
    batch = tokenizer(["中国", "人民万岁"], padding=True, return_tensors="np", return_length=True)
    assert batch["attention_mask"].shape == batch["input_ids"].shape
    with pytest.raises(ValueError, match="padding=True"):
        tokenizer(["中国", "人民万岁"], return_tensors="np")


@pytest.mark.parametrize("framework", ["pt", "tf", "jax"])
def test_framework_tensors(vocab_file: str, framework: str) -> None:
    module = {"pt": "torch", "tf": "tensorflow", "jax": "jax"}[framework]
    pytest.importorskip(module)
    tokenizer = _make(RoFormerTokenizerFast, vocab_file)
    reference = tokenizer(["中国", "人民万岁"], padding=True, return_tensors="np", return_offsets_mapping=True)
    encoding = tokenizer(["中国", "人民万岁"], padding=True, return_tensors=framework, return_offsets_mapping=True)
    for key, value in reference.items():
        assert np.array_equal(np.asarray(encoding[key]), value)
    length = reference["input_ids"].shape[1]
    assert tuple(encoding["offset_mapping"].shape) == (2, length, 2)


def test_import_imports_no_framework() -> None:
    code = (
        "import sys, tempfile, os\n"
        "from roformer_core.tokenization import RoFormerTokenizerFast\n"
        "d = tempfile.mkdtemp(); p = os.path.join(d, 'vocab.txt')\n"
        "open(p, 'w').write('[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\n[MASK]\\n中\\n')\n"
        "RoFormerTokenizerFast(vocab_file=p)(['中', '中中'], padding=True, return_tensors='np')\n"
        "print(','.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(result.stdout.strip().split(","))
    assert not loaded & {"torch", "tensorflow", "jax", "flax", "transformers"}


# ---------------------------------------------------------------------- errors


def test_bad_arguments_raise_clear_errors(tokenizer: Any, vocab_file: str, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="text must be a str"):
        tokenizer(5)
    with pytest.raises(TypeError, match=r"text\[1\]"):
        tokenizer(["a", None])
    with pytest.raises(TypeError, match="text_pair"):
        tokenizer("a", 3)
    with pytest.raises(ValueError, match="padding"):
        tokenizer("a", padding="longer")
    with pytest.raises(ValueError, match="truncation"):
        tokenizer("a", truncation="only_third")
    with pytest.raises(ValueError, match="return_tensors"):
        tokenizer("a", return_tensors="torch")
    with pytest.raises(ValueError, match="max_length"):
        tokenizer("a", max_length=-1)
    with pytest.raises(ValueError, match="only_second"):
        tokenizer("中 中 中", truncation="only_second", max_length=3)
    with pytest.raises(ValueError, match="cannot reach max_length"):
        tokenizer("中", "国 国 国", truncation="only_first", max_length=5)
    with pytest.raises(TypeError, match="list of words"):
        tokenizer("a", is_split_into_words=True)
    with pytest.raises(TypeError, match="batch_decode"):
        tokenizer.decode([[1, 2]])
    missing = str(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        _make(type(tokenizer), missing)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        type(tokenizer).from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        type(tokenizer).from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        _make(type(tokenizer), vocab_file, mask_token="<mask>")
    with pytest.raises(ValueError, match="padding_side"):
        _make(type(tokenizer), vocab_file, padding_side="middle")


def test_unsupported_slow_arguments(vocab_file: str) -> None:
    with pytest.raises(ValueError, match="do_basic_tokenize"):
        RoFormerTokenizer(vocab_file, do_basic_tokenize=False)
    with pytest.raises(ValueError, match="never_split"):
        RoFormerTokenizer(vocab_file, never_split=["中国"])
    with pytest.warns(UserWarning, match="tokenize_chinese_chars"):
        RoFormerTokenizer(vocab_file, tokenize_chinese_chars=False)


def test_max_length_padding_without_limit_warns(tokenizer: Any) -> None:
    with pytest.warns(UserWarning, match="not padding"):
        assert tokenizer("中国", padding="max_length")["input_ids"] == tokenizer("中国")["input_ids"]


# ---------------------------------------------------------------------- persistence


@pytest.mark.parametrize("saver", CLASSES, ids=CLASS_IDS)
def test_save_and_load_round_trip(vocab_file: str, tmp_path: Path, saver: type) -> None:
    original = _make(saver, vocab_file, do_lower_case=False, model_max_length=32, additional_special_tokens=["中国"])
    texts = [case["text"] for case in GOLDEN["texts"]]
    expected = original(texts, return_offsets_mapping=True)
    written = original.save_pretrained(tmp_path)
    names = {os.path.basename(path) for path in written}
    assert names == {"vocab.txt", "tokenizer_config.json", "special_tokens_map.json"} | (
        {"tokenizer.json"} if saver is RoFormerTokenizerFast else set()
    )
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1] == GOLDEN["vocab"]
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "RoFormerTokenizer" and config["model_max_length"] == 32
    for loader in CLASSES:
        loaded = loader.from_pretrained(tmp_path)
        assert loaded.model_max_length == 32 and not loaded.do_lower_case
        assert loaded.additional_special_tokens == ["中国"]
        assert dict(loaded(texts, return_offsets_mapping=True)) == dict(expected)
    assert dict(original(texts, return_offsets_mapping=True)) == dict(expected)
    assert RoFormerTokenizerFast.from_pretrained(tmp_path, model_max_length=8).model_max_length == 8


def test_save_vocabulary(tokenizer: Any, tmp_path: Path) -> None:
    (path,) = tokenizer.save_vocabulary(tmp_path, filename_prefix="x")
    assert os.path.basename(path) == "x-vocab.txt"
    assert _make(type(tokenizer), path).get_vocab() == tokenizer.get_vocab()


def test_pickle_and_deepcopy_leave_the_original_intact(tokenizer: Any) -> None:
    texts = [case["text"] for case in GOLDEN["texts"]]
    expected = dict(tokenizer(texts, return_offsets_mapping=True))
    for clone in (pickle.loads(pickle.dumps(tokenizer)), copy.deepcopy(tokenizer)):
        assert type(clone) is type(tokenizer)
        assert dict(clone(texts, return_offsets_mapping=True)) == expected
    assert dict(tokenizer(texts, return_offsets_mapping=True)) == expected


def test_fast_loads_a_tokenizer_json_alone(vocab_file: str, tmp_path: Path) -> None:
    _make(RoFormerTokenizerFast, vocab_file).save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").unlink()
    loaded = RoFormerTokenizerFast.from_pretrained(tmp_path)
    assert loaded.get_vocab() == _make(RoFormerTokenizerFast, vocab_file).get_vocab()
    fresh = RoFormerTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    assert fresh.tokenize("今天天气非常好。") == ["今", "天", "天", "气", "非常", "好", "。"]


# ---------------------------------------------------------------------- documentation examples


# ---------------------------------------------------------------------- live comparison with the reference


@pytest.fixture(scope="module")
def reference(vocab_file: str) -> tuple[Any, Any]:
    transformers = pytest.importorskip("transformers")
    return (
        transformers.RoFormerTokenizer(vocab_file=vocab_file),
        transformers.RoFormerTokenizerFast(vocab_file=vocab_file),
    )


def test_live_random_text_matches_reference(reference: tuple[Any, Any], both: list[Any]) -> None:
    reference_slow, reference_fast = reference
    rng = random.Random(3)
    texts = [_random_text(rng, rng.randint(0, 25)) for _ in range(600)]
    expected = reference_fast(texts, return_offsets_mapping=True)
    slow_ids = reference_slow(texts)["input_ids"]
    for ours in both:
        got = ours(texts, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"]
        assert got["token_type_ids"] == expected["token_type_ids"]
        assert _plain(got["offset_mapping"]) == _plain(expected["offset_mapping"])
    # the texts exercise both cases: where the reference's two tokenizers agree (we then match both) and differ
    agreeing = sum(fast == slow for fast, slow in zip(expected["input_ids"], slow_ids))
    assert 100 < agreeing < len(texts)


@pytest.mark.parametrize("pair", [False, True])
def test_live_options_match_reference(reference: tuple[Any, Any], both: list[Any], pair: bool) -> None:
    reference_fast = reference[1]
    texts = ["中 中 中 中 中", "我们一起去公园散步吧", "", "hello world"]
    pairs = ["国 国", "国 国 国 国 国 国 国", "人民", ""] if pair else None
    grid = [
        {"padding": padding, "truncation": truncation, "max_length": max_length, "add_special_tokens": specials}
        for padding in (False, True, "max_length")
        for truncation in (None, True, "only_first", "only_second")
        for max_length in (None, 0, 2, 3, 4, 6, 9)
        for specials in (True, False)
    ]
    extra = {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_length": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for options in grid:
            try:
                expected: Any = _plain(dict(reference_fast(texts, pairs, **options, **extra)))
            except Exception:
                expected = "error"
            for ours in both:
                try:
                    got: Any = _plain(dict(ours(texts, pairs, **options, **extra)))
                except ValueError:
                    got = "error"
                assert got == expected, options


def test_live_decode_matches_reference(reference: tuple[Any, Any], tokenizer: Any) -> None:
    reference_fast = reference[1]
    rng = random.Random(4)
    for _ in range(300):
        ids = [rng.randrange(len(GOLDEN["vocab"])) for _ in range(rng.randint(0, 12))]
        for options in ({}, {"skip_special_tokens": True}, {"clean_up_tokenization_spaces": True}):
            assert tokenizer.decode(ids, **options) == reference_fast.decode(ids, **options)


def test_live_additional_special_tokens_match_reference(vocab_file: str) -> None:
    transformers = pytest.importorskip("transformers")
    options = {"additional_special_tokens": ["中国", "人民"]}
    reference_fast = transformers.RoFormerTokenizerFast(vocab_file=vocab_file, **options)
    texts = ["中华人民共和国中国人", "中国人民 hello", "[MASK]中国"]
    expected = _plain(dict(reference_fast(texts, return_offsets_mapping=True)))
    for cls in CLASSES:
        ours = _make(cls, vocab_file, **options)
        assert _plain(dict(ours(texts, return_offsets_mapping=True))) == expected
        assert ours.all_special_tokens == reference_fast.all_special_tokens
        ids = ours(texts[1])["input_ids"]
        assert ours.decode(ids, skip_special_tokens=True) == reference_fast.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("saver", CLASSES, ids=CLASS_IDS)
def test_live_reference_loads_our_save_and_we_load_theirs(
    reference: tuple[Any, Any], vocab_file: str, tmp_path: Path, saver: type
) -> None:
    import transformers

    texts = [case["text"] for case in GOLDEN["texts"]]
    ours = _make(saver, vocab_file, model_max_length=40)
    expected = ours(texts, return_offsets_mapping=True)
    ours.save_pretrained(tmp_path / "ours")
    loaded_fast = transformers.RoFormerTokenizerFast.from_pretrained(tmp_path / "ours")
    assert loaded_fast.model_max_length == 40
    assert _plain(dict(loaded_fast(texts, return_offsets_mapping=True))) == _plain(dict(expected))
    loaded_slow = transformers.RoFormerTokenizer.from_pretrained(tmp_path / "ours")
    agreeing = [case["slow_agrees"] for case in GOLDEN["texts"]]
    slow_ids = loaded_slow(texts)["input_ids"]
    assert [ids for ids, keep in zip(slow_ids, agreeing) if keep] == [
        ids for ids, keep in zip(expected["input_ids"], agreeing) if keep
    ]

    reference_class = (
        transformers.RoFormerTokenizerFast if saver is RoFormerTokenizerFast else transformers.RoFormerTokenizer
    )
    reference_class.from_pretrained(vocab_file.rsplit("/", 1)[0]).save_pretrained(tmp_path / "theirs")
    for loader in CLASSES:
        assert dict(loader.from_pretrained(tmp_path / "theirs")(texts, return_offsets_mapping=True)) == dict(
            ours(texts, return_offsets_mapping=True)
        )


def test_save_pretrained_writes_every_file_atomically(tokenizer: Any, tmp_path, monkeypatch) -> None:
    """For each file save_pretrained writes: a crash at its final rename leaves neither it nor a temporary file."""
    import roformer_core.io

    names = sorted(p.name for p in Path(tokenizer.save_pretrained(tmp_path / "ok")[0]).parent.iterdir())
    assert "vocab.txt" in names
    real_replace = os.replace
    for name in names:

        def crash(src, dst, name=name):
            if Path(dst).name == name:
                raise OSError(f"disk full writing {name}")
            real_replace(src, dst)

        monkeypatch.setattr(roformer_core.io.os, "replace", crash)
        with pytest.raises(OSError, match=f"disk full writing {name}"):
            tokenizer.save_pretrained(tmp_path / name)
        left = sorted(p.name for p in (tmp_path / name).iterdir())
        assert name not in left and not [n for n in left if n.endswith(".tmp")], left
