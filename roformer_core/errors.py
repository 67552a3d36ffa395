"""Exceptions shared by the core's readers (kept free of imports so every module can raise them)."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file or directory cannot be read (missing, truncated, corrupt)."""
