"""The segmentation pipeline shared by `RoFormerTokenizer` and `RoFormerTokenizerFast` (private).

Both public classes run this one pipeline, so they agree on every input by construction. It reproduces the
reference fast tokenizer (transformers' `RoFormerTokenizerFast`), see docs/tokenizers.md:

1. Special tokens written in the text ("[MASK]") are split out of the raw text first, leftmost-longest.
2. Every other segment goes through BertNormalizer(clean_text, no CJK padding, strip_accents, lowercase) as a
   whole. This is the Rust normalizer from `tokenizers`, so character classes (control, whitespace, accents)
   follow the same Unicode tables as the reference. Tokens added with `add_tokens` are then split out of the
   normalized segment (matched in their normalized form, leftmost-longest), as the reference's added vocabulary
   does.
3. rjieba cuts the normalized segment with the HMM off. A jieba word that is exactly a vocab entry is one token.
   Any other word is split on spaces and around CJK ideographs (the reference's second BertNormalizer followed by
   `str.split()`; punctuation is *not* split off) and each piece goes through greedy longest-match WordPiece.
4. Offsets are found on the normalized segment and mapped back to the raw text through the normalizer's own
   alignments, so they are the offsets the reference reports.

rjieba holds the GIL, and the per-word decision is one dict lookup, so the hot loop is plain Python over Rust
results; the fallback result of every out-of-vocab word is cached, which makes WordPiece nearly free on real text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

Span = tuple[int, int]

# Cached fallback results of words up to _WORD_CACHE_MAX_CHARS characters; cleared when full so that adversarial
# input cannot grow memory without bound.
_WORD_CACHE_LIMIT = 1 << 17
_WORD_CACHE_MAX_CHARS = 64

# Blocks searched for characters the normalizer leaves unchanged (none holds combining marks except those the
# search drops): ASCII, general punctuation, CJK symbols, kana, CJK unified ideographs, full-width forms.
_UNCHANGED_CANDIDATES = (
    (0x20, 0x7F),
    (0x2010, 0x2028),
    (0x2030, 0x205F),
    (0x3001, 0x3100),
    (0x4E00, 0xA000),
    (0xFF01, 0xFFEF),
)


# WordPiece settings of the reference vocabularies (a tokenizer.json may store others).
CONTINUING_SUBWORD_PREFIX = "##"
MAX_INPUT_CHARS_PER_WORD = 100


def roformer_normalizer(lowercase: bool, strip_accents: bool | None) -> normalizers.Normalizer:
    """The reference fast tokenizer's normalizer: BertNormalizer with clean_text and no Chinese-character
    padding (jieba segments Chinese instead)."""
    return normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=False, strip_accents=strip_accents, lowercase=lowercase
    )


@functools.cache
def _changed_character_search(lowercase: bool, strip_accents: bool | None) -> re.Pattern[str]:
    """A regex finding any character outside a set the main normalizer provably leaves unchanged.

    The Rust normalizer costs ~0.2 us per character; typical Chinese text consists only of such characters, and
    then both the normalization and the offset alignment are the identity and can be skipped. A character is in
    the set when the normalizer maps it to itself and it is a canonical starter (combining class 0), so no
    reordering can involve it: a string of such characters normalizes to itself.
    """
    normalizer = roformer_normalizer(lowercase, strip_accents)

    def unchanged(start: int, stop: int) -> list[tuple[int, int]]:
        # Bisect: whole runs that normalize to themselves are kept with one Rust call.
        text = "".join(map(chr, range(start, stop)))
        if normalizer.normalize_str(text) == text and not any(map(unicodedata.combining, text)):
            return [(start, stop)]
        if stop - start == 1:
            return []
        middle = (start + stop) // 2
        return unchanged(start, middle) + unchanged(middle, stop)

    ranges: list[tuple[int, int]] = []
    for start, stop in (run for candidate in _UNCHANGED_CANDIDATES for run in unchanged(*candidate)):
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], stop)
        else:
            ranges.append((start, stop))
    character_class = "".join(f"{re.escape(chr(start))}-{re.escape(chr(stop - 1))}" for start, stop in ranges)
    return re.compile(f"[^{character_class}]")


class Segmenter:
    """Text to (ids, offsets) without special-token templates; see the module docstring for the steps.

    Args:
        vocab: token -> id.
        unk_token: token used when WordPiece cannot match a piece (must be in `vocab`).
        special_tokens: tokens split out of the raw text before normalization (all must be in `vocab`).
        normalized_tokens: token -> id of tokens split out of the text after normalization (added tokens); they
            are matched in their normalized form.
        lowercase: lowercase after normalization (the reference's `do_lower_case`).
        strip_accents: drop combining marks after NFD; None follows `lowercase`.
        continuing_subword_prefix: WordPiece continuation prefix.
        max_input_chars_per_word: longer pieces become a single unk token.
    """

    def __init__(
        self,
        vocab: dict[str, int],
        *,
        unk_token: str,
        special_tokens: Sequence[str],
        normalized_tokens: dict[str, int] | None = None,
        lowercase: bool,
        strip_accents: bool | None,
        continuing_subword_prefix: str,
        max_input_chars_per_word: int,
    ) -> None:
        try:
            import rjieba
        except ImportError as error:
            raise ImportError("the RoFormer tokenizers need rjieba: pip install rjieba") from error
        # rjieba's module-level default instance, as in the reference (so rjieba.add_word affects both alike).
        self._cut = rjieba.cut
        self._vocab = vocab
        self._unk_id = vocab[unk_token]
        self._unknown_character: tuple[tuple[int, ...], tuple[Span, ...]] = ((self._unk_id,), ((0, 1),))
        self._prefix = continuing_subword_prefix
        self._max_chars = max_input_chars_per_word
        self._normalizer = roformer_normalizer(lowercase, strip_accents)
        # The reference's fallback: pad CJK ideographs with spaces, nothing else, then split on whitespace.
        self._fallback_normalizer = normalizers.BertNormalizer(
            clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False
        )
        self._find_changed = _changed_character_search(lowercase, strip_accents).search
        # Longest first so that the alternation is leftmost-longest, like the reference's Aho-Corasick matcher.
        ordered = sorted(set(special_tokens), key=len, reverse=True)
        self._special_split = re.compile("(" + "|".join(map(re.escape, ordered)) + ")").split if ordered else None
        # Texts without any special token's first character (usually "[") skip the regex split.
        self._special_initials = sorted({token[0] for token in ordered if token})
        # Added tokens match the normalized text, so their own text is normalized too; the first one added wins.
        self._added_ids: dict[str, int] = {}
        for token, token_id in (normalized_tokens or {}).items():
            normalized = self._normalizer.normalize_str(token)
            if normalized:
                self._added_ids.setdefault(normalized, token_id)
        added = sorted(self._added_ids, key=len, reverse=True)
        self._added_split = re.compile("(" + "|".join(map(re.escape, added)) + ")").split if added else None
        self._word_cache: dict[str, tuple[tuple[int, ...], tuple[Span, ...]]] = {}
        self._aligner: Tokenizer | None = None

    def encode_batch(self, texts: Sequence[str], with_offsets: bool) -> list[tuple[list[int], list[Span] | None]]:
        """Encodes raw texts.

        Args:
            texts: raw strings.
            with_offsets: also return (start, end) character offsets into each raw text.

        Returns:
            One (ids, offsets or None) pair per text; no [CLS]/[SEP] added.
        """
        if not with_offsets:
            return [(self._ids(text), None) for text in texts]
        return self._encode_with_offsets(texts)

    def encode_words_batch(
        self, examples: Sequence[Sequence[str]], with_offsets: bool
    ) -> list[tuple[list[int], list[Span] | None, list[int]]]:
        """Encodes pre-split examples: each word on its own, as the reference does for `is_split_into_words`.

        Args:
            examples: one list of words per example.
            with_offsets: also return (start, end) character offsets, each into its own word.

        Returns:
            One (ids, offsets or None, word index of every token) triple per example.
        """
        words = [word for example in examples for word in example]
        encoded = iter(self.encode_batch(words, with_offsets))
        results: list[tuple[list[int], list[Span] | None, list[int]]] = []
        for example in examples:
            ids: list[int] = []
            offsets: list[Span] | None = [] if with_offsets else None
            word_ids: list[int] = []
            for index in range(len(example)):
                word_token_ids, word_offsets = next(encoded)
                ids += word_token_ids
                word_ids += [index] * len(word_token_ids)
                if offsets is not None and word_offsets is not None:
                    offsets += word_offsets
            results.append((ids, offsets, word_ids))
        return results

    def _parts(self, text: str) -> list[str]:
        # Even indices: text between special tokens (maybe empty); odd indices: the special tokens.
        if self._special_split is not None and any(initial in text for initial in self._special_initials):
            return self._special_split(text)
        return [text]

    def _normalize(self, text: str) -> str:
        return text if self._find_changed(text) is None else self._normalizer.normalize_str(text)

    def _ids(self, text: str) -> list[int]:
        ids: list[int] = []
        vocab = self._vocab
        vocab_get = vocab.get
        normalize = self._normalize
        split_word = self._split_word
        cut = self._cut
        for index, part in enumerate(self._parts(text)):
            if index % 2:
                ids.append(vocab[part])
                continue
            if not part:
                continue
            for piece_index, piece in enumerate(self._added_parts(normalize(part))):
                if piece_index % 2:
                    ids.append(self._added_ids[piece])
                    continue
                for word in cut(piece, False):
                    token_id = vocab_get(word)
                    if token_id is None:
                        ids.extend(split_word(word)[0])
                    else:
                        ids.append(token_id)
        return ids

    def _added_parts(self, normalized: str) -> list[str]:
        # Even indices: normalized text between added tokens (maybe empty); odd indices: the added tokens.
        return [normalized] if self._added_split is None else self._added_split(normalized)

    def _encode_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[Span] | None]]:
        # Segments the normalizer leaves unchanged get raw offsets directly. The others get normalized offsets
        # first, then one parallel aligner call over all of them maps those back to raw-text offsets.
        results: list[tuple[list[int], list[Span] | None]] = []
        changed_segments: list[str] = []
        # (offsets list, first and stop index of the segment's entries, raw position of the segment)
        fixups: list[tuple[list[Span], int, int, int]] = []
        vocab = self._vocab
        for text in texts:
            ids: list[int] = []
            offsets: list[Span] = []
            position = 0
            for index, part in enumerate(self._parts(text)):
                if index % 2:
                    ids.append(vocab[part])
                    offsets.append((position, position + len(part)))
                elif part:
                    if self._find_changed(part) is None:
                        self._encode_normalized_with_spans(part, ids, offsets, position)
                    else:
                        first = len(offsets)
                        self._encode_normalized_with_spans(self._normalizer.normalize_str(part), ids, offsets, 0)
                        fixups.append((offsets, first, len(offsets), position))
                        changed_segments.append(part)
                position += len(part)
            results.append((ids, offsets))
        if changed_segments:
            aligned = self._get_aligner().encode_batch(changed_segments)
            for (offsets, first, stop, shift), encoding in zip(fixups, aligned):
                char_offsets = encoding.offsets
                for index in range(first, stop):
                    start, end = offsets[index]
                    offsets[index] = (shift + char_offsets[start][0], shift + char_offsets[end - 1][1])
        return results

    def _encode_normalized_with_spans(self, normalized: str, ids: list[int], spans: list[Span], shift: int) -> None:
        """Appends the ids of a normalized segment and their spans in it, shifted by `shift`."""
        vocab_get = self._vocab.get
        start = shift
        for piece_index, piece in enumerate(self._added_parts(normalized)):
            if piece_index % 2:
                ids.append(self._added_ids[piece])
                spans.append((start, start + len(piece)))
                start += len(piece)
                continue
            for word in self._cut(piece, False):
                end = start + len(word)
                token_id = vocab_get(word)
                if token_id is None:
                    word_ids, word_spans = self._split_word(word)
                    ids.extend(word_ids)
                    spans.extend([(start + a, start + b) for a, b in word_spans])
                else:
                    ids.append(token_id)
                    spans.append((start, end))
                start = end

    def _split_word(self, word: str) -> tuple[tuple[int, ...], tuple[Span, ...]]:
        """Fallback for a jieba word that is not a vocab entry; spans are relative to the word."""
        if len(word) == 1:
            # A lone character that is not a vocab entry: whitespace vanishes, anything else is unknown.
            return ((), ()) if word.isspace() else self._unknown_character
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        ids: list[int] = []
        spans: list[Span] = []
        start = 0
        for piece in self._fallback_normalizer.normalize_str(word).split():
            # The reference cuts consecutive lengths from the word's start without skipping the separators it
            # split on; jieba never yields a word with an inner space, so this is the piece itself in practice,
            # but cutting the same way keeps us identical even if it did.
            end = start + len(piece)
            piece_ids, piece_spans = self._wordpiece(word[start:end])
            ids.extend(piece_ids)
            spans.extend((start + a, start + b) for a, b in piece_spans)
            start = end
        result = (tuple(ids), tuple(spans))
        if len(word) <= _WORD_CACHE_MAX_CHARS:
            if len(self._word_cache) >= _WORD_CACHE_LIMIT:
                self._word_cache.clear()
            self._word_cache[word] = result
        return result

    def _wordpiece(self, piece: str) -> tuple[list[int], list[Span]]:
        """Greedy longest-match-first WordPiece; an unmatchable or over-long piece is one unk token."""
        length = len(piece)
        if length > self._max_chars:
            return [self._unk_id], [(0, length)]
        vocab_get = self._vocab.get
        ids: list[int] = []
        spans: list[Span] = []
        start = 0
        while start < length:
            end = length
            while end > start:
                token_id = vocab_get(piece[start:end] if start == 0 else self._prefix + piece[start:end])
                if token_id is not None:
                    break
                end -= 1
            else:
                return [self._unk_id], [(0, length)]
            ids.append(token_id)
            spans.append((start, end))
            start = end
        return ids, spans

    def _get_aligner(self) -> Tokenizer:
        # One token per normalized character, each carrying the raw-text offsets the Rust normalizer assigns it;
        # a token spanning normalized [a, b) then maps to (offsets[a].start, offsets[b - 1].end), which is how
        # tokenizers converts offsets itself.
        if self._aligner is None:
            aligner = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
            aligner.normalizer = self._normalizer
            aligner.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
            self._aligner = aligner
        return self._aligner
