"""Tokenizer throughput: our `RoFormerTokenizerFast` vs the reference (transformers 4.57.6), in one run.

Both encode the same batch of Chinese sentences (with a little English and digits) with the same word-level
vocabulary: every character of the corpus plus every other multi-character word rjieba yields, so both the
whole-word path and the character fallback run. Each timed run starts from a freshly constructed tokenizer, so our
per-word cache starts empty. Ids (and, for the offsets run, offsets) must be identical.

Usage::

    python benchmarks/bench_tokenizers.py [--sentences 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rjieba  # noqa: E402

from roformer_core.tokenization import RoFormerTokenizerFast  # noqa: E402

CLAUSES = [
    "永和服装饰品有限公司今天正式开业",
    "今天天气非常好",
    "我们一起去公园散步吧",
    "顺便讨论一下机器学习的最新进展",
    "中华人民共和国成立于1949年10月1日",
    "自然语言处理是人工智能领域中的一个重要方向",
    "他说这个问题很难",
    "但是我们一定能解决",
    "北京大学和清华大学都是中国著名的高等学府",
    "研究人员发现深度学习模型在很多任务上取得了突破",
    "这是一个包含English单词的中文句子",
    "会议将于下周三上午九点在三楼会议室举行",
    "请各位同事提前做好准备",
    "随着经济的快速发展",
    "城市的交通问题越来越严重",
    "政府出台了一系列新的政策来缓解拥堵",
    "春天来了",
    "花园里的花都开了",
    "孩子们在草地上快乐地奔跑",
    "这家餐厅的菜味道很好",
    "价格也比较合理",
    "他每天早上六点起床跑步",
    "已经坚持了整整三年",
    "科学家们正在研究一种新的治疗方法",
    "希望能够帮助更多的病人",
    "这本书讲述了一个感人的故事",
    "我昨天在网上买了一台新电脑",
    "物流速度非常快",
    "学生们认真地听老师讲课",
    "长江是中国最长的河流",
    "全长约6300公里",
    "人工智能技术正在改变我们的生活方式",
]
PUNCTUATION = ["，", "。", "；", "！", "？", "、"]


def make_corpus(count: int, seed: int = 0) -> list[str]:
    """`count` sentences of 1-4 random clauses joined by Chinese punctuation."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        clauses = rng.sample(CLAUSES, rng.randint(1, 4))
        sentences.append("".join(clause + rng.choice(PUNCTUATION) for clause in clauses))
    return sentences


def make_vocab(corpus: list[str]) -> list[str]:
    """Special tokens, every character, every other multi-character rjieba word, a few English wordpieces."""
    words = collections.Counter(word for text in corpus for word in rjieba.cut(text.lower(), False))
    characters = sorted({character for text in corpus for character in text.lower()} - {" "})
    multi = [word for word, _ in words.most_common() if len(word) > 1 and not word.isascii()][::2]
    english = ["english", "eng", "##lish", "19", "##49", "10", "63", "##00"]
    return list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *characters, *multi, *english]))


def _best_rate(make_tokenizer, corpus: list[str], repeats: int, **kwargs) -> tuple[float, object]:
    chars = sum(map(len, corpus))
    best, output = 0.0, None
    for _ in range(repeats):
        tokenizer = make_tokenizer()
        start = time.perf_counter()
        output = tokenizer(corpus, **kwargs)
        best = max(best, chars / (time.perf_counter() - start))
    return best, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from transformers import RoFormerTokenizerFast as ReferenceFast

    corpus = make_corpus(args.sentences)
    with tempfile.TemporaryDirectory() as directory:
        vocab_file = os.path.join(directory, "vocab.txt")
        Path(vocab_file).write_text("".join(token + "\n" for token in make_vocab(corpus)), encoding="utf-8")
        print(
            f"{len(corpus)} sentences, {sum(map(len, corpus))} chars, vocab {len(make_vocab(corpus))}, "
            f"{os.cpu_count()} CPUs"
        )
        for label, kwargs in (("ids", {}), ("ids+offsets", {"return_offsets_mapping": True})):
            ours_rate, ours = _best_rate(
                lambda: RoFormerTokenizerFast(vocab_file=vocab_file), corpus, args.repeats, **kwargs
            )
            ref_rate, ref = _best_rate(lambda: ReferenceFast(vocab_file=vocab_file), corpus, args.repeats, **kwargs)
            identical = ours["input_ids"] == ref["input_ids"]
            if "return_offsets_mapping" in kwargs:
                identical = identical and ours["offset_mapping"] == [
                    list(map(tuple, row)) for row in ref["offset_mapping"]
                ]
            print(
                f"{label:12s} ours {ours_rate / 1e6:6.2f} M chars/s | reference {ref_rate / 1e6:6.2f} M chars/s | "
                f"ratio {ours_rate / ref_rate:5.1f}x | identical: {identical}"
            )
            if not identical:
                raise SystemExit("outputs differ from the reference")


if __name__ == "__main__":
    main()
