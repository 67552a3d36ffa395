"""RoFormer tokenizers: rjieba word segmentation, whole in-vocab words, BERT-style WordPiece fallback.

`RoFormerTokenizer` and `RoFormerTokenizerFast` take the constructor arguments of the transformers classes of the
same names and return the same ids, token types, masks and offsets as the reference fast tokenizer. They share one
pipeline (`_tokenization_pipeline.py`), so they agree with each other on every input; they differ only in what
they read and write (the fast one also reads and writes tokenizer.json). docs/tokenizers.md explains the
segmentation and where the reference's own two tokenizers disagree.

No deep-learning framework is imported here; `return_tensors="pt" | "tf" | "jax"` imports it on first use.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from tokenizers import AddedToken

from ._tokenization_batch import (
    PAD_FILLS,
    PAD_TOKEN_TYPE_ID,
    SIDES,
    TENSOR_TYPES,
    BatchEncoding,
    RowLayout,
    pad_rows,
    padded_length,
    tensor_type_of,
    to_python,
    to_tensor,
    window_pairs,
    windows,
)
from ._tokenization_files import (
    ADDED_TOKENS_FILE,
    CONFIG_FILE,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_FILE,
    TOKENIZER_FILES,
    VOCAB_FILE,
    load_tokenizer_json,
    load_vocab_file,
    read_json,
    save_tokenizer_json,
    save_vocab_file,
    token_content,
    write_json,
)
from ._tokenization_pipeline import CONTINUING_SUBWORD_PREFIX, MAX_INPUT_CHARS_PER_WORD, Segmenter, Span
from .hub import pop_hub_kwargs, resolve_checkpoint
from .io import check_not_a_file

__all__ = ["TOKENIZER_FILES", "VOCAB_FILE", "BatchEncoding", "RoFormerTokenizer", "RoFormerTokenizerFast"]

# One encoded text: ids, offsets (when asked for) and word indices (for pre-split input).
_Encoded = tuple[list[int], "list[Span] | None", "list[int] | None"]

# transformers' "no limit" model_max_length, written to tokenizer_config.json as is.
VERY_LARGE_INTEGER = int(1e30)
_LARGE_INTEGER = int(1e20)

_SPECIAL_TOKEN_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_PADDING_CHOICES = {"longest": "longest", "max_length": "max_length", "do_not_pad": None}
_TRUNCATION_CHOICES = {
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
    "do_not_truncate": None,
}

# Applied to every token after the first by the reference's WordPiece decoder (cleanup=True) ...
_DECODER_CLEANUP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)
# ... and to the whole string by transformers' clean_up_tokenization when clean_up_tokenization_spaces is set.
_CLEAN_UP_TOKENIZATION = tuple(pair for pair in _DECODER_CLEANUP if pair[0] != " do not")


class _RoFormerTokenizerBase:
    """Everything users call; the public classes only differ in their constructors and the files they write."""

    vocab_files_names: ClassVar[dict[str, str]]
    is_fast: ClassVar[bool]
    model_input_names: ClassVar[list[str]] = ["input_ids", "token_type_ids", "attention_mask"]

    # ------------------------------------------------------------------ construction and state

    def _setup(
        self, tokens: list[str], config: dict[str, Any], added_tokens_decoder: Mapping[Any, Any] | None = None
    ) -> None:
        """Builds the tokenizer from its vocabulary (id order) and a JSON-able config; also used by unpickling.

        `config["added_tokens"]` lists the tokens added on top of the vocabulary (see `add_tokens`); a saved
        `added_tokens_decoder` (id -> token), as transformers writes it, is turned into that list first.
        """
        if added_tokens_decoder is not None:
            config["added_tokens"] = _added_entries(tokens, config, added_tokens_decoder)
        config.setdefault("added_tokens", [])  # pickles made before tokens could be added
        vocab = {token: index for index, token in enumerate(tokens)}
        all_tokens = list(tokens)
        for entry in config["added_tokens"]:
            content, index = entry["content"], entry["id"]
            if index == len(all_tokens):
                all_tokens.append(content)
                vocab[content] = index
            elif vocab.get(content) != index:
                raise ValueError(
                    f"added token {content!r} has id {index}, but ids of tokens added beyond the {len(tokens)} "
                    f"vocabulary entries must follow on from {len(tokens)} without gaps, and a vocabulary entry "
                    "keeps its own id"
                )
        for name in (*_SPECIAL_TOKEN_NAMES, "additional_special_tokens"):
            values = config[name] if name == "additional_special_tokens" else [config[name]]
            for value in values:
                if not isinstance(value, str):
                    raise TypeError(f"{name} must be a str, got {type(value).__name__}")
                if value not in vocab:
                    raise ValueError(
                        f"{name} {value!r} is not in the vocabulary; special tokens must be vocabulary entries "
                        "(add a new one with add_special_tokens)"
                    )
        for name in ("padding_side", "truncation_side"):
            if config[name] not in SIDES:
                raise ValueError(f"{name} must be one of {SIDES}, got {config[name]!r}")
        if isinstance(config["model_max_length"], float) and config["model_max_length"].is_integer():
            config["model_max_length"] = int(config["model_max_length"])  # old configs store 1e30 as a float
        if not isinstance(config["model_max_length"], int):
            raise TypeError(f"model_max_length must be an int, got {type(config['model_max_length']).__name__}")
        self._vocab_tokens = tokens
        self._tokens = all_tokens
        self._vocab = vocab
        self._config = config
        added = config["added_tokens"]
        self._special_added_ids = {entry["id"] for entry in added if entry["special"]}
        self._segmenter = Segmenter(
            vocab,
            unk_token=config["unk_token"],
            special_tokens=[
                *self.all_special_tokens,
                *(entry["content"] for entry in added if entry["special"] or not entry["normalized"]),
            ],
            normalized_tokens={
                entry["content"]: entry["id"] for entry in added if entry["normalized"] and not entry["special"]
            },
            lowercase=config["do_lower_case"],
            strip_accents=config["strip_accents"],
            continuing_subword_prefix=config["continuing_subword_prefix"],
            max_input_chars_per_word=config["max_input_chars_per_word"],
        )

    def __getstate__(self) -> dict[str, Any]:
        # Only plain data: the Rust objects and the word cache are rebuilt, and the live object is never touched.
        return {"tokens": list(self._vocab_tokens), "config": dict(self._config)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["tokens"], state["config"])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"strip_accents={self._config['strip_accents']}, model_max_length={self.model_max_length})"
        )

    # ------------------------------------------------------------------ vocabulary and special tokens

    @property
    def vocab_size(self) -> int:
        """Number of vocabulary entries (lines of vocab.txt), without added tokens."""
        return len(self._vocab_tokens)

    def __len__(self) -> int:
        """Number of ids: the vocabulary plus the tokens added beyond it (the embedding size a model needs)."""
        return len(self._tokens)

    @property
    def vocab(self) -> dict[str, int]:
        """token -> id, added tokens included (a copy)."""
        return dict(self._vocab)

    def get_vocab(self) -> dict[str, int]:
        """token -> id, added tokens included (a copy)."""
        return dict(self._vocab)

    def get_added_vocab(self) -> dict[str, int]:
        """token -> id of the special tokens and of every token added with `add_tokens`/`add_special_tokens`."""
        tokens = [*self.all_special_tokens, *(entry["content"] for entry in self._config["added_tokens"])]
        return {token: self._vocab[token] for token in tokens}

    # ------------------------------------------------------------------ added tokens

    def add_tokens(
        self, new_tokens: str | AddedToken | Sequence[str | AddedToken], special_tokens: bool = False
    ) -> int:
        """Adds tokens that are never split (not by jieba either); new ones get ids after the vocabulary.

        As in the reference fast tokenizer, a plain added token is matched in the normalized text (so with
        do_lower_case "FooBar" also matches "foobar"); a special one is matched as written. A token that is
        already a vocabulary entry keeps its id but is no longer split. A model needs `len(tokenizer)` embedding
        rows afterwards (`resize_token_embeddings`).

        Args:
            new_tokens: a token or a list of tokens (str or `tokenizers.AddedToken` without lstrip/rstrip/
                single_word).
            special_tokens: add them as special tokens (matched as written, dropped by skip_special_tokens).

        Returns:
            How many tokens were added (tokens added before and special tokens count 0).
        """
        count = self._add_entries(_as_token_list(new_tokens, "new_tokens"), special_tokens)
        self._setup(self._vocab_tokens, self._config)
        return count

    def add_special_tokens(
        self, special_tokens_dict: Mapping[str, Any], replace_additional_special_tokens: bool = True
    ) -> int:
        """Sets special tokens, adding those not in the vocabulary (ids after the vocabulary and added tokens).

        Args:
            special_tokens_dict: keys among unk_token, sep_token, pad_token, cls_token, mask_token (a token each)
                and additional_special_tokens (a list of tokens).
            replace_additional_special_tokens: the given additional_special_tokens replace the current list
                (the replaced ones stay in the vocabulary, as in the reference); False appends to it.

        Returns:
            How many tokens were added to the vocabulary.
        """
        if not isinstance(special_tokens_dict, Mapping):
            raise TypeError(f"special_tokens_dict must be a dict, got {type(special_tokens_dict).__name__}")
        allowed = (*_SPECIAL_TOKEN_NAMES, "additional_special_tokens")
        updates: dict[str, Any] = {}
        tokens: list[Any] = []
        for name, value in special_tokens_dict.items():
            if name not in allowed:
                raise ValueError(f"special token key {name!r} is not one of {allowed}")
            if name == "additional_special_tokens":
                values = _as_token_list(value, name)
                updates[name] = [_token_text(token) for token in values]
                tokens += values
            else:
                if not isinstance(value, (str, AddedToken)):
                    raise TypeError(f"{name} must be a str or an AddedToken, got {type(value).__name__}")
                updates[name] = _token_text(value)
                tokens.append(value)
        count = self._add_entries(tokens, special=True)
        config = self._config
        for name, value in updates.items():
            if name == "additional_special_tokens" and not replace_additional_special_tokens:
                value = list(dict.fromkeys([*config[name], *value]))
            config[name] = value
        self._setup(self._vocab_tokens, config)
        return count

    def _add_entries(self, tokens: list[str | AddedToken], special: bool) -> int:
        """Appends new added-token entries to the config (the caller rebuilds); returns how many got a new id."""
        entries = self._config["added_tokens"]
        known = {*self.all_special_tokens, *(entry["content"] for entry in entries)}
        next_id = len(self._tokens)
        count = 0
        for token in tokens:
            content = _token_text(token)
            if not content or content in known:
                continue
            is_special = special or (isinstance(token, AddedToken) and token.special)
            normalized = token.normalized if isinstance(token, AddedToken) else not is_special
            index = self._vocab.get(content)
            if index is None:
                index, next_id = next_id, next_id + 1
            entries.append({"content": content, "id": index, "special": is_special, "normalized": normalized})
            known.add(content)
            count += 1
        return count

    @property
    def do_lower_case(self) -> bool:
        """Whether text is lowercased (and, unless strip_accents=False, accent-stripped) before segmentation."""
        return self._config["do_lower_case"]

    @property
    def model_max_length(self) -> int:
        """Default max_length for truncation=True / padding="max_length"; 1e30 means "no limit"."""
        return self._config["model_max_length"]

    @model_max_length.setter
    def model_max_length(self, value: int) -> None:
        if not isinstance(value, int):
            raise TypeError(f"model_max_length must be an int, got {type(value).__name__}")
        self._config["model_max_length"] = value

    @property
    def padding_side(self) -> str:
        """ "right" (default) or "left"."""
        return self._config["padding_side"]

    @padding_side.setter
    def padding_side(self, value: str) -> None:
        if value not in SIDES:
            raise ValueError(f"padding_side must be one of {SIDES}, got {value!r}")
        self._config["padding_side"] = value

    @property
    def truncation_side(self) -> str:
        """ "right" (default, drop the end) or "left" (drop the start)."""
        return self._config["truncation_side"]

    @truncation_side.setter
    def truncation_side(self, value: str) -> None:
        if value not in SIDES:
            raise ValueError(f"truncation_side must be one of {SIDES}, got {value!r}")
        self._config["truncation_side"] = value

    @property
    def clean_up_tokenization_spaces(self) -> bool:
        """Default of decode's clean_up_tokenization_spaces (False, as in the reference)."""
        return self._config["clean_up_tokenization_spaces"]

    @property
    def unk_token(self) -> str:
        """The unknown token (default "[UNK]")."""
        return self._config["unk_token"]

    @property
    def sep_token(self) -> str:
        """The separator token (default "[SEP]")."""
        return self._config["sep_token"]

    @property
    def pad_token(self) -> str:
        """The padding token (default "[PAD]")."""
        return self._config["pad_token"]

    @property
    def cls_token(self) -> str:
        """The classification token (default "[CLS]")."""
        return self._config["cls_token"]

    @property
    def mask_token(self) -> str:
        """The mask token (default "[MASK]")."""
        return self._config["mask_token"]

    @property
    def additional_special_tokens(self) -> list[str]:
        """Extra special tokens kept whole in the text."""
        return list(self._config["additional_special_tokens"])

    @property
    def unk_token_id(self) -> int:
        """Id of `unk_token`."""
        return self._vocab[self.unk_token]

    @property
    def sep_token_id(self) -> int:
        """Id of `sep_token`."""
        return self._vocab[self.sep_token]

    @property
    def pad_token_id(self) -> int:
        """Id of `pad_token`."""
        return self._vocab[self.pad_token]

    @property
    def cls_token_id(self) -> int:
        """Id of `cls_token`."""
        return self._vocab[self.cls_token]

    @property
    def mask_token_id(self) -> int:
        """Id of `mask_token`."""
        return self._vocab[self.mask_token]

    @property
    def special_tokens_map(self) -> dict[str, Any]:
        """Special-token attribute name -> token, as written to special_tokens_map.json."""
        mapping: dict[str, Any] = {name: self._config[name] for name in _SPECIAL_TOKEN_NAMES}
        if self._config["additional_special_tokens"]:
            mapping["additional_special_tokens"] = list(self._config["additional_special_tokens"])
        return mapping

    @property
    def all_special_tokens(self) -> list[str]:
        """Special tokens in transformers' order (unk, sep, pad, cls, mask, additional), without duplicates."""
        names = [self._config[name] for name in _SPECIAL_TOKEN_NAMES]
        return list(dict.fromkeys(names + list(self._config["additional_special_tokens"])))

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of `all_special_tokens`."""
        return [self._vocab[token] for token in self.all_special_tokens]

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Token(s) -> id(s); tokens outside the vocabulary map to the unk id.

        Args:
            tokens: one token or an iterable of tokens.

        Returns:
            An int for a str, else a list of ints.
        """
        unk_id = self.unk_token_id
        if isinstance(tokens, str):
            return self._vocab.get(tokens, unk_id)
        return [self._vocab.get(_require_str(token, "token"), unk_id) for token in tokens]

    def convert_ids_to_tokens(self, ids: int | Iterable[int], skip_special_tokens: bool = False) -> str | list[str]:
        """Id(s) -> token(s); ids outside the vocabulary map to the unk token.

        Args:
            ids: one id or an iterable of ids (list, numpy array, tensor).
            skip_special_tokens: drop special tokens (list input only).

        Returns:
            A str for one id, else a list of str.
        """
        if _is_int(ids):
            return self._id_to_token(int(ids))
        special = {*self.all_special_ids, *self._special_added_ids} if skip_special_tokens else ()
        return [self._id_to_token(index) for index in _id_list(ids) if index not in special]

    @property
    def pad_token_type_id(self) -> int:
        """Token type id of padding (0)."""
        return PAD_TOKEN_TYPE_ID

    def _id_to_token(self, index: int) -> str:
        return self._tokens[index] if 0 <= index < len(self._tokens) else self.unk_token

    # ------------------------------------------------------------------ templates

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """2 for [CLS] A [SEP], 3 for [CLS] A [SEP] B [SEP]."""
        return 3 if pair else 2

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """[CLS] A [SEP] or [CLS] A [SEP] B [SEP].

        Args:
            token_ids_0: ids of the first sequence.
            token_ids_1: ids of the optional second sequence.

        Returns:
            The ids with special tokens added.
        """
        output = [self.cls_token_id, *token_ids_0, self.sep_token_id]
        if token_ids_1 is not None:
            output += [*token_ids_1, self.sep_token_id]
        return output

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 where `build_inputs_with_special_tokens` puts a special token, 0 elsewhere.

        Args:
            token_ids_0: ids of the first sequence.
            token_ids_1: ids of the optional second sequence.
            already_has_special_tokens: the ids already contain special tokens; mark every special id.

        Returns:
            A list of 0/1 ints.
        """
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when already_has_special_tokens=True")
            special = set(self.all_special_ids)
            return [1 if index in special else 0 for index in token_ids_0]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """0 for [CLS] A [SEP], 1 for B [SEP].

        Args:
            token_ids_0: ids of the first sequence.
            token_ids_1: ids of the optional second sequence.

        Returns:
            A list of 0/1 ints as long as `build_inputs_with_special_tokens`' output.
        """
        first = [0] * (len(token_ids_0) + 2)
        return first if token_ids_1 is None else first + [1] * (len(token_ids_1) + 1)

    # ------------------------------------------------------------------ encoding

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """Splits text into vocabulary tokens.

        Args:
            text: the text.
            pair: an optional second text, appended after the first.
            add_special_tokens: add [CLS]/[SEP] as a model input would have them.

        Returns:
            The tokens.
        """
        _require_str(text, "text")
        if pair is not None:
            _require_str(pair, "pair")
        ids = self(
            text, pair, add_special_tokens=add_special_tokens, return_token_type_ids=False, return_attention_mask=False
        )["input_ids"]
        return [self._tokens[index] for index in ids]

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> Any:
        """Ids of one text or pair; same options as `__call__`.

        Returns:
            A list of ints, or a [1, L] tensor when `return_tensors` is given.
        """
        _require_str(text, "text")
        if text_pair is not None:
            _require_str(text_pair, "text_pair")
        return self(
            text,
            text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            return_tensors=return_tensors,
            return_token_type_ids=False,
            return_attention_mask=False,
        )["input_ids"]

    def encode_plus(
        self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None, **kwargs: Any
    ) -> Any:
        """`__call__` for exactly one text or pair (one list of words with is_split_into_words=True).

        Args:
            text: the text (or its words).
            text_pair: the optional second text (or its words).
            **kwargs: the options of `__call__`.

        Returns:
            The `BatchEncoding` of `__call__`: lists of length L ([1, L] tensors with `return_tensors`).
        """
        if kwargs.get("is_split_into_words"):
            _require_words(text, "text")
            if text_pair is not None:
                _require_words(text_pair, "text_pair")
        else:
            _require_str(text, "text (use batch_encode_plus for a batch)")
            if text_pair is not None:
                _require_str(text_pair, "text_pair")
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs: Sequence[Any], **kwargs: Any) -> Any:
        """`__call__` for a batch: texts or (text, text) pairs (lists of words with is_split_into_words=True).

        Args:
            batch_text_or_text_pairs: a list of texts or pairs.
            **kwargs: the options of `__call__`.

        Returns:
            The `BatchEncoding` of `__call__` with B rows.
        """
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError(
                "batch_text_or_text_pairs must be a list of texts or (text, text) pairs, got "
                f"{type(batch_text_or_text_pairs).__name__}; use encode_plus for one text"
            )
        if kwargs.get("is_split_into_words"):
            # A pair of pre-split texts is two lists of words; one pre-split text is a list of strings.
            pairs = [isinstance(item, (list, tuple)) and len(item) == 2 and not _is_words(item)
                     for item in batch_text_or_text_pairs]  # fmt: skip
            if any(pairs):
                if not all(pairs):
                    raise ValueError("with is_split_into_words, either every item is a pair of word lists or none")
                firsts = [list(item[0]) for item in batch_text_or_text_pairs]
                return self(firsts, [list(item[1]) for item in batch_text_or_text_pairs], **kwargs)
            return self([list(item) for item in batch_text_or_text_pairs], **kwargs)
        return self(list(batch_text_or_text_pairs), **kwargs)

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[tuple[str, str]] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | Sequence[Sequence[str]] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
    ) -> BatchEncoding:
        """Encodes a text, a pair, or a batch of either into model inputs.

        Args:
            text: a str, a list of str, or a list of (str, str) pairs; with is_split_into_words, a list of words
                (one example) or a list of such lists (a batch).
            text_pair: second text(s): a str for a str `text`, a list as long as `text` for a list (words likewise).
            add_special_tokens: add [CLS] A [SEP] (B [SEP]).
            padding: False / "do_not_pad", True / "longest" (to the longest in the batch) or "max_length".
            truncation: False / "do_not_truncate", True / "longest_first", "only_first" or "only_second".
                None (default) means "longest_first" when only `max_length` is given, as in transformers.
            max_length: length limit for truncation and "max_length" padding, special tokens included; None
                uses `model_max_length` when that is a real limit.
            stride: with return_overflowing_tokens, how many tokens each window repeats from the previous one.
            is_split_into_words: the input is pre-split into words (e.g. for NER); each word is encoded on its own
                and `word_ids()` maps tokens back to words. Offsets then point into each word.
            pad_to_multiple_of: round the padded length up to a multiple of this.
            padding_side: "right" or "left"; None uses the tokenizer's `padding_side`.
            return_tensors: None (lists), "np", "pt", "tf" or "jax"; frameworks are imported only here.
            return_token_type_ids: include token_type_ids (default True).
            return_attention_mask: include attention_mask (default True).
            return_overflowing_tokens: also return what truncation cuts off, as extra rows: windows of max_length
                tokens overlapping by `stride`, each with the template, plus overflow_to_sample_mapping ([B]);
                the output is then always a batch.
            return_special_tokens_mask: include special_tokens_mask (1 for [CLS]/[SEP]/padding).
            return_offsets_mapping: include (start, end) character offsets into the input text ((0, 0) for
                special tokens and padding).
            return_length: include the length of each (padded) sequence.

        Returns:
            A `BatchEncoding`: lists of length L for one text, B lists for a batch, or tensors of shape [B, L]
            (one text: B = 1) when `return_tensors` is set.
        """
        batched, firsts, seconds = _collect_inputs(text, text_pair, is_split_into_words)
        padding_strategy, truncation_strategy, max_length = self._resolve_strategies(
            padding, truncation, max_length, pad_to_multiple_of
        )
        if return_tensors is not None and return_tensors not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be None or one of {TENSOR_TYPES}, got {return_tensors!r}")
        if not _is_int(stride) or stride < 0:
            raise ValueError(f"stride must be a non-negative int, got {stride!r}")
        if truncation_strategy is not None and max_length is not None and stride:
            # The reference checks this against one text's template whatever the input (tokenizers' truncation).
            room = max_length - self.num_special_tokens_to_add()
            if 0 <= room < stride:
                raise ValueError(
                    f"stride ({stride}) must be at most max_length minus the {self.num_special_tokens_to_add()} "
                    f"special tokens ({room}); lower stride or raise max_length"
                )
        side = self.padding_side if padding_side is None else padding_side
        if side not in SIDES:
            raise ValueError(f"padding_side must be None or one of {SIDES}, got {padding_side!r}")

        pair_indices = [index for index, second in enumerate(seconds) if second is not None]
        inputs = firsts + [seconds[index] for index in pair_indices]
        if is_split_into_words:
            encoded: list[_Encoded] = self._segmenter.encode_words_batch(inputs, return_offsets_mapping)
        else:
            encoded = [
                (ids, offsets, None) for ids, offsets in self._segmenter.encode_batch(inputs, return_offsets_mapping)
            ]
        second_encoded: list[_Encoded | None] = [None] * len(firsts)
        for position, index in enumerate(pair_indices):
            second_encoded[index] = encoded[len(firsts) + position]

        wanted = {
            "token_type_ids": return_token_type_ids is not False,
            "attention_mask": return_attention_mask is not False,
            "special_tokens_mask": return_special_tokens_mask,
            "offset_mapping": return_offsets_mapping,
        }
        columns, layouts, sample_mapping = self._assemble(
            encoded[: len(firsts)],
            second_encoded,
            [key for key, value in wanted.items() if value],
            add_special_tokens=add_special_tokens,
            truncation_strategy=truncation_strategy,
            max_length=max_length,
            stride=stride,
            overflow=return_overflowing_tokens,
        )
        if padding_strategy is not None:
            # As in tokenizers, "longest" looks at the truncated examples, not at their overflowing windows.
            main_rows = [
                row for row, sample in enumerate(sample_mapping) if row == 0 or sample_mapping[row - 1] != sample
            ]
            target = padded_length(
                [len(columns["input_ids"][row]) for row in main_rows], padding_strategy, max_length, pad_to_multiple_of
            )
            missing = pad_rows(columns, target=target, pad_id=self.pad_token_id, side=side, keys=list(columns))
            layouts = [
                layout._replace(**{"right_pad" if side == "right" else "left_pad": count})
                for layout, count in zip(layouts, missing)
            ]
        if return_length:
            columns["length"] = [len(ids) for ids in columns["input_ids"]]
        if return_overflowing_tokens:
            columns["overflow_to_sample_mapping"] = sample_mapping

        if return_tensors is not None:
            tensors = {key: to_tensor(key, value, return_tensors) for key, value in columns.items()}
            return BatchEncoding(tensors, layouts)
        if not batched and not return_overflowing_tokens:
            # As in the reference, "length" stays a one-element list for a single text.
            return BatchEncoding(
                {key: value if key == "length" else value[0] for key, value in columns.items()}, layouts
            )
        return BatchEncoding(columns, layouts)

    def _resolve_strategies(
        self, padding: Any, truncation: Any, max_length: Any, pad_to_multiple_of: Any
    ) -> tuple[str | None, str | None, int | None]:
        """transformers' rules for combining padding, truncation and max_length."""
        if max_length is not None and (not _is_int(max_length) or max_length < 0):
            raise ValueError(f"max_length must be a non-negative int or None, got {max_length!r}")
        if pad_to_multiple_of is not None and (not _is_int(pad_to_multiple_of) or pad_to_multiple_of <= 0):
            raise ValueError(f"pad_to_multiple_of must be a positive int or None, got {pad_to_multiple_of!r}")
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"
        if padding is True:
            padding_strategy: str | None = "longest"
        elif padding is False or padding is None:
            padding_strategy = None
        elif isinstance(padding, str) and padding in _PADDING_CHOICES:
            padding_strategy = _PADDING_CHOICES[padding]
        else:
            raise ValueError(f"padding must be True, False or one of {list(_PADDING_CHOICES)}, got {padding!r}")
        if truncation is True:
            truncation_strategy: str | None = "longest_first"
        elif truncation is False or truncation is None:
            truncation_strategy = None
        elif isinstance(truncation, str) and truncation in _TRUNCATION_CHOICES:
            truncation_strategy = _TRUNCATION_CHOICES[truncation]
        else:
            raise ValueError(
                f"truncation must be True, False, None or one of {list(_TRUNCATION_CHOICES)}, got {truncation!r}"
            )
        if max_length is None:
            has_limit = self.model_max_length <= _LARGE_INTEGER
            if padding_strategy == "max_length":
                if has_limit:
                    max_length = self.model_max_length
                else:
                    warnings.warn(
                        "padding='max_length' without max_length and without a model_max_length: not padding",
                        stacklevel=3,
                    )
                    padding_strategy = None
            if truncation_strategy is not None:
                if has_limit:
                    max_length = self.model_max_length
                else:
                    warnings.warn(
                        "truncation without max_length and without a model_max_length: not truncating",
                        stacklevel=3,
                    )
                    truncation_strategy = None
        if (
            truncation_strategy is not None
            and padding_strategy is not None
            and pad_to_multiple_of is not None
            and max_length is not None
            and max_length % pad_to_multiple_of
        ):
            raise ValueError(
                f"truncation and padding are both on, so max_length ({max_length}) must be a multiple of "
                f"pad_to_multiple_of ({pad_to_multiple_of})"
            )
        return padding_strategy, truncation_strategy, max_length

    def _assemble(
        self,
        firsts: Sequence[_Encoded],
        seconds: Sequence[_Encoded | None],
        keys: list[str],
        *,
        add_special_tokens: bool,
        truncation_strategy: str | None,
        max_length: int | None,
        stride: int,
        overflow: bool,
    ) -> tuple[dict[str, list[list[Any]]], list[RowLayout], list[int]]:
        """Unpadded rows (input_ids plus `keys`) for every example and, with `overflow`, every window of it.

        Returns:
            (columns, the layout of every row, the example each row comes from).
        """
        cls_id, sep_id = self.cls_token_id, self.sep_token_id
        columns: dict[str, list[list[Any]]] = {"input_ids": []}
        columns.update((key, []) for key in keys)
        id_column = columns["input_ids"]
        type_column = columns.get("token_type_ids")
        attention_column = columns.get("attention_mask")
        special_column = columns.get("special_tokens_mask")
        offset_column = columns.get("offset_mapping")
        layouts: list[RowLayout] = []
        sample_mapping: list[int] = []
        truncate = truncation_strategy is not None and max_length is not None
        side = self.truncation_side
        none: list[Span] = [(0, 0)]
        for example, ((all_a, all_offsets_a, all_words_a), second) in enumerate(zip(firsts, seconds)):
            all_b, all_offsets_b, all_words_b = second if second is not None else (None, None, None)
            ranges_a = [(0, len(all_a))]
            ranges_b = None if all_b is None else [(0, len(all_b))]
            if truncate:
                added = self.num_special_tokens_to_add(all_b is not None) if add_special_tokens else 0
                keep_a, keep_b = _kept_lengths(
                    len(all_a), None if all_b is None else len(all_b), truncation_strategy, max_length - added
                )
                ranges_a = windows(len(all_a), keep_a, stride, side)
                if all_b is not None:
                    ranges_b = windows(len(all_b), keep_b, stride, side)
            combinations = window_pairs(ranges_a, ranges_b)
            for (start_a, stop_a), range_b in combinations if overflow else combinations[:1]:
                ids_a = all_a[start_a:stop_a]
                offsets_a = None if all_offsets_a is None else all_offsets_a[start_a:stop_a]
                words_a = None if all_words_a is None else all_words_a[start_a:stop_a]
                ids_b = offsets_b = words_b = None
                if range_b is not None:
                    start_b, stop_b = range_b
                    ids_b = all_b[start_b:stop_b]
                    offsets_b = None if all_offsets_b is None else all_offsets_b[start_b:stop_b]
                    words_b = None if all_words_b is None else all_words_b[start_b:stop_b]
                if add_special_tokens:
                    if ids_b is None:
                        input_ids = [cls_id, *ids_a, sep_id]
                    else:
                        input_ids = [cls_id, *ids_a, sep_id, *ids_b, sep_id]
                    first_length = len(ids_a) + 2
                else:
                    input_ids = ids_a if ids_b is None else ids_a + ids_b
                    first_length = len(ids_a)
                id_column.append(input_ids)
                layouts.append(
                    RowLayout(
                        0, add_special_tokens, len(ids_a), None if ids_b is None else len(ids_b), 0, words_a, words_b
                    )
                )
                sample_mapping.append(example)
                if type_column is not None:
                    # Without special tokens the reference fast tokenizer still gives the second text type 1.
                    type_column.append([0] * first_length + [1] * (len(input_ids) - first_length))
                if attention_column is not None:
                    attention_column.append([1] * len(input_ids))
                if special_column is not None:
                    special_column.append(
                        self.get_special_tokens_mask(ids_a, ids_b) if add_special_tokens else [0] * len(input_ids)
                    )
                if offset_column is not None:
                    assert offsets_a is not None
                    if not add_special_tokens:
                        offset_column.append(offsets_a + (offsets_b or []))
                    elif ids_b is None:
                        offset_column.append(none + offsets_a + none)
                    else:
                        offset_column.append(none + offsets_a + none + (offsets_b or []) + none)
        return columns, layouts, sample_mapping

    def pad(
        self,
        encoded_inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Pads encoded examples to one length, as a data collator needs (transformers' `pad`).

        input_ids, token_type_ids, attention_mask (made if missing, unless return_attention_mask=False) and
        special_tokens_mask are padded; every other key (labels, offset_mapping, ...) is returned as given, since
        collators pad labels themselves.

        Args:
            encoded_inputs: a dict of lists (one example: [L]; a batch: [B][L]) or a list of such dicts (what a
                DataLoader hands a collate function); values may also be numpy arrays or tensors.
            padding: True / "longest", "max_length" or False / "do_not_pad".
            max_length: the length for "max_length" (default: model_max_length when that is a real limit).
            pad_to_multiple_of: round the padded length up to a multiple of this.
            padding_side: "right" or "left"; None uses the tokenizer's `padding_side`.
            return_attention_mask: pad or make attention_mask (default True).
            return_tensors: None, "np", "pt", "tf" or "jax"; None keeps lists, or the tensor kind of the input.

        Returns:
            A `BatchEncoding` with the same keys (plus attention_mask).
        """
        if isinstance(encoded_inputs, (list, tuple)):
            if not encoded_inputs or not all(isinstance(example, Mapping) for example in encoded_inputs):
                raise TypeError("pad needs a dict of lists or a non-empty list of dicts (one per example)")
            keys = list(encoded_inputs[0])
            for index, example in enumerate(encoded_inputs):
                if set(example) != set(keys):
                    raise ValueError(f"example {index} has keys {sorted(example)}, example 0 has {sorted(keys)}")
            data = {key: [example[key] for example in encoded_inputs] for key in keys}
        elif isinstance(encoded_inputs, Mapping):
            data = dict(encoded_inputs)
        else:
            raise TypeError(
                f"pad needs a dict of lists or a list of dicts, got {type(encoded_inputs).__name__}; "
                "encode text with the tokenizer call first"
            )
        if "input_ids" not in data:
            raise ValueError(f"pad needs input_ids among the keys, got {list(data)}")
        if return_tensors is not None and return_tensors not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be None or one of {TENSOR_TYPES}, got {return_tensors!r}")
        side = self.padding_side if padding_side is None else padding_side
        if side not in SIDES:
            raise ValueError(f"padding_side must be None or one of {SIDES}, got {padding_side!r}")
        ids = data["input_ids"]
        first = ids[0] if isinstance(ids, (list, tuple)) and ids else ids
        if return_tensors is None:
            return_tensors = tensor_type_of(ids) or tensor_type_of(first)
        data = {key: to_python(value) for key, value in data.items()}
        padding_strategy, _, max_length = self._resolve_strategies(padding, False, max_length, pad_to_multiple_of)

        single = not data["input_ids"] or not isinstance(data["input_ids"][0], list)
        if single:
            data = {key: [value] for key, value in data.items()}
        rows = data["input_ids"]
        for key, value in data.items():
            if not isinstance(value, list) or len(value) != len(rows):
                raise ValueError(f"{key} has {len(value)} examples, input_ids has {len(rows)}")
        for index, row in enumerate(rows):
            if not isinstance(row, list) or not all(isinstance(value, int) for value in row):
                raise TypeError(f"input_ids[{index}] must be a list of ints, got {row!r:.80}")
        if return_attention_mask is not False and "attention_mask" not in data:
            data["attention_mask"] = [[1] * len(row) for row in rows]
        if padding_strategy is not None and rows:
            target = padded_length([len(row) for row in rows], padding_strategy, max_length, pad_to_multiple_of)
            keys = [key for key in ("input_ids", *PAD_FILLS) if key in data and key != "offset_mapping"]
            if return_attention_mask is False:
                keys = [key for key in keys if key != "attention_mask"]
            pad_rows(data, target=target, pad_id=self.pad_token_id, side=side, keys=keys)
        if single:
            data = {key: value[0] for key, value in data.items()}
        if return_tensors is not None:
            return BatchEncoding({key: to_tensor(key, value, return_tensors) for key, value in data.items()})
        return BatchEncoding(data)

    # ------------------------------------------------------------------ decoding

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Joins tokens with spaces, glues "##" continuations and applies the WordPiece decoder's cleanup."""
        prefix = self._config["continuing_subword_prefix"]
        parts = []
        for position, token in enumerate(tokens):
            if position:
                token = token[len(prefix) :] if token.startswith(prefix) else " " + token
            for dirty, clean in _DECODER_CLEANUP:
                token = token.replace(dirty, clean)
            parts.append(token)
        return "".join(parts)

    def decode(
        self,
        token_ids: int | Iterable[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Ids -> text, as the reference fast tokenizer decodes (tokens joined by spaces, "##" glued).

        Args:
            token_ids: one id or a 1-D sequence of ids (list, numpy array, tensor).
            skip_special_tokens: drop [CLS], [SEP], [PAD], [UNK], [MASK] and additional special tokens.
            clean_up_tokenization_spaces: also remove spaces before punctuation over the whole string; None uses
                the tokenizer's setting (False by default).

        Returns:
            The text. Chinese decodes with spaces between tokens, as in the reference.
        """
        ids = [int(token_ids)] if _is_int(token_ids) else _id_list(token_ids)
        special = {*self.all_special_ids, *self._special_added_ids} if skip_special_tokens else ()
        text = self.convert_tokens_to_string([self._id_to_token(index) for index in ids if index not in special])
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces:
            for dirty, clean in _CLEAN_UP_TOKENIZATION:
                text = text.replace(dirty, clean)
        return text

    def batch_decode(
        self,
        sequences: Iterable[Iterable[int]],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[str]:
        """`decode` for each sequence of a batch (a list of lists or a [B, L] array/tensor)."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        elif hasattr(sequences, "numpy"):
            sequences = sequences.numpy().tolist()
        return [self.decode(ids, skip_special_tokens, clean_up_tokenization_spaces) for ids in sequences]

    # ------------------------------------------------------------------ persistence

    def _added_vocabulary(self) -> list[dict[str, Any]]:
        """Special and added tokens as the reference's added vocabulary lists them: id, content, flags; by id."""
        entries = [
            {"content": token, "id": self._vocab[token], "special": True, "normalized": False}
            for token in self.all_special_tokens
        ]
        return sorted([*entries, *self._config["added_tokens"]], key=lambda entry: entry["id"])

    def _config_for_saving(self) -> dict[str, Any]:
        config = self._config
        content: dict[str, Any] = {
            "added_tokens_decoder": {
                str(entry["id"]): {
                    "content": entry["content"],
                    "lstrip": False,
                    "normalized": entry["normalized"],
                    "rstrip": False,
                    "single_word": False,
                    "special": entry["special"],
                }
                for entry in self._added_vocabulary()
            },
            "clean_up_tokenization_spaces": config["clean_up_tokenization_spaces"],
            "do_lower_case": config["do_lower_case"],
            "model_max_length": config["model_max_length"],
            "padding_side": config["padding_side"],
            "strip_accents": config["strip_accents"],
            "tokenize_chinese_chars": config["tokenize_chinese_chars"],
            # transformers names the class without "Fast"; either reference class loads the directory.
            "tokenizer_class": "RoFormerTokenizer",
            "truncation_side": config["truncation_side"],
            **self.special_tokens_map,
        }
        for name in ("do_basic_tokenize", "never_split"):
            if name in config:
                content[name] = config[name]
        return content

    def save_vocabulary(self, save_directory: str | os.PathLike, filename_prefix: str | None = None) -> tuple[str]:
        """Writes vocab.txt (one token per line, line index = id).

        Args:
            save_directory: an existing directory.
            filename_prefix: optional prefix, giving "<prefix>-vocab.txt".

        Returns:
            (path of the written file,)
        """
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_vocabulary needs an existing directory, got {os.fspath(save_directory)!r}")
        name = f"{filename_prefix}-{VOCAB_FILE}" if filename_prefix else VOCAB_FILE
        path = os.path.join(save_directory, name)
        save_vocab_file(self._vocab_tokens, path)
        return (path,)

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[str, ...]:
        """Writes tokenizer_config.json, special_tokens_map.json, vocab.txt (and tokenizer.json for the fast class).

        The reference classes and ours load the directory with identical results; this object is not modified.

        Args:
            save_directory: directory to write into (created if missing).

        Returns:
            Paths of the written files.
        """
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise NotADirectoryError(f"save_pretrained needs a directory, {save_directory!r} is a file")
        os.makedirs(save_directory, exist_ok=True)
        config_path = os.path.join(save_directory, CONFIG_FILE)
        write_json(config_path, self._config_for_saving())
        map_path = os.path.join(save_directory, SPECIAL_TOKENS_MAP_FILE)
        write_json(map_path, self.special_tokens_map)
        written = (config_path, map_path, *self.save_vocabulary(save_directory))
        beyond = {
            entry["content"]: entry["id"] for entry in self._config["added_tokens"] if entry["id"] >= self.vocab_size
        }
        if beyond:
            # vocab.txt holds the vocabulary only; the reference's slow class reads the rest from this file.
            added_path = os.path.join(save_directory, ADDED_TOKENS_FILE)
            write_json(added_path, beyond)
            written += (added_path,)
        return (*written, *self._save_extra_files(save_directory))

    def _save_extra_files(self, save_directory: str) -> tuple[str, ...]:
        return ()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        """Loads a tokenizer directory written by `save_pretrained` here or by the reference transformers classes,
        or a hub id (only the tokenizer files are downloaded, :mod:`roformer_core.hub`).

        Values from tokenizer_config.json and special_tokens_map.json are used unless overridden by `kwargs`.

        Args:
            pretrained_model_name_or_path: the directory, or a hub id such as ``"junnyu/roformer_chinese_base"``.
            **kwargs: constructor arguments that override the saved ones, and the hub's
                :data:`~roformer_core.hub.HUB_KWARGS` (``revision``, ``cache_dir``, ``local_files_only``, ``token``).

        Returns:
            The tokenizer.
        """
        hub_kwargs = pop_hub_kwargs(kwargs)
        directory = os.fspath(resolve_checkpoint(pretrained_model_name_or_path, files="tokenizer", **hub_kwargs))
        check_not_a_file(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"{directory!r} is not a directory, nor a model id of the hub; tokenizers load from a directory "
                f"holding {VOCAB_FILE} (and {CONFIG_FILE}) or from a hub id such as 'junnyu/roformer_chinese_base'"
            )
        saved = read_json(os.path.join(directory, CONFIG_FILE))
        for name, value in read_json(os.path.join(directory, SPECIAL_TOKENS_MAP_FILE)).items():
            saved[name] = value
        if "added_tokens_decoder" not in saved:
            # Directories written before transformers 4.34 list added tokens only in added_tokens.json.
            legacy = read_json(os.path.join(directory, ADDED_TOKENS_FILE))
            if legacy:
                saved["added_tokens_decoder"] = {str(index): token for token, index in legacy.items()}
        for name in (*_SPECIAL_TOKEN_NAMES, "additional_special_tokens"):
            if name in saved:
                value = saved[name]
                saved[name] = [token_content(v) for v in value] if isinstance(value, list) else token_content(value)
        # File paths come from the directory, never from the (possibly stale) config.
        accepted = frozenset(inspect.signature(cls.__init__).parameters) - {"self", *cls.vocab_files_names}
        arguments = {name: value for name, value in saved.items() if name in accepted}
        for file_argument, file_name in cls.vocab_files_names.items():
            path = os.path.join(directory, file_name)
            if os.path.isfile(path):
                arguments[file_argument] = path
        if not any(name in arguments or name in kwargs for name in cls.vocab_files_names):
            raise FileNotFoundError(
                f"{directory!r} holds none of {sorted(cls.vocab_files_names.values())}, needed by {cls.__name__}"
            )
        arguments.update(kwargs)
        try:
            return cls(**arguments)
        except ValueError as error:
            raise ValueError(f"{directory}: {error}") from error


def _common_config(
    *,
    do_lower_case: bool,
    special_tokens: tuple[Any, ...],
    tokenize_chinese_chars: bool,
    strip_accents: bool | None,
    additional_special_tokens: Sequence[Any] | None,
    model_max_length: int,
    clean_up_tokenization_spaces: bool,
    padding_side: str,
    truncation_side: str,
) -> dict[str, Any]:
    """The JSON-able settings both classes keep (and pickle); special tokens in `_SPECIAL_TOKEN_NAMES` order."""
    return {
        "do_lower_case": bool(do_lower_case),
        "strip_accents": strip_accents,
        "tokenize_chinese_chars": tokenize_chinese_chars,
        **{name: token_content(token) for name, token in zip(_SPECIAL_TOKEN_NAMES, special_tokens)},
        "additional_special_tokens": [token_content(token) for token in additional_special_tokens or ()],
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": bool(clean_up_tokenization_spaces),
        "padding_side": padding_side,
        "truncation_side": truncation_side,
        "continuing_subword_prefix": CONTINUING_SUBWORD_PREFIX,
        "max_input_chars_per_word": MAX_INPUT_CHARS_PER_WORD,
        "added_tokens": [],
    }


class RoFormerTokenizer(_RoFormerTokenizerBase):
    """RoFormer tokenizer built from a vocab.txt; same arguments as transformers' `RoFormerTokenizer`.

    It runs the same pipeline as `RoFormerTokenizerFast` (so the two always agree), which follows the reference
    fast tokenizer where the reference's slow and fast tokenizers disagree; see docs/tokenizers.md.

    Args:
        vocab_file: vocab.txt, one token per line (id = line index).
        do_lower_case: lowercase the text; accents are stripped too unless strip_accents=False.
        do_basic_tokenize: kept for compatibility; must be True (the reference fast tokenizer has no switch).
        never_split: kept for compatibility; must be empty (the reference fast tokenizer has no such list).
        unk_token, sep_token, pad_token, cls_token, mask_token: special tokens; each must be in the vocabulary.
        tokenize_chinese_chars: kept for compatibility and saved; CJK ideographs of out-of-vocab words are always
            split, as in the reference fast tokenizer (False only warns).
        strip_accents: strip accents; None follows do_lower_case.
        additional_special_tokens: more tokens kept whole when written in the text (vocabulary entries or
            tokens in added_tokens_decoder).
        model_max_length: default limit for truncation=True / padding="max_length"; 1e30 means none.
        clean_up_tokenization_spaces: default for decode.
        padding_side, truncation_side: "right" or "left".
        added_tokens_decoder: id -> token (str, AddedToken or its dict) of tokens added beyond the vocabulary,
            as tokenizer_config.json stores them (see `add_tokens`).
    """

    vocab_files_names: ClassVar[dict[str, str]] = {"vocab_file": VOCAB_FILE}
    is_fast: ClassVar[bool] = False

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        do_lower_case: bool = True,
        do_basic_tokenize: bool = True,
        never_split: Iterable[str] | None = None,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        *,
        additional_special_tokens: Sequence[str] | None = None,
        model_max_length: int = VERY_LARGE_INTEGER,
        clean_up_tokenization_spaces: bool = False,
        padding_side: str = "right",
        truncation_side: str = "right",
        added_tokens_decoder: Mapping[Any, Any] | None = None,
    ) -> None:
        if vocab_file is None:
            raise FileNotFoundError("RoFormerTokenizer needs a vocab_file (vocab.txt)")
        if not do_basic_tokenize:
            raise ValueError(
                "do_basic_tokenize=False is not supported: both tokenizers follow the reference fast tokenizer, "
                "which always splits out-of-vocabulary words on spaces and CJK characters"
            )
        if never_split:
            raise ValueError("never_split is not supported; use additional_special_tokens to keep tokens whole")
        if not tokenize_chinese_chars:
            warnings.warn(
                "tokenize_chinese_chars=False has no effect: out-of-vocabulary words are always split around CJK "
                "characters, as in the reference fast tokenizer",
                stacklevel=2,
            )
        config = _common_config(
            do_lower_case=do_lower_case,
            special_tokens=(unk_token, sep_token, pad_token, cls_token, mask_token),
            tokenize_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            additional_special_tokens=additional_special_tokens,
            model_max_length=model_max_length,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            padding_side=padding_side,
            truncation_side=truncation_side,
        )
        config["do_basic_tokenize"] = True
        config["never_split"] = None
        self._setup(load_vocab_file(vocab_file), config, added_tokens_decoder or {})


class RoFormerTokenizerFast(_RoFormerTokenizerBase):
    """RoFormer tokenizer from a vocab.txt or a tokenizer.json; same arguments as transformers'
    `RoFormerTokenizerFast`, same output (ids, token types, masks, offsets).

    Unlike the reference, saving or pickling never changes the live object, and a batch is encoded at several
    times the reference's speed (see docs/tokenizers.md).

    Args:
        vocab_file: vocab.txt, one token per line (id = line index).
        tokenizer_file: tokenizer.json with a WordPiece model; used instead of vocab_file when both are given.
        do_lower_case: lowercase the text; accents are stripped too unless strip_accents=False.
        unk_token, sep_token, pad_token, cls_token, mask_token: special tokens; each must be in the vocabulary.
        tokenize_chinese_chars: accepted and saved; has no effect, as in the reference fast tokenizer.
        strip_accents: strip accents; None follows do_lower_case.
        additional_special_tokens: more tokens kept whole when written in the text (vocabulary entries or
            tokens in added_tokens_decoder).
        model_max_length: default limit for truncation=True / padding="max_length"; 1e30 means none.
        clean_up_tokenization_spaces: default for decode.
        padding_side, truncation_side: "right" or "left".
        added_tokens_decoder: id -> token (str, AddedToken or its dict) of tokens added beyond the vocabulary,
            as tokenizer_config.json stores them (see `add_tokens`).
    """

    vocab_files_names: ClassVar[dict[str, str]] = {"vocab_file": VOCAB_FILE, "tokenizer_file": TOKENIZER_FILE}
    is_fast: ClassVar[bool] = True

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        tokenizer_file: str | os.PathLike | None = None,
        do_lower_case: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        *,
        additional_special_tokens: Sequence[str] | None = None,
        model_max_length: int = VERY_LARGE_INTEGER,
        clean_up_tokenization_spaces: bool = False,
        padding_side: str = "right",
        truncation_side: str = "right",
        added_tokens_decoder: Mapping[Any, Any] | None = None,
    ) -> None:
        config = _common_config(
            do_lower_case=do_lower_case,
            special_tokens=(unk_token, sep_token, pad_token, cls_token, mask_token),
            tokenize_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            additional_special_tokens=additional_special_tokens,
            model_max_length=model_max_length,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            padding_side=padding_side,
            truncation_side=truncation_side,
        )
        if tokenizer_file is not None:
            tokens, settings = load_tokenizer_json(tokenizer_file)
            config["continuing_subword_prefix"] = settings["continuing_subword_prefix"]
            config["max_input_chars_per_word"] = settings["max_input_chars_per_word"]
            self._setup(tokens, config, {**settings["added_tokens"], **(added_tokens_decoder or {})})
        elif vocab_file is not None:
            self._setup(load_vocab_file(vocab_file), config, added_tokens_decoder or {})
        else:
            raise FileNotFoundError("RoFormerTokenizerFast needs a vocab_file (vocab.txt) or a tokenizer_file")

    def _save_extra_files(self, save_directory: str) -> tuple[str, ...]:
        path = os.path.join(save_directory, TOKENIZER_FILE)
        config = self._config
        save_tokenizer_json(
            path,
            {token: index for index, token in enumerate(self._vocab_tokens)},
            unk_token=config["unk_token"],
            cls_token=config["cls_token"],
            sep_token=config["sep_token"],
            added_vocabulary=self._added_vocabulary(),
            lowercase=config["do_lower_case"],
            strip_accents=config["strip_accents"],
            continuing_subword_prefix=config["continuing_subword_prefix"],
            max_input_chars_per_word=config["max_input_chars_per_word"],
        )
        return (path,)


# ---------------------------------------------------------------------- helpers


def _require_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _is_int(value: Any) -> bool:
    """True for Python/numpy ints and 0-d integer arrays or tensors (not for bool)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return getattr(value, "ndim", None) == 0 and np.issubdtype(np.asarray(value).dtype, np.integer)


def _id_list(ids: Any) -> list[int]:
    """A 1-D list of ints from a list, tuple, numpy array or framework tensor."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    elif hasattr(ids, "numpy"):
        ids = ids.numpy().tolist()
    result = []
    for value in ids:
        if not _is_int(value):
            raise TypeError(
                f"token ids must be ints, got {type(value).__name__} ({value!r:.40}); use batch_decode for a batch"
            )
        result.append(int(value))
    return result


def _collect_inputs(
    text: Any, text_pair: Any, is_split_into_words: bool = False
) -> tuple[bool, list[Any], list[Any | None]]:
    """(is a batch, first inputs, second inputs or None) from the forms `__call__` accepts.

    An input is a str, or a list of words when `is_split_into_words`.
    """
    if is_split_into_words:
        return _collect_words(text, text_pair)
    if isinstance(text, str):
        if text_pair is not None:
            _require_str(text_pair, "text_pair (for a str text)")
        return False, [text], [text_pair]
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"text must be a str, a list of str or a list of (str, str) pairs, got {type(text).__name__}")
    if text_pair is not None:
        if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
            raise ValueError("text_pair must be a list as long as text when text is a list")
        firsts = [_require_str(item, f"text[{index}]") for index, item in enumerate(text)]
        seconds: list[str | None] = [_require_str(item, f"text_pair[{index}]") for index, item in enumerate(text_pair)]
        return True, firsts, seconds
    firsts, seconds = [], []
    for index, item in enumerate(text):
        if isinstance(item, str):
            firsts.append(item)
            seconds.append(None)
        elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(part, str) for part in item):
            firsts.append(item[0])
            seconds.append(item[1])
        elif isinstance(item, (list, tuple)):
            raise TypeError(
                f"text[{index}] is a list of {len(item)} items; pass is_split_into_words=True for pre-split words, "
                "or a (str, str) pair"
            )
        else:
            raise TypeError(f"text[{index}] must be a str or a (str, str) pair, got {item!r:.80}")
    return True, firsts, seconds


