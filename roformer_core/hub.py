"""Checkpoints by name: every ``from_pretrained`` takes a local directory or a model id of the Hugging Face hub.

An id is downloaded with ``huggingface_hub`` into its cache (``HF_HOME`` / ``HF_HUB_CACHE`` or ``cache_dir``),
honouring its own settings (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``, ``HF_HUB_DISABLE_PROGRESS_BARS``),
and only the files one framework needs are fetched: ``config.json`` and ONE weights file, the first of
:func:`roformer_core.checkpoint.weights_order` the repository has, plus the tokenizer files when asked.
``huggingface_hub`` is imported only when an id is resolved, so ``import roformer_core`` stays light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: The keyword arguments every ``from_pretrained`` takes for the hub (passed to ``huggingface_hub``, never to the
#: config): ``revision`` (branch, tag or commit), ``cache_dir``, ``local_files_only`` (the cache only, no network),
#: ``token`` (for private and gated repositories; default: ``HF_TOKEN`` or the login) and ``force_download``.
HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "force_download")

#: What :func:`resolve_checkpoint` downloads: ``config.json``, + the weights, the tokenizer files, or everything.
FILE_SETS = ("config", "model", "tokenizer", "all")


class CheckpointNotFoundError(FileNotFoundError):
    """A hub id whose files cannot be had: no such repository, a gated one without access, a missing file or
    revision, or no network and nothing in the cache. The message names the id and what to do."""


def pop_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove the :data:`HUB_KWARGS` from a ``from_pretrained``'s ``**kwargs`` (in place) and return them."""
    return {name: kwargs.pop(name) for name in HUB_KWARGS if name in kwargs}


def is_hub_id(name: str | os.PathLike) -> bool:
    """True when ``name`` is not an existing file or directory and can be a hub repository id (``owner/name`` or
    ``name``): an absolute path, ``./x``, ``a/b/c`` and the like stay local paths."""
    text = os.fspath(name)
    if os.path.exists(text) or os.path.isabs(text) or text.startswith(("~", ".")):
        return False
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def resolve_checkpoint(
    name_or_path: str | os.PathLike,
    *,
    framework: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    files: str = "model",
) -> Path:
    """The local directory of a checkpoint given by directory or by hub id.

    A name that is not a hub id (:func:`is_hub_id`: an existing directory, an absolute path, ...) is returned as a
    path, unchecked, so the caller reports a missing directory in its own words. An id is downloaded into the
    ``huggingface_hub`` cache (or found there) and its snapshot directory returned.

    Args:
        name_or_path: a checkpoint directory or a hub id such as ``"junnyu/roformer_chinese_base"``.
        framework: ``"pt"``, ``"tf"``, ``"flax"`` or None: which weights file is preferred
            (:func:`roformer_core.checkpoint.weights_order`).
        revision: branch, tag or commit hash (default: ``main``).
        cache_dir: the cache directory (default: huggingface_hub's, ``HF_HUB_CACHE``).
        local_files_only: use the cache only (as does ``HF_HUB_OFFLINE=1``).
        token: access token for private or gated repositories (default: ``HF_TOKEN`` or the saved login).
        force_download: download again even when cached.
        files: one of :data:`FILE_SETS`: ``"config"`` (``config.json``), ``"model"`` (+ one weights file and its
            shards), ``"tokenizer"`` (the tokenizer files the repository has; at least a vocabulary), ``"all"``
            (all of them, the tokenizer files optional).

    Raises:
        CheckpointNotFoundError: the files cannot be had; the message names the id and what to do.
        ValueError: an unknown ``files`` or ``framework``.
    """
    # imported here: config, checkpoint and tokenization import this module
    from ._tokenization_files import TOKENIZER_FILE, TOKENIZER_FILES, VOCAB_FILE
    from .checkpoint import weights_order
    from .config import CONFIG_NAME

    if files not in FILE_SETS:
        raise ValueError(f"files must be one of {FILE_SETS}, got {files!r}")
    order = weights_order(framework)  # checks framework, also for a local path
    if not is_hub_id(name_or_path):
        return Path(name_or_path)
    fetch = _Fetcher(
        os.fspath(name_or_path),
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
        force_download=force_download,
    )
    if files in ("config", "model", "all"):
        fetch.required(CONFIG_NAME)
    if files in ("model", "all"):
        fetch.weights(order)
    if files in ("tokenizer", "all"):
        found = fetch.optional(TOKENIZER_FILES)
        if files == "tokenizer" and not found & {VOCAB_FILE, TOKENIZER_FILE}:
            raise CheckpointNotFoundError(
                fetch.missing(
                    f"tokenizer ({VOCAB_FILE} or {TOKENIZER_FILE})",
                    "pass the directory of a tokenizer saved with save_pretrained(), or the id of a repository "
                    "that has one",
                )
            )
    return fetch.snapshot


