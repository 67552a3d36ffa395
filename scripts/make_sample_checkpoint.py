"""Write the tiny sample checkpoint shipped with the package (``conversion/sample/``), used by ``roformer verify``.

A masked LM with ``embedding_size != hidden_size`` (so the embedding projection is exercised), random weights from a
fixed seed, and a small Chinese + English WordPiece vocabulary. Usage::

    python scripts/make_sample_checkpoint.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roformer_core import RoFormerConfig, save_checkpoint  # noqa: E402
from roformer_core.numpy_model import init_params  # noqa: E402

OUT = ROOT / "conversion" / "sample"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["今天", "天气", "非常", "有限公司", "服装", "饰品", "公园", "散步", "我们", "永和", "中国", "北京"]
TEXT = "今天天气非常好。永和服装饰品有限公司，我们去公园散步吧！中国北京的秋天很美丽？"
ENGLISH = ["ro", "##former", "uses", "rotary", "position", "em", "##bed", "##ding", "##s", "the", "a", "is", "."]


def vocabulary() -> list[str]:
    chars = sorted(set(TEXT))
    letters = list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    tokens = SPECIALS + WORDS + chars + ENGLISH + letters + [str(d) for d in range(10)] + list(",!?")
    seen: list[str] = []
    for token in tokens:
        if token not in seen:
            seen.append(token)
    return seen


def main() -> None:
    vocab = vocabulary()
    config = RoFormerConfig(
        vocab_size=len(vocab),
        embedding_size=48,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
        type_vocab_size=2,
        pad_token_id=0,
        architectures=["RoFormerForMaskedLM"],
    )
    state = init_params(config, "masked_lm", seed=2024, scale=0.1)
    OUT.mkdir(parents=True, exist_ok=True)
    save_checkpoint(OUT, config, state)
    (OUT / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer_config = {
        "tokenizer_class": "RoFormerTokenizer",
        "do_lower_case": True,
        "model_max_length": 128,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (OUT / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    specials = {k: v for k, v in tokenizer_config.items() if k.endswith("_token")}
    (OUT / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
    print(f"wrote {OUT} ({len(vocab)} tokens)")


if __name__ == "__main__":
    main()