def _collect_words(text: Any, text_pair: Any) -> tuple[bool, list[list[str]], list[list[str] | None]]:
    """`_collect_inputs` for is_split_into_words: one list of words, or a batch of them."""
    if isinstance(text, str) or not isinstance(text, (list, tuple)):
        raise TypeError(
            f"with is_split_into_words=True, text must be a list of words or a list of such lists, got "
            f"{type(text).__name__}"
        )
    batched = bool(text) and not isinstance(text[0], str)
    firsts = (
        [_require_words(item, f"text[{index}]") for index, item in enumerate(text)]
        if batched
        else [_require_words(text, "text")]
    )
    if text_pair is None:
        return batched, firsts, [None] * len(firsts)
    if batched:
        if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
            raise ValueError("text_pair must be a list as long as text when text is a batch of word lists")
        return True, firsts, [_require_words(item, f"text_pair[{index}]") for index, item in enumerate(text_pair)]
    return False, firsts, [_require_words(text_pair, "text_pair")]


def _is_words(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(word, str) for word in value)


def _require_words(value: Any, name: str) -> list[str]:
    if not _is_words(value):
        raise TypeError(f"{name} must be a list of words (str) with is_split_into_words=True, got {value!r:.80}")
    return list(value)


def _token_text(token: Any) -> str:
    if isinstance(token, AddedToken):
        if token.lstrip or token.rstrip or token.single_word:
            raise ValueError(
                f"added token {token.content!r}: lstrip, rstrip and single_word are not supported; pass a plain str"
            )
        return token.content
    return _require_str(token, "an added token")


