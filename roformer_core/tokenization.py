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
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from ._tokenization_files import (
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

__all__ = ["TOKENIZER_FILES", "VOCAB_FILE", "BatchEncoding", "RoFormerTokenizer", "RoFormerTokenizerFast"]

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
_TENSOR_TYPES = ("np", "pt", "tf", "jax")
_SIDES = ("right", "left")

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


class BatchEncoding(dict):
    """The output of a tokenizer call: a dict of model inputs that also allows attribute access.

    Keys, in order, as present: input_ids, token_type_ids, attention_mask, special_tokens_mask, offset_mapping,
    length. Values are lists ([L] for one text, [B][L] for a batch) or tensors with shape [B, L]
    ([B, L, 2] for offset_mapping; a single text gets B = 1).
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _RoFormerTokenizerBase:
    """Everything users call; the public classes only differ in their constructors and the files they write."""

    vocab_files_names: ClassVar[dict[str, str]]
    is_fast: ClassVar[bool]
    model_input_names: ClassVar[list[str]] = ["input_ids", "token_type_ids", "attention_mask"]

    # ------------------------------------------------------------------ construction and state

    def _setup(self, tokens: list[str], config: dict[str, Any]) -> None:
        """Builds the tokenizer from its vocabulary (id order) and a JSON-able config; also used by unpickling."""
        vocab = {token: index for index, token in enumerate(tokens)}
        for name in (*_SPECIAL_TOKEN_NAMES, "additional_special_tokens"):
            values = config[name] if name == "additional_special_tokens" else [config[name]]
            for value in values:
                if not isinstance(value, str):
                    raise TypeError(f"{name} must be a str, got {type(value).__name__}")
                if value not in vocab:
                    raise ValueError(
                        f"{name} {value!r} is not in the vocabulary; special tokens must be vocabulary entries"
                    )
        for name in ("padding_side", "truncation_side"):
            if config[name] not in _SIDES:
                raise ValueError(f"{name} must be one of {_SIDES}, got {config[name]!r}")
        if isinstance(config["model_max_length"], float) and config["model_max_length"].is_integer():
            config["model_max_length"] = int(config["model_max_length"])  # old configs store 1e30 as a float
        if not isinstance(config["model_max_length"], int):
            raise TypeError(f"model_max_length must be an int, got {type(config['model_max_length']).__name__}")
        self._tokens = tokens
        self._vocab = vocab
        self._config = config
        self._segmenter = Segmenter(
            vocab,
            unk_token=config["unk_token"],
            special_tokens=self.all_special_tokens,
            lowercase=config["do_lower_case"],
            strip_accents=config["strip_accents"],
            continuing_subword_prefix=config["continuing_subword_prefix"],
            max_input_chars_per_word=config["max_input_chars_per_word"],
        )

    def __getstate__(self) -> dict[str, Any]:
        # Only plain data: the Rust objects and the word cache are rebuilt, and the live object is never touched.
        return {"tokens": list(self._tokens), "config": dict(self._config)}

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
        """Number of ids (lines of vocab.txt)."""
        return len(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    @property
    def vocab(self) -> dict[str, int]:
        """token -> id (a copy)."""
        return dict(self._vocab)

    def get_vocab(self) -> dict[str, int]:
        """token -> id (a copy)."""
        return dict(self._vocab)

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
        if value not in _SIDES:
            raise ValueError(f"padding_side must be one of {_SIDES}, got {value!r}")
        self._config["padding_side"] = value

    @property
    def truncation_side(self) -> str:
        """ "right" (default, drop the end) or "left" (drop the start)."""
        return self._config["truncation_side"]

    @truncation_side.setter
    def truncation_side(self, value: str) -> None:
        if value not in _SIDES:
            raise ValueError(f"truncation_side must be one of {_SIDES}, got {value!r}")
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
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(index) for index in _id_list(ids) if index not in special]

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

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[tuple[str, str]],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
    ) -> BatchEncoding:
        """Encodes a text, a pair, or a batch of either into model inputs.

        Args:
            text: a str, a list of str, or a list of (str, str) pairs.
            text_pair: second text(s): a str for a str `text`, a list as long as `text` for a list.
            add_special_tokens: add [CLS] A [SEP] (B [SEP]).
            padding: False / "do_not_pad", True / "longest" (to the longest in the batch) or "max_length".
            truncation: False / "do_not_truncate", True / "longest_first", "only_first" or "only_second".
                None (default) means "longest_first" when only `max_length` is given, as in transformers.
            max_length: length limit for truncation and "max_length" padding, special tokens included; None
                uses `model_max_length` when that is a real limit.
            pad_to_multiple_of: round the padded length up to a multiple of this.
            return_tensors: None (lists), "np", "pt", "tf" or "jax"; frameworks are imported only here.
            return_token_type_ids: include token_type_ids (default True).
            return_attention_mask: include attention_mask (default True).
            return_special_tokens_mask: include special_tokens_mask (1 for [CLS]/[SEP]/padding).
            return_offsets_mapping: include (start, end) character offsets into the input text ((0, 0) for
                special tokens and padding).
            return_length: include the length of each (padded) sequence.

        Returns:
            A `BatchEncoding`: lists of length L for one text, B lists for a batch, or tensors of shape [B, L]
            (one text: B = 1) when `return_tensors` is set.
        """
        batched, firsts, seconds = _collect_inputs(text, text_pair)
        padding_strategy, truncation_strategy, max_length = self._resolve_strategies(
            padding, truncation, max_length, pad_to_multiple_of
        )
        if return_tensors is not None and return_tensors not in _TENSOR_TYPES:
            raise ValueError(f"return_tensors must be None or one of {_TENSOR_TYPES}, got {return_tensors!r}")

        pair_indices = [index for index, second in enumerate(seconds) if second is not None]
        encoded = self._segmenter.encode_batch(
            firsts + [seconds[index] for index in pair_indices], return_offsets_mapping
        )
        second_encoded: list[tuple[list[int], list[Span] | None] | None] = [None] * len(firsts)
        for position, index in enumerate(pair_indices):
            second_encoded[index] = encoded[len(firsts) + position]

        wanted = {
            "token_type_ids": return_token_type_ids is not False,
            "attention_mask": return_attention_mask is not False,
            "special_tokens_mask": return_special_tokens_mask,
            "offset_mapping": return_offsets_mapping,
        }
        columns = self._assemble(
            encoded[: len(firsts)],
            second_encoded,
            [key for key, value in wanted.items() if value],
            add_special_tokens=add_special_tokens,
            truncation_strategy=truncation_strategy,
            max_length=max_length,
        )
        if padding_strategy is not None:
            self._pad(columns, padding_strategy, max_length, pad_to_multiple_of)
        if return_length:
            columns["length"] = [len(ids) for ids in columns["input_ids"]]

        if return_tensors is not None:
            return BatchEncoding({key: _to_tensor(key, value, return_tensors) for key, value in columns.items()})
        if not batched:
            # As in the reference, "length" stays a one-element list for a single text.
            return BatchEncoding({key: value if key == "length" else value[0] for key, value in columns.items()})
        return BatchEncoding(columns)

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
        firsts: Sequence[tuple[list[int], list[Span] | None]],
        seconds: Sequence[tuple[list[int], list[Span] | None] | None],
        keys: list[str],
        *,
        add_special_tokens: bool,
        truncation_strategy: str | None,
        max_length: int | None,
    ) -> dict[str, list[list[Any]]]:
        """Unpadded columns (input_ids plus `keys`) for every example: truncation, then the template."""
        cls_id, sep_id = self.cls_token_id, self.sep_token_id
        columns: dict[str, list[list[Any]]] = {"input_ids": []}
        columns.update((key, []) for key in keys)
        id_column = columns["input_ids"]
        type_column = columns.get("token_type_ids")
        attention_column = columns.get("attention_mask")
        special_column = columns.get("special_tokens_mask")
        offset_column = columns.get("offset_mapping")
        truncate = truncation_strategy is not None and max_length is not None
        for (ids_a, offsets_a), second in zip(firsts, seconds):
            ids_b, offsets_b = second if second is not None else (None, None)
            if truncate:
                added = self.num_special_tokens_to_add(ids_b is not None) if add_special_tokens else 0
                keep_a, keep_b = _kept_lengths(
                    len(ids_a), None if ids_b is None else len(ids_b), truncation_strategy, max_length - added
                )
                ids_a, offsets_a = _keep(ids_a, offsets_a, keep_a, self.truncation_side)
                if ids_b is not None:
                    ids_b, offsets_b = _keep(ids_b, offsets_b, keep_b, self.truncation_side)
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
                none: list[Span] = [(0, 0)]
                if not add_special_tokens:
                    offset_column.append(offsets_a + (offsets_b or []))
                elif ids_b is None:
                    offset_column.append(none + offsets_a + none)
                else:
                    offset_column.append(none + offsets_a + none + (offsets_b or []) + none)
        return columns

    def _pad(
        self, columns: dict[str, list[list[Any]]], strategy: str, max_length: int | None, multiple: int | None
    ) -> None:
        """Pads every column in place to the batch's longest or to max_length, rounded up to `multiple`."""
        if strategy == "longest":
            target = max(map(len, columns["input_ids"]), default=0)
        else:
            assert max_length is not None
            target = max_length
        if multiple is not None and target % multiple:
            target += multiple - target % multiple
        fills = {
            "input_ids": self.pad_token_id,
            "token_type_ids": 0,
            "attention_mask": 0,
            "special_tokens_mask": 1,
            "offset_mapping": (0, 0),
        }
        right = self.padding_side == "right"
        for key, column in columns.items():
            fill = fills[key]
            for index, values in enumerate(column):
                missing = target - len(values)
                if missing > 0:
                    column[index] = values + [fill] * missing if right else [fill] * missing + values

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
        special = set(self.all_special_ids) if skip_special_tokens else ()
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

    def _config_for_saving(self) -> dict[str, Any]:
        config = self._config
        content: dict[str, Any] = {
            "added_tokens_decoder": {
                str(self._vocab[token]): {
                    "content": token,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                    "special": True,
                }
                for token in sorted(self.all_special_tokens, key=self._vocab.__getitem__)
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
        save_vocab_file(self._tokens, path)
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
        return (config_path, map_path, *self.save_vocabulary(save_directory), *self._save_extra_files(save_directory))

    def _save_extra_files(self, save_directory: str) -> tuple[str, ...]:
        return ()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        """Loads a tokenizer directory written by `save_pretrained` here or by the reference transformers classes.

        Only local directories are supported (no model hub). Values from tokenizer_config.json and
        special_tokens_map.json are used unless overridden by `kwargs`.

        Args:
            pretrained_model_name_or_path: the directory.
            **kwargs: constructor arguments that override the saved ones.

        Returns:
            The tokenizer.
        """
        directory = os.fspath(pretrained_model_name_or_path)
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"{directory!r} is not a directory; tokenizers load from a local directory holding "
                f"{VOCAB_FILE} (and {CONFIG_FILE}); downloading from the model hub is not supported"
            )
        saved = read_json(os.path.join(directory, CONFIG_FILE))
        for name, value in read_json(os.path.join(directory, SPECIAL_TOKENS_MAP_FILE)).items():
            saved[name] = value
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
        tokenizer = cls(**arguments)
        tokenizer._check_added_tokens(saved.get("added_tokens_decoder") or {}, directory)
        return tokenizer

    def _check_added_tokens(self, added_tokens_decoder: dict[str, Any], source: str) -> None:
        """Added tokens must be vocabulary entries with their vocabulary ids (no tokens beyond the vocabulary)."""
        for index, entry in added_tokens_decoder.items():
            content = token_content(entry)
            if self._vocab.get(content) != int(index):
                raise ValueError(
                    f"{source}: added token {content!r} with id {index} is not that vocabulary entry; tokens added "
                    "beyond vocab.txt are not supported"
                )


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
        additional_special_tokens: more tokens kept whole when written in the text (must be in the vocabulary).
        model_max_length: default limit for truncation=True / padding="max_length"; 1e30 means none.
        clean_up_tokenization_spaces: default for decode.
        padding_side, truncation_side: "right" or "left".
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
        self._setup(load_vocab_file(vocab_file), config)


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
        additional_special_tokens: more tokens kept whole when written in the text (must be in the vocabulary).
        model_max_length: default limit for truncation=True / padding="max_length"; 1e30 means none.
        clean_up_tokenization_spaces: default for decode.
        padding_side, truncation_side: "right" or "left".
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
            self._setup(tokens, config)
            self._check_added_tokens(settings["added_tokens"], os.fspath(tokenizer_file))
        elif vocab_file is not None:
            self._setup(load_vocab_file(vocab_file), config)
        else:
            raise FileNotFoundError("RoFormerTokenizerFast needs a vocab_file (vocab.txt) or a tokenizer_file")

    def _save_extra_files(self, save_directory: str) -> tuple[str, ...]:
        path = os.path.join(save_directory, TOKENIZER_FILE)
        config = self._config
        save_tokenizer_json(
            path,
            self._vocab,
            unk_token=config["unk_token"],
            cls_token=config["cls_token"],
            sep_token=config["sep_token"],
            special_tokens=self.all_special_tokens,
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


def _collect_inputs(text: Any, text_pair: Any) -> tuple[bool, list[str], list[str | None]]:
    """(is a batch, first texts, second texts or None) from the forms `__call__` accepts."""
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
        else:
            raise TypeError(f"text[{index}] must be a str or a (str, str) pair, got {item!r:.80}")
    return True, firsts, seconds


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


def _keep(ids: list[int], offsets: list[Span] | None, keep: int | None, side: str) -> tuple[list[int], Any]:
    assert keep is not None
    if keep >= len(ids):
        return ids, offsets
    cut = slice(None, keep) if side == "right" else slice(len(ids) - keep, None)
    return ids[cut], None if offsets is None else offsets[cut]


def _to_tensor(key: str, values: list[Any], return_tensors: str) -> Any:
    """Rows of equal length -> a numpy / torch / tf / jax integer tensor (frameworks imported here only)."""
    if values and isinstance(values[0], list) and len({len(row) for row in values}) > 1:
        raise ValueError(
            f"cannot make a {return_tensors!r} tensor of {key}: the sequences have different lengths; "
            "pass padding=True (and truncation=True if needed)"
        )
    array = np.asarray(values, dtype=np.int64)
    if key == "offset_mapping":
        array = array.reshape(len(values), -1, 2)
    if return_tensors == "np":
        return array
    if return_tensors == "pt":
        import torch

        return torch.from_numpy(array)
    if return_tensors == "tf":
        import tensorflow as tf

        return tf.constant(array.astype(np.int32))
    import jax.numpy as jnp

    return jnp.asarray(array.astype(np.int32))
