"""Checkpoint conversion between every format RoFormer users hold, and the ``roformer-convert`` / ``roformer``
command lines. Imported as ``roformer_conversion``."""

from .convert import ConversionError, ConversionReport, convert_checkpoint, detect_source, infer_head
from .original import OriginalCheckpoint, read_original_checkpoint
from .verify import SAMPLE_CHECKPOINT, verify

__all__ = [
    "SAMPLE_CHECKPOINT",
    "ConversionError",
    "ConversionReport",
    "OriginalCheckpoint",
    "convert_checkpoint",
    "detect_source",
    "infer_head",
    "read_original_checkpoint",
    "verify",
]
