"""Tokenizer files: vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json (private).

The layouts are the ones transformers writes and reads for RoFormer, so a directory saved here loads in the
reference tokenizers and a directory saved by the reference loads here.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from ._tokenization_pipeline import CONTINUING_SUBWORD_PREFIX, MAX_INPUT_CHARS_PER_WORD, roformer_normalizer
from .io import atomic_write_text, atomic_write_with

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"  # tokens added beyond vocab.txt, {token: id}, as transformers writes it
#: Every file a tokenizer directory may hold (what a checkpoint conversion copies along).
TOKENIZER_FILES = (VOCAB_FILE, TOKENIZER_FILE, CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE, ADDED_TOKENS_FILE)


def load_vocab_file(vocab_file: str | os.PathLike) -> list[str]:
    """Reads vocab.txt: one token per line, id = 0-based line index, only the trailing newline removed.

    Args:
        vocab_file: path to the file.

    Returns:
        Tokens in id order (duplicates kept, so ids stay the line numbers).
    """
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"vocabulary file not found: {os.fspath(vocab_file)!r}")
    with open(vocab_file, encoding="utf-8", newline="") as handle:
        return [line[:-1] if line.endswith("\n") else line for line in handle]


def save_vocab_file(tokens: Sequence[str], path: str) -> None:
    """Writes tokens one per line in id order (the inverse of `load_vocab_file`)."""
    atomic_write_text(path, "".join(token + "\n" for token in tokens))


def load_tokenizer_json(tokenizer_file: str | os.PathLike) -> tuple[list[str], dict[str, Any]]:
    """Reads the WordPiece vocabulary and settings from a tokenizer.json.

    The pre-tokenizer stored there is a placeholder (jieba cannot be serialized) and is ignored, as the reference
    ignores it; the normalizer's lowercase/strip_accents come from the constructor arguments, as in the reference.

    Args:
        tokenizer_file: path to the file.

    Returns:
        (tokens in id order, {"continuing_subword_prefix", "max_input_chars_per_word",
        "added_tokens": {id: {"content", "special", "normalized"}}}).
    """
    if not os.path.isfile(tokenizer_file):
        raise FileNotFoundError(f"tokenizer file not found: {os.fspath(tokenizer_file)!r}")
    with open(tokenizer_file, encoding="utf-8") as handle:
        state = json.load(handle)
    model = state.get("model") or {}
    if model.get("type") != "WordPiece":
        raise ValueError(
            f"{os.fspath(tokenizer_file)!r} holds a {model.get('type')!r} model; RoFormer tokenizers need WordPiece"
        )
    vocab: dict[str, int] = model["vocab"]
    slots: list[str | None] = [None] * len(vocab)
    for token, index in vocab.items():
        if not 0 <= index < len(vocab) or slots[index] is not None:
            raise ValueError(f"{os.fspath(tokenizer_file)!r}: vocabulary ids are not exactly 0..{len(vocab) - 1}")
        slots[index] = token
    tokens: list[str] = slots  # every slot is filled: the ids are exactly 0..n-1
    normalizer = state.get("normalizer") or {}
    if (
        normalizer.get("type") != "BertNormalizer"
        or not normalizer.get("clean_text", True)
        or normalizer.get("handle_chinese_chars", False)
    ):
        warnings.warn(
            f"{os.fspath(tokenizer_file)!r}: normalizer {normalizer!r} is replaced by the RoFormer one "
            "(BertNormalizer with clean_text, no Chinese-character padding)",
            stacklevel=3,
        )
    settings = {
        "continuing_subword_prefix": model.get("continuing_subword_prefix", CONTINUING_SUBWORD_PREFIX),
        "max_input_chars_per_word": model.get("max_input_chars_per_word", MAX_INPUT_CHARS_PER_WORD),
        "added_tokens": {
            str(entry["id"]): {
                "content": entry["content"],
                "special": entry.get("special", False),
                "normalized": entry.get("normalized", not entry.get("special", False)),
            }
            for entry in state.get("added_tokens", [])
        },
    }
    return tokens, settings


def save_tokenizer_json(
    path: str,
    vocab: dict[str, int],
    *,
    unk_token: str,
    cls_token: str,
    sep_token: str,
    added_vocabulary: Sequence[dict[str, Any]],
    lowercase: bool,
    strip_accents: bool | None,
    continuing_subword_prefix: str,
    max_input_chars_per_word: int,
) -> None:
    """Writes a tokenizer.json with the layout the reference `RoFormerTokenizerFast` saves and loads.

    Its pre-tokenizer is a `BertPreTokenizer` placeholder: the reference replaces it with its jieba pre-tokenizer
    on load, and so do we (we never run the file's pipeline). `vocab` is the WordPiece vocabulary; the special
    and added tokens (`added_vocabulary`: {"content", "id", "special", "normalized"} by id) go to "added_tokens".
    """
    backend = Tokenizer(
        models.WordPiece(
            vocab=vocab,
            unk_token=unk_token,
            continuing_subword_prefix=continuing_subword_prefix,
            max_input_chars_per_word=max_input_chars_per_word,
        )
    )
    backend.normalizer = roformer_normalizer(lowercase, strip_accents)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, vocab[cls_token]), (sep_token, vocab[sep_token])],
    )
    backend.decoder = decoders.WordPiece(prefix=continuing_subword_prefix, cleanup=True)
    for entry in added_vocabulary:
        # In id order, so that each token beyond the vocabulary gets the next id, as it has here.
        backend.add_tokens([AddedToken(entry["content"], special=entry["special"], normalized=entry["normalized"])])
        if backend.token_to_id(entry["content"]) != entry["id"]:
            raise ValueError(f"added token {entry['content']!r} would not keep its id {entry['id']} in {path!r}")
    atomic_write_with(path, lambda tmp: backend.save(str(tmp)))


def read_json(path: str) -> dict[str, Any]:
    """Reads a JSON object, or {} when the file does not exist."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        content = json.load(handle)
    if not isinstance(content, dict):
        raise ValueError(f"{path!r} must hold a JSON object")
    return content


def write_json(path: str, content: dict[str, Any]) -> None:
    """Writes a JSON object the way transformers does (indent 2, sorted keys, UTF-8 kept)."""
    atomic_write_text(path, json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def token_content(value: Any) -> Any:
    """A special token as stored in config files (str, AddedToken dict or object) -> its text; None stays None."""
    if isinstance(value, dict):
        return value["content"]
    if isinstance(value, AddedToken):
        return value.content
    return value