def _as_token_list(tokens: Any, name: str) -> list[str | AddedToken]:
    if isinstance(tokens, (str, AddedToken)):
        return [tokens]
    if not isinstance(tokens, (list, tuple)):
        raise TypeError(f"{name} must be a str, an AddedToken or a list of them, got {type(tokens).__name__}")
    for token in tokens:
        _token_text(token)
    return list(tokens)


def _added_entries(tokens: list[str], config: dict[str, Any], decoder: Mapping[Any, Any]) -> list[dict[str, Any]]:
    """A saved added_tokens_decoder (id -> str / AddedToken / dict) -> our added-token entries, by id.

    The configured special tokens that are vocabulary entries are left out: they are special tokens already.
    """
    vocab = {token: index for index, token in enumerate(tokens)}
    specials = {config[name] for name in _SPECIAL_TOKEN_NAMES} | set(config["additional_special_tokens"])
    entries = []
    for key, value in sorted(decoder.items(), key=lambda item: int(item[0])):
        index = int(key)
        if isinstance(value, AddedToken):
            content, special, normalized = value.content, value.special, value.normalized
        elif isinstance(value, Mapping):
            content, special = value["content"], bool(value.get("special", False))
            normalized = bool(value.get("normalized", not special))
        else:
            content = _require_str(value, f"added token {index}")
            special = content in specials
            normalized = not special
        if content in specials and vocab.get(content) == index:
            continue
        entries.append({"content": content, "id": index, "special": special, "normalized": normalized})
    return entries