def resolve_optional_file(
    name_or_path: str | os.PathLike,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
) -> Path | None:
    """The local path of one optional file of a checkpoint (``generation_config.json``): in a directory, or
    downloaded from a hub id (only that file); None when the checkpoint has none.

    Raises:
        CheckpointNotFoundError: the repository cannot be had (see :func:`resolve_checkpoint`).
    """
    if not is_hub_id(name_or_path):
        path = Path(name_or_path) / filename
        return path if path.is_file() else None
    fetch = _Fetcher(
        os.fspath(name_or_path),
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
        force_download=force_download,
    )
    return fetch._get(filename)


class _Fetcher:
    """Downloads files of one repository revision with ``huggingface_hub.hf_hub_download``; every failure becomes
    one :class:`CheckpointNotFoundError` line."""

    def __init__(self, repo_id: str, **options: Any) -> None:
        import huggingface_hub
        from huggingface_hub import constants

        self.repo_id, self.options = repo_id, options
        self.download = huggingface_hub.hf_hub_download
        self.endpoint = constants.ENDPOINT
        self.cache = Path(options["cache_dir"] or constants.HF_HUB_CACHE)
        self.offline = bool(options["local_files_only"] or constants.HF_HUB_OFFLINE)
        revision = options["revision"]
        self.where = repo_id if revision is None else f"{repo_id} (revision {revision})"
        # set when a file was neither in the cache nor downloadable: it may exist on the hub, so the messages say
        # how to get it instead of calling it missing
        self.uncached: str | None = None
        self.snapshot_dir: Path | None = None

    @property
    def snapshot(self) -> Path:
        assert self.snapshot_dir is not None, "resolve_checkpoint always fetches at least one file"
        return self.snapshot_dir

    def _get(self, filename: str) -> Path | None:
        """The cached path of ``filename``; None when the repository does not have it, or (offline) when the cache
        does not; any other failure raises."""
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            path = Path(self.download(self.repo_id, filename, **self.options))
        except GatedRepoError:
            raise CheckpointNotFoundError(
                f"{self.repo_id} is a gated repository on {self.endpoint}: accept its conditions on "
                f"{self.endpoint}/{self.repo_id} and pass token= (or set HF_TOKEN, or run `hf auth login`)"
            ) from None
        except RepositoryNotFoundError:
            raise CheckpointNotFoundError(
                f"{self.repo_id} is not a local directory, and {self.endpoint} has no model repository of that name "
                "(or it is private): check the name, pass token= for a private repository, or pass the path of a "
                "checkpoint directory"
            ) from None
        except RevisionNotFoundError:
            raise CheckpointNotFoundError(
                f"{self.repo_id} has no revision {self.options['revision']!r}: pass an existing branch, tag or "
                "commit hash as revision="
            ) from None
        except LocalEntryNotFoundError:  # before EntryNotFoundError, its base class
            why = (
                "local_files_only=True or HF_HUB_OFFLINE=1 forbids downloading: load it once online"
                if self.offline
                else f"{self.endpoint} cannot be reached: check the network (or HF_ENDPOINT)"
            )
            self.uncached = f"not in the cache ({self.cache}) and {why}, or pass the path of a checkpoint directory"
            return None
        except EntryNotFoundError:
            return None
        except OSError as err:  # other HTTP statuses, a connection lost mid-download (requests' errors are OSErrors)
            raise CheckpointNotFoundError(
                f"downloading {filename} of {self.where} failed: {str(err).splitlines()[0]}; retry later, or pass "
                "the path of a checkpoint directory"
            ) from None
        self.snapshot_dir = path.parent
        return path

    def required(self, filename: str) -> Path:
        path = self._get(filename)
        if path is None:
            raise CheckpointNotFoundError(
                self.missing(filename, "it is not a RoFormer checkpoint; pass the id or directory of one")
            )
        return path

    def missing(self, what: str, advice: str) -> str:
        if self.uncached is not None:
            return f"{self.where}: {what} is {self.uncached}"
        return f"{self.where} has no {what}: {advice}"

    def optional(self, filenames: Iterable[str]) -> set[str]:
        return {name for name in filenames if self._get(name) is not None}

    def weights(self, order: tuple[str, ...]) -> Path:
        """The first weights file of ``order`` the repository has, and the shards its index lists."""
        for name in order:
            path = self._get(name)
            if path is None:
                continue
            if name.endswith(".index.json"):
                try:
                    shards = sorted(set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values()))
                except (json.JSONDecodeError, KeyError, UnicodeDecodeError, AttributeError) as err:
                    raise CheckpointNotFoundError(f"{name} of {self.where} is not a shard index: {err!r}") from None
                for shard in shards:
                    self.required(shard)
            return path
        raise CheckpointNotFoundError(
            self.missing(
                "weights file", f"expected one of {', '.join(order)}; pass the id or directory of a checkpoint"
            )
        )
