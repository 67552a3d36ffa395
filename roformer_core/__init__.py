"""Framework-neutral core of the RoFormer library: config, rotary math, weight schema, heads, outputs, losses.

Importing this package imports no deep-learning framework.
"""

from .checkpoint import CheckpointError, find_weights, load_checkpoint, read_weights_file, save_checkpoint
from .config import RoFormerConfig
from .constants import mask_fill_value
from .generation import GenerationConfig
from .heads import HEADS, HeadSpec, get_head
from .hub import HUB_KWARGS, CheckpointNotFoundError
from .known_checkpoints import KNOWN_CHECKPOINTS, KnownCheckpoint
from .losses import IGNORE_INDEX
from .masks import unilm_mask
from .outputs import (
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    MaskedLMOutput,
    ModelOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .rotary import apply_rotary, rotate_pairs, sinusoidal_table
from .schema import CheckpointMismatchError, ParamSpec, check_state_dict, model_schema
from .tokenization import BatchEncoding, RoFormerTokenizer, RoFormerTokenizerFast
from .variants import VARIANT_FIELDS, variant_config

__version__ = "0.1.0"

__all__ = [
    "HEADS",
    "HUB_KWARGS",
    "IGNORE_INDEX",
    "KNOWN_CHECKPOINTS",
    "BaseModelOutputWithPastAndCrossAttentions",
    "BatchEncoding",
    "CausalLMOutputWithCrossAttentions",
    "CheckpointError",
    "CheckpointNotFoundError",
    "CheckpointMismatchError",
    "GenerationConfig",
    "HeadSpec",
    "KnownCheckpoint",
    "MaskedLMOutput",
    "ModelOutput",
    "MultipleChoiceModelOutput",
    "ParamSpec",
    "QuestionAnsweringModelOutput",
    "RoFormerConfig",
    "RoFormerTokenizer",
    "RoFormerTokenizerFast",
    "SequenceClassifierOutput",
    "TokenClassifierOutput",
    "VARIANT_FIELDS",
    "apply_rotary",
    "check_state_dict",
    "find_weights",
    "get_head",
    "load_checkpoint",
    "mask_fill_value",
    "model_schema",
    "read_weights_file",
    "rotate_pairs",
    "save_checkpoint",
    "sinusoidal_table",
    "unilm_mask",
    "variant_config",
]