def _kept_lengths(len_a: int, len_b: int | None, strategy: str, limit: int) -> tuple[int, int | None]:
    """How many tokens of each text survive truncation to `limit` (special tokens already subtracted).

    Follows the reference fast tokenizer (tokenizers' truncate_encodings), which differs from the reference slow
    one: a limit below the number of special tokens truncates nothing; a limit equal to it empties both texts;
    "longest_first" on a pair splits the budget in one step and gives an odd token to the longer text (the second
    on a tie); "only_first"/"only_second" raise when the chosen text is too short.
    """
    if limit < 0:
        return len_a, len_b
    if limit == 0:
        return 0, None if len_b is None else 0
    total = len_a + (len_b or 0)
    if total <= limit:
        return len_a, len_b
    if strategy == "longest_first":
        if len_b is None:
            return limit, None
        swap = len_a > len_b
        short, long = (len_b, len_a) if swap else (len_a, len_b)
        long = short if short > limit else max(short, limit - short)
        if short + long > limit:
            short = limit // 2
            long = short + limit % 2
        keep_a, keep_b = (long, short) if swap else (short, long)
        return min(len_a, keep_a), min(len_b, keep_b)
    if strategy == "only_second" and len_b is None:
        raise ValueError("truncation='only_second' needs a text pair")
    target = len_a if strategy == "only_first" else len_b
    assert target is not None
    to_remove = total - limit
    if target <= to_remove:
        raise ValueError(
            f"truncation={strategy!r} cannot reach max_length: the text to truncate has {target} tokens but "
            f"{to_remove} must go; use truncation='longest_first'"
        )
    if strategy == "only_first":
        return len_a - to_remove, len_b
    return len_a, target - to_remove
