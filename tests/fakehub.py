"""A fake Hugging Face hub on 127.0.0.1 for the tests (there is no network): it answers the requests
``huggingface_hub.hf_hub_download`` makes (``HEAD`` and ``GET /{repo}/resolve/{revision}/{file}``) with the headers
it reads (``X-Repo-Commit``, ``ETag``, ``Content-Length``, ``X-Error-Code``), and records every request.

Errors are answered as the real hub answers them: an unknown repository 401 ``RepoNotFound`` (the hub does not
tell a missing repository from a private one), a gated repository without the right token 401 ``GatedRepo``, a
missing revision 404 ``RevisionNotFound``, a missing file 404 ``EntryNotFound`` (with ``X-Repo-Commit``, from which
huggingface_hub caches the absence).
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Repo:
    revisions: dict[str, Path]  # branch or tag -> directory of its files
    token: str | None = None  # a gated repository: served only to requests carrying this token


@dataclass
class Request:
    method: str
    repo: str
    revision: str
    filename: str
    status: int


@dataclass
class FakeHub:
    """The server, its repositories (``add``) and the requests it answered (``requests``)."""

    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def add(self, repo_id: str, directory: Path, revision: str = "main", token: str | None = None) -> None:
        repo = self.repos.setdefault(repo_id, Repo({}, token))
        repo.revisions[revision] = Path(directory)

    def files(self, method: str = "GET") -> set[str]:
        """The files requested with ``method`` and answered 200."""
        return {r.filename for r in self.requests if r.method == method and r.status == 200}

    def start(self) -> FakeHub:
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                status, headers, data, where = hub._resolve(self.path, self.headers.get("Authorization"))
                hub.requests.append(Request(self.command, *where, status))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _resolve(self, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes, tuple]:
        """``(status, headers, body, (repo, revision, file))`` for ``/{owner}/{name}/resolve/{revision}/{file}``."""
        parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(path).path.strip("/").split("/")]
        if "resolve" not in parts:
            return 404, {}, b"", ("", "", path)
        at = parts.index("resolve")
        repo_id, revision, filename = "/".join(parts[:at]), parts[at + 1], "/".join(parts[at + 2 :])
        where = (repo_id, revision, filename)
        repo = self.repos.get(repo_id)
        if repo is None:
            return 401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}, b"", where
        if repo.token is not None and authorization != f"Bearer {repo.token}":
            message = f"Access to model {repo_id} is restricted. You must have access to it and be authenticated."
            return 401, {"X-Error-Code": "GatedRepo", "X-Error-Message": message}, b"", where
        commits = {_commit(repo_id, name): name for name in repo.revisions}
        directory = repo.revisions.get(commits.get(revision, revision))
        if directory is None:
            return 404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}, b"", where
        commit = _commit(repo_id, commits.get(revision, revision))
        file = directory / filename
        if not file.is_file():
            headers = {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found", "X-Repo-Commit": commit}
            return 404, headers, b"", where
        data = file.read_bytes()
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        return 200, {"X-Repo-Commit": commit, "ETag": etag}, data, where


def _commit(repo_id: str, revision: str) -> str:
    """A stable 40-hex commit hash per (repository, branch)."""
    return hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()


def use_hub(monkeypatch: pytest.MonkeyPatch, url: str, cache: Path, offline: bool = False) -> None:
    """Point huggingface_hub at ``url`` with the cache ``cache``, as ``HF_ENDPOINT`` / ``HF_HUB_CACHE`` /
    ``HF_HUB_OFFLINE`` would at start-up (huggingface_hub reads them into constants when imported, so the
    constants are patched), with no token but the one a test passes. Its HTTP sessions are dropped: a session
    made while offline refuses every request (huggingface_hub mounts its offline adapter when creating one)."""
    from huggingface_hub import constants, file_download
    from huggingface_hub.utils import reset_sessions

    template = url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    reset_sessions()
