"""Framework-neutral parts of ``generate()``: :class:`GenerationConfig` (transformers' names, defaults and
``generation_config.json``), the checks of its values, the preparation of (padded) prompts and the
:class:`GenerationPlan` that every port decodes from (see :mod:`roformer_core.decoding` for the host-driven loop)."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .config import RoFormerConfig
from .hub import HUB_KWARGS, resolve_optional_file
from .io import atomic_write_text, check_not_a_file
from .validation import check_id_range

GENERATION_CONFIG_NAME = "generation_config.json"

# keys transformers writes that describe the file rather than a decoding setting
_METADATA_KEYS = ("transformers_version", "_from_model_config")


@dataclasses.dataclass
class GenerationConfig:
    """Decoding settings, with transformers' ``GenerationConfig`` field names, defaults and meaning.

    ``max_new_tokens`` (new tokens) wins over ``max_length`` (prompt + new tokens). ``min_new_tokens`` and
    ``min_length`` suppress the end-of-sequence ids until that many tokens exist. ``num_beams > 1`` is beam search
    (``length_penalty``: the final score of a hypothesis is its summed log-probability over
    ``new_length ** length_penalty``; ``early_stopping``: True stops a prompt as soon as ``num_beams`` hypotheses
    are finished, False when no running beam can still beat them at the current length, ``"never"`` at the best
    length it could reach). ``pad_token_id`` / ``eos_token_id`` / ``bos_token_id`` left as None fall back to the
    model config's. Keys of ``generation_config.json`` this class does not model are kept in :attr:`extras` and
    written back; :meth:`~roformer_pt.RoFormerForCausalLM.generate` warns that it ignores them.
    """

    max_length: int = 20
    max_new_tokens: int | None = None
    min_length: int = 0
    min_new_tokens: int | None = None
    early_stopping: bool | str = False
    do_sample: bool = False
    num_beams: int = 1
    temperature: float = 1.0
    top_k: int | None = 50
    top_p: float | None = 1.0
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    bad_words_ids: list[list[int]] | None = None
    num_return_sequences: int = 1
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The settings (every field but :attr:`extras`), as ``generate(**kwargs)`` accepts them."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "extras")

    def update(self, **overrides: Any) -> GenerationConfig:
        """A copy with ``overrides`` applied. Passing one of ``max_length`` / ``max_new_tokens`` clears the other
        (the length you pass is the one you get); passing both is an error.

        Raises:
            TypeError: an override is not a field (the message lists the fields).
            ValueError: both ``max_length`` and ``max_new_tokens`` are given, or a value is invalid.
        """
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            raise TypeError(
                f"generate() got unknown setting(s) {unknown}; the settings are the GenerationConfig fields: "
                f"{', '.join(self.field_names())}"
            )
        if overrides.get("max_length") is not None and overrides.get("max_new_tokens") is not None:
            raise ValueError(
                "pass either max_length (prompt + new tokens) or max_new_tokens (new tokens only), not both"
            )
        if overrides.get("max_new_tokens") is not None:
            overrides = {**overrides, "max_length": GenerationConfig.max_length}
        elif overrides.get("max_length") is not None:
            overrides = {**overrides, "max_new_tokens": None}
        updated = dataclasses.replace(self, **overrides)
        updated.validate()
        return updated

    def validate(self) -> None:
        """Raise ValueError naming the setting when a value cannot work (ranges, types, combinations)."""
        _check_int("max_length", self.max_length, 1)
        _check_int("max_new_tokens", self.max_new_tokens, 0, optional=True)
        _check_int("min_length", self.min_length, 0)
        _check_int("min_new_tokens", self.min_new_tokens, 0, optional=True)
        _check_int("num_beams", self.num_beams, 1)
        _check_int("num_return_sequences", self.num_return_sequences, 1)
        _check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, 0)
        _check_int("top_k", self.top_k, 0, optional=True)
        if not (isinstance(self.early_stopping, bool) or self.early_stopping == "never"):
            raise ValueError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        if self.do_sample and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.repetition_penalty, bool) or not self.repetition_penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0 (1.0 = no penalty), got {self.repetition_penalty!r}")
        if isinstance(self.length_penalty, bool) or not isinstance(self.length_penalty, (int, float)):
            raise ValueError(f"length_penalty must be a number, got {self.length_penalty!r}")
        if self.num_return_sequences > self.num_beams and (self.num_beams > 1 or not self.do_sample):
            raise ValueError(
                f"num_return_sequences={self.num_return_sequences} needs at least as many beams "
                f"(num_beams={self.num_beams}), or do_sample=True without beams: greedy decoding has one result "
                "per prompt"
            )
        if self.bad_words_ids is not None and (
            not isinstance(self.bad_words_ids, (list, tuple))
            or not self.bad_words_ids
            or not all(isinstance(w, (list, tuple)) and w and all(_is_int(t) for t in w) for w in self.bad_words_ids)
        ):
            raise ValueError(
                f"bad_words_ids must be a non-empty list of non-empty lists of token ids (e.g. [[5], [7, 8]]), "
                f"got {self.bad_words_ids!r}"
            )

    # -- generation_config.json ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The settings that differ from the defaults plus :attr:`extras`, under transformers' keys (what
        transformers writes, which it reads back, as we read its files)."""
        default = GenerationConfig()
        out = dict(self.extras)
        for name in self.field_names():
            value = getattr(self, name)
            if value != getattr(default, name):
                out[name] = [list(w) for w in value] if name == "bad_words_ids" else value
        return dict(sorted(out.items()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationConfig:
        """Build from a ``generation_config.json``-style dict; unknown keys go to :attr:`extras`."""
        if not isinstance(data, dict):
            raise TypeError(f"a generation config must be a dict, got {type(data).__name__}")
        names = set(cls.field_names())
        config = cls(
            **{k: v for k, v in data.items() if k in names},
            extras={k: v for k, v in data.items() if k not in names},
        )
        config.validate()
        return config

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``generation_config.json`` into ``save_directory`` (created if needed), atomically."""
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / GENERATION_CONFIG_NAME
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> GenerationConfig:
        """Read ``generation_config.json`` from a checkpoint directory (or a ``.json`` file path)."""
        path = Path(path)
        if path.suffix != ".json":
            check_not_a_file(path)
            path = path / GENERATION_CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no generation config file at {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data)


class GenerationConfigMixin:
    """The framework-free part of every port's generation mixin: the default settings of ``generate()``, read from
    and written to the checkpoint's ``generation_config.json`` around the model's own ``from_pretrained`` /
    ``save_pretrained``."""

    #: default settings of ``generate()`` (None: transformers' defaults)
    generation_config: GenerationConfig | None = None

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> Path:
        """The model's ``save_pretrained``, plus ``generation_config.json`` when :attr:`generation_config` is set
        (on the main process only, when the model's ``save_pretrained`` takes ``is_main_process``)."""
        path = super().save_pretrained(save_directory, *args, **kwargs)
        if self.generation_config is not None and kwargs.get("is_main_process", True):
            self.generation_config.save_pretrained(save_directory)
        return path

    @classmethod
    def from_pretrained(cls, pretrained_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """The model's ``from_pretrained``; a ``generation_config.json`` there (in the directory, or in the hub
        repository of an id) becomes :attr:`generation_config`."""
        hub_kwargs = {name: kwargs[name] for name in HUB_KWARGS if name in kwargs}
        model = super().from_pretrained(pretrained_path, *args, **kwargs)
        # a hub id: only this one optional file more is asked for, and only by the classes that generate
        path = resolve_optional_file(pretrained_path, GENERATION_CONFIG_NAME, **hub_kwargs)
        model.generation_config = GenerationConfig.from_pretrained(path) if path is not None else None
        return model


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class GenerationPlan:
    """One ``generate()`` call, resolved: settings, special ids, lengths, and the prompts checked, left-aligned
    (see :func:`prepare_prompts`) and repeated ``num_beams`` times (beam search) or ``num_return_sequences`` times
    (otherwise), each row next to its copies.

    Attributes:
        input_ids / attention_mask / token_type_ids: int64 ``[N, L]`` with ``N = batch_size * repeats``
            (``token_type_ids`` may be None).
        max_new_tokens: tokens to add at most.
        min_new_tokens: the end-of-sequence ids are suppressed until this many tokens were added (from
            ``min_new_tokens`` and ``min_length``).
    """

    settings: GenerationConfig
    eos_ids: tuple[int, ...]
    pad_token_id: int
    max_new_tokens: int
    min_new_tokens: int
    batch_size: int
    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray | None

    @property
    def uses_host_loop(self) -> bool:
        """Whether decoding needs :func:`roformer_core.decoding.decode_on_host` (beam search or a logits processor);
        plain greedy / top-k / top-p sampling runs in each port's compiled loop."""
        s = self.settings
        return (
            s.num_beams > 1
            or s.repetition_penalty != 1.0
            or s.no_repeat_ngram_size > 0
            or s.bad_words_ids is not None
            or (self.min_new_tokens > 0 and bool(self.eos_ids))
        )


def plan_generation(
    config: RoFormerConfig,
    generation_config: GenerationConfig | None,
    overrides: dict[str, Any],
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
) -> GenerationPlan:
    """Resolve a ``generate()`` call: ``overrides`` (keyword settings) applied to ``generation_config`` (default:
    transformers' defaults), special ids completed from the model config, prompts prepared.

    Args:
        config: the model's config (must be a decoder).
        generation_config: the call's or the model's settings, or None.
        overrides: keyword settings, named as :class:`GenerationConfig` fields.
        input_ids / attention_mask / token_type_ids: ``[B, L]`` prompts (anything ``np.asarray`` takes).

    Raises:
        ValueError / TypeError: naming the setting or input that cannot work.
    """
    if not config.is_decoder:
        raise ValueError("generate() needs a decoder: build the causal LM with is_decoder=True")
    if generation_config is not None and not isinstance(generation_config, GenerationConfig):
        raise TypeError(
            f"generation_config must be a roformer_core.GenerationConfig, got {type(generation_config).__name__}"
        )
    settings = (generation_config or GenerationConfig()).update(**overrides)
    ignored = sorted(set(settings.extras) - set(_METADATA_KEYS))
    if ignored:
        warnings.warn(
            f"generate() ignores these generation settings, which it does not implement: {ignored}", stacklevel=3
        )
    eos_token_id = config.eos_token_id if settings.eos_token_id is None else settings.eos_token_id
    eos_ids = tuple(int(i) for i in np.atleast_1d(eos_token_id)) if eos_token_id is not None else ()
    for name, ids in (("eos_token_id", eos_ids), ("bad_words_ids", sum(settings.bad_words_ids or [], []))):
        for i in ids:
            if not 0 <= i < config.vocab_size:
                raise ValueError(f"{name} contains {i}, out of range for vocab_size={config.vocab_size}")
    pad_token_id = settings.pad_token_id if settings.pad_token_id is not None else config.pad_token_id
    if pad_token_id is None:
        pad_token_id = eos_ids[0] if eos_ids else 0
    ids, mask, types = prepare_prompts(config, input_ids, attention_mask, token_type_ids, int(pad_token_id))
    length = ids.shape[1]
    if settings.max_new_tokens is not None:
        max_new_tokens = settings.max_new_tokens
    elif settings.max_length > length:
        max_new_tokens = settings.max_length - length
    else:
        raise ValueError(
            f"max_length={settings.max_length} (prompt + new tokens) leaves no room after the {length}-token "
            "prompt: pass max_new_tokens=..., or a larger max_length"
        )
    repeats = settings.num_beams if settings.num_beams > 1 else settings.num_return_sequences
    return GenerationPlan(
        settings=settings,
        eos_ids=eos_ids,
        pad_token_id=int(pad_token_id),
        max_new_tokens=max_new_tokens,
        min_new_tokens=max(settings.min_new_tokens or 0, settings.min_length - length, 0),
        batch_size=ids.shape[0],
        input_ids=np.repeat(ids, repeats, axis=0),
        attention_mask=np.repeat(mask, repeats, axis=0),
        token_type_ids=None if types is None else np.repeat(types, repeats, axis=0),
    )


def generated_token_type(config: RoFormerConfig) -> int:
    """The token type of every generated token: the target segment (1) under the UniLM rule (``config.unilm``,
    RoFormer-Sim: the prompt is segment 0, so each new token sees the prompt and the tokens before it), else 0."""
    return 1 if config.unilm else 0


def left_align_plan(attention_mask: np.ndarray) -> np.ndarray | None:
    """Column order that moves each row's padding to the left, or None when prompts are already left-aligned.

    Args:
        attention_mask: ``[B, L]`` 0/1.

    Returns:
        ``[B, L]`` int64 gather indices (stable: tokens keep their order), or None.
    """
    mask = np.asarray(attention_mask).astype(bool)
    if mask.size == 0:
        return None
    # left-aligned <=> in each row every real token is after every pad
    left_aligned = all(np.all(row[np.argmax(row) :]) if row.any() else True for row in mask)
    if left_aligned:
        return None
    return np.argsort(mask.astype(np.int8), axis=1, kind="stable").astype(np.int64)


def prepare_prompts(
    config: RoFormerConfig,
    input_ids,
    attention_mask,
    token_type_ids,
    pad_token_id: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Check prompts and lay them out for decoding: padding moved to the left (see :func:`left_align_plan`), pad
    positions set to ``pad_token_id``, ids and token types checked against the config (a ValueError naming the
    input: inside a compiled decoding loop nothing could raise).

    Args:
        input_ids: ``[B, L]`` integer prompts (anything ``np.asarray`` takes); pad positions may hold any value.
        attention_mask: ``[B, L]`` 0/1, or None for no padding.
        token_type_ids: ``[B, L]`` or None.
        pad_token_id: the id pad positions get (see :func:`plan_generation`).

    Returns:
        int64 ``ids [B, L]``, ``mask [B, L]`` and ``types [B, L]`` (or None).
    """
    ids = np.asarray(input_ids)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, length], got shape {list(ids.shape)}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"input_ids must be integers, got {ids.dtype}")
    ids = ids.astype(np.int64)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask).astype(np.int64)
    if mask.shape != ids.shape:
        raise ValueError(f"attention_mask shape {list(mask.shape)} differs from input_ids {list(ids.shape)}")
    types = None if token_type_ids is None else np.asarray(token_type_ids).astype(np.int64)
    if types is not None and types.shape != ids.shape:
        raise ValueError(f"token_type_ids shape {list(types.shape)} differs from input_ids {list(ids.shape)}")
    order = left_align_plan(mask)
    if order is not None:
        ids, mask = np.take_along_axis(ids, order, 1), np.take_along_axis(mask, order, 1)
        types = None if types is None else np.take_along_axis(types, order, 1)
    # pads carry pad_token_id in the output, whatever the caller put there
    ids = np.where(mask.astype(bool), ids, pad_token_id)
    if ids.size:
        check_id_range("input_ids", int(ids.min()), int(ids.max()), config)
        if types is not None:
            check_id_range("token_type_ids", int(types.min()), int(types.max()), config)
    return ids, mask, types
