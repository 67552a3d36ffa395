"""Generates tests/fixtures/tokenizer/golden.json from the reference transformers tokenizers.

Usage (needs transformers==4.57.6 and rjieba; the tests themselves only read the JSON):

    python scripts/make_tokenizer_fixtures.py

The JSON holds the small test vocabulary (built here: special tokens, CJK characters, multi-character words that
rjieba yields whole and words it yields that are *not* in the vocabulary so the character fallback runs, English
wordpieces, punctuation) and, for each case, what the reference `RoFormerTokenizerFast` returns and whether the
reference `RoFormerTokenizer` (slow) agrees with it. Our two tokenizers must reproduce the fast outputs.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# rjieba (HMM off) keeps these whole and they are vocabulary entries, so they stay one token.
WHOLE_WORDS = [
    "非常", "永和", "服装", "饰品", "有限公司", "中国", "人民", "北京", "大学", "学习", "机器", "我们", "一起",
    "公园", "研究", "发现", "模型", "问题", "解决", "自然", "语言", "处理", "天气", "今天",
]  # fmt: skip
# Characters of the test sentences; words rjieba yields that are not above (e.g. "今天天气", "中华人民共和国")
# fall back to these, one character at a time.
CHARACTERS = (
    "今天气非常好永和服装饰品有限公司我们一起去公园散步吧顺便讨论下机器学习的最新进展中华人民共和国成立于年月日"
    "自然语言处理是工智能领域中个重要方向他说这问题很难但定解决北京大清都著名高等府研究员发现深度模型在多任务上取"
    "得突破文字混合句子包含单词东西南看书写汉生活真谛"
)
PUNCTUATION = list("。，、！？：；“”（）《》,.!?'\"-:;()[]")
ENGLISH = [
    "hello", "hel", "##lo", "world", "the", "un", "##aff", "##able", "a", "b", "c", "ab", "##c", "cafe", "##s",
    "'s", "n't", "do", "not", "ok", "english", "test", "##ing", "is", "it", "1", "2", "19", "##49", "##9", "0",
    "e", "é", "mask", "カ", "カガ", "ガ", "가", "ｶ", "😀",
]  # fmt: skip


def build_vocab() -> list[str]:
    """The test vocabulary in id order."""
    tokens = SPECIAL_TOKENS + WHOLE_WORDS + list(CHARACTERS) + PUNCTUATION + ENGLISH
    return list(dict.fromkeys(tokens))


# Texts on which the reference's slow and fast tokenizers agree (plain Chinese/ASCII, specials, whitespace) ...
AGREEING_TEXTS = [
    "今天天气非常好。",
    "永和服装饰品有限公司,今天天气非常好",
    "我们一起去公园散步吧，顺便讨论一下机器学习的最新进展。",
    "中华人民共和国成立于1949年10月1日。",
    "他说：“这个问题很难，但是我们一定能解决。”",
    "Hello World!",
    "hello world, unaffable things; the test-ing is ok",
    "a,b c",
    "abc!def",
    "中国人",
    "今天 [MASK] 好",
    "[CLS]中国[SEP]人民[PAD][UNK]",
    "[mask] stays text",
    "北京大学和清华大学都是中国著名的高等学府。",
    "",
    "   ",
    "\u3000\u3000中国\u3000人民\u3000",
    "it's ok, don't do not",
    "Ｈｅｌｌｏ，全角",
    "生活的真谛是",
    "x" * 150 + " hello",
    "😀中国😀 emoji",
    "𠀀𠀁 astral CJK extension B",
    "tab\there\nnewline\r\n",
    "e\u0301 combining",
]
# ... and texts on which they differ (accents, kana voicing marks, Hangul, control characters): the fast one
# normalizes before jieba, the slow one after.
DIFFERING_TEXTS = [
    "Café ab",
    "café CAFÉ",
    "カガ ｶﾞ",
    "가나 한국",
    "中\x00国\x07人\u200b民",
]

CALL_CASES: list[dict[str, Any]] = [
    {"text": "今天天气非常好。"},
    {"text": "今天天气非常好。", "text_pair": "中国人民"},
    {"text": ["中国", "我们一起去公园", ""], "padding": True},
    {"text": ["中国", "我们一起去公园"], "padding": "max_length", "max_length": 12},
    {"text": ["中国", "我们一起去公园"], "padding": True, "pad_to_multiple_of": 8},
    {"text": ["我们一起去公园散步吧"], "truncation": True, "max_length": 6},
    {"text": ["我们一起去公园散步吧"], "max_length": 5},
    {"text": [["中 中 中 中 中", "国 国 国 国 国"]], "truncation": "longest_first", "max_length": 10},
    {"text": [["中 中 中 中 中 中", "国 国 国"]], "truncation": "longest_first", "max_length": 8},
    {"text": [["中 中 中", "国 国 国 国 国 国"]], "truncation": "only_second", "max_length": 8},
    {"text": [["中 中 中 中 中 中", "国 国"]], "truncation": "only_first", "max_length": 7},
    {"text": ["中国", "人民"], "text_pair": ["你好", "hello world"], "padding": True, "return_offsets_mapping": True},
    {"text": "中国", "text_pair": "人民", "add_special_tokens": False},
    {
        "text": ["今天 [MASK] 好", "Café ab"],
        "padding": True,
        "return_special_tokens_mask": True,
        "return_offsets_mapping": True,
        "return_length": True,
    },
    {"text": ["中国"], "return_token_type_ids": False, "return_attention_mask": False},
    {"text": "hello", "padding": "max_length", "max_length": 6},
]

DECODE_CASES: list[dict[str, Any]] = [
    {"text": "今天天气非常好。"},
    {"text": "hello world, unaffable things; the test-ing is ok"},
    {"text": "it's ok, don't do not . ! ?"},
    {"text": "[CLS]中国[SEP]人民[PAD][UNK]", "skip_special_tokens": True},
    {"text": "hello , world . it ' s", "clean_up_tokenization_spaces": True},
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def generate() -> dict[str, Any]:
    """Runs the reference tokenizers on every case and returns the fixture content."""
    import tokenizers
    import transformers
    from transformers import RoFormerTokenizer, RoFormerTokenizerFast

    vocab = build_vocab()
    with tempfile.TemporaryDirectory() as directory:
        vocab_file = os.path.join(directory, "vocab.txt")
        Path(vocab_file).write_text("".join(token + "\n" for token in vocab), encoding="utf-8")
        fast = RoFormerTokenizerFast(vocab_file=vocab_file)
        slow = RoFormerTokenizer(vocab_file=vocab_file)

        texts = []
        for text in AGREEING_TEXTS + DIFFERING_TEXTS:
            encoding = fast(text, return_offsets_mapping=True)
            slow_ids = slow(text)["input_ids"]
            texts.append(
                {
                    "text": text,
                    "input_ids": encoding["input_ids"],
                    "tokens": fast.convert_ids_to_tokens(encoding["input_ids"]),
                    "offset_mapping": _jsonable(encoding["offset_mapping"]),
                    "slow_input_ids": slow_ids,
                    "slow_agrees": slow_ids == encoding["input_ids"],
                }
            )
        for entry, text in zip(texts, AGREEING_TEXTS + DIFFERING_TEXTS):
            expected_agreement = text in AGREEING_TEXTS
            if entry["slow_agrees"] != expected_agreement:
                raise RuntimeError(f"{text!r}: slow/fast agreement is {entry['slow_agrees']}, expected otherwise")

        calls = []
        for case in CALL_CASES:
            arguments = dict(case)
            text = arguments.pop("text")
            if isinstance(text, list) and text and isinstance(text[0], list):
                text = [tuple(pair) for pair in text]
            calls.append({"arguments": case, "expected": _jsonable(dict(fast(text, **arguments)))})

        decodes = []
        for case in DECODE_CASES:
            arguments = dict(case)
            ids = fast(arguments.pop("text"))["input_ids"]
            decodes.append({"ids": ids, "arguments": arguments, "expected": fast.decode(ids, **arguments)})

    return {
        "generated_by": "scripts/make_tokenizer_fixtures.py",
        "versions": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "rjieba": importlib.metadata.version("rjieba"),
        },
        "vocab": vocab,
        "texts": texts,
        "calls": calls,
        "decodes": decodes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tokenizer" / "golden.json"
    parser.add_argument("--output", type=Path, default=default)
    args = parser.parse_args()
    content = generate()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({len(content['texts'])} texts, {len(content['calls'])} calls)")


if __name__ == "__main__":
    main()
