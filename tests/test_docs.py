"""Every ```python block in README.md and docs/*.md runs, so examples cannot rot.

Blocks of one file share a namespace and run in order, in a temporary working directory. A block whose first
line is ``# not run`` is skipped (e.g. one that needs a real pretrained checkpoint).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.slow  # over 10 s (subprocesses, XLA compiles, whole docs pages): CI runs it, -m 'not slow' skips it
@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_examples_run(path: Path, tmp_path, monkeypatch) -> None:
    blocks = [b for b in BLOCK.findall(path.read_text(encoding="utf-8")) if not b.startswith("# not run")]
    if not blocks:
        pytest.skip(f"{path.name} has no runnable python examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{path.name}[block {number}]", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"{path.name} block {number} failed: {type(err).__name__}: {err}") from err
    assert os.getcwd() == str(tmp_path)
