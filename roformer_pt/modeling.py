"""RoFormer in PyTorch: the bare model and the six heads, built from the blocks of :mod:`.layers`.

Module and parameter names follow the reference, so ``state_dict()`` keys are the canonical names of
:mod:`roformer_core.schema`. The rotary layout is documented once, in :mod:`roformer_core.rotary`.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils._pytree as pytree
from torch import nn

from roformer_core import losses
from roformer_core.checkpoint import (
    CONFIG_STATE_KEY,
    PT_WEIGHTS_NAME,
    SAFE_WEIGHTS_NAME,
    config_state,
    load_checkpoint,
    save_checkpoint,
)
from roformer_core.config import RoFormerConfig
from roformer_core.constants import mask_fill_value
from roformer_core.heads import (
    CAUSAL_LM,
    MASKED_LM,
    MODEL,
    MULTIPLE_CHOICE,
    QUESTION_ANSWERING,
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    HeadSpec,
)
from roformer_core.outputs import OUTPUT_CLASSES, ModelOutput, output_class_for
from roformer_core.schema import (
    INITIALIZERS,
    ROTARY_TABLE,
    WORD_EMBEDDINGS_KEY,
    check_state_dict,
    model_schema,
    resize_vocab,
    resized_vocab_size,
    resolve_checkpoint,
    vocab_params,
    zeroed_row,
)
from roformer_core.validation import check_attention_mask, check_class_labels, check_id_range

from .generation import GenerationMixin
from .layers import (
    Linear,
    PastKeyValues,
    RoFormerClassificationHead,
    RoFormerEmbeddings,
    RoFormerEncoder,
    RoFormerOnlyMLMHead,
    RoFormerPooler,
    RoFormerSinusoidalPositionalEmbedding,
    _compiling,
    unilm_keep,
)

logger = logging.getLogger(__name__)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a numpy array of its own (bfloat16, which numpy lacks, as float32)."""
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy().copy()


def _min_max(values: torch.Tensor) -> tuple[int, int]:
    """The smallest and largest value of a non-empty integer tensor, with one device sync."""
    low, high = torch.stack(torch.aminmax(values)).tolist()
    return low, high


def _class_loss(logits: torch.Tensor, labels: torch.Tensor, head_name: str) -> torch.Tensor:
    """Mean float32 cross-entropy of ``logits [N, C]`` against class ``labels`` (any shape of N values),
    skipping IGNORE_INDEX. The labels are first checked to lie in ``[0, C)`` (``validation.check_class_labels``: a
    ValueError naming the head's ``losses.CLASS_LABEL_FIELDS`` entry, where torch would raise an IndexError on CPU
    and a device-side assert on CUDA), with one device sync; not while compiling.

    Outside graph capture, only the labelled rows enter the softmax (selecting them is a second sync): a masked LM
    labels about 15% of its positions, and the log-softmax of the others (``[N, C]`` floats, saved for the
    backward) would be computed for nothing. The mean over the labelled rows is the same number."""
    labels = labels.to(logits.device).reshape(-1)
    if not _compiling() and labels.numel():
        ignored = labels == losses.IGNORE_INDEX
        low, high, skipped = torch.stack((*torch.aminmax(labels.masked_fill(ignored, 0)), ignored.sum())).tolist()
        check_class_labels("labels", low, high, logits.shape[-1], losses.CLASS_LABEL_FIELDS[head_name])
        if skipped:
            kept = ~ignored
            logits, labels = logits[kept], labels[kept]
    return F.cross_entropy(logits.float(), labels, ignore_index=losses.IGNORE_INDEX)


# ---- outputs ----------------------------------------------------------------------------------------------------


def _unflatten_output(cls: type[ModelOutput], values: list[Any], names: list[str]) -> ModelOutput:
    return cls(**dict(zip(names, values, strict=True)))


# The core's output classes become pytree nodes (context: the present field names), so torch.export and other
# graph capture see the tensors inside them.
for _name, _cls in OUTPUT_CLASSES.items():
    pytree.register_pytree_node(
        _cls,
        lambda output: (list(output.values()), list(output.keys())),
        functools.partial(_unflatten_output, _cls),
        serialized_type_name=f"roformer_core.outputs.{_name}",
    )


# ---- models ----------------------------------------------------------------------------------------------------


# state_dict() holds each tensor once, as checkpoint files do: a tied copy (the LM decoder's weight and bias) is the
# same tensor as its source, so torch.save, safetensors (which refuses tensors sharing memory), transformers.Trainer
# and accelerate save the state dict as is, and load_state_dict accepts it with or without the copies.
def _drop_tied_copies(model: RoFormerPreTrainedModel, state: dict[str, Any], prefix: str, _metadata: Any) -> None:
    for copy, source in model._tied_pairs():
        if model.get_parameter(copy) is model.get_parameter(source):
            state.pop(prefix + copy, None)
    if not model._carries_config:
        state.pop(prefix + CONFIG_STATE_KEY, None)


def _fill_tied_copies(model: RoFormerPreTrainedModel, state: dict[str, Any], prefix: str, *_: Any) -> None:
    for copy, source in model._tied_pairs():
        if prefix + copy not in state and prefix + source in state:
            state[prefix + copy] = state[prefix + source]
    # a state dict without the config (the reference's, or one saved before) still loads with strict=True
    if prefix + CONFIG_STATE_KEY not in state:
        state[prefix + CONFIG_STATE_KEY] = model.get_extra_state()


def _retie(model: RoFormerPreTrainedModel, _incompatible_keys: Any) -> None:
    # load_state_dict(assign=True) replaces the parameters one by one, which unties them
    model.tie_weights()


class RoFormerPreTrainedModel(nn.Module):
    """Shared loading, saving, initialization and input checking of every RoFormer model class."""

    head: HeadSpec = MODEL
    supports_gradient_checkpointing = True
    _carries_config = True
    # transformers' attributes that Trainer and accelerate read
    main_input_name = "input_ids"
    _keys_to_ignore_on_save: list[str] | None = None

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        if not isinstance(config, RoFormerConfig):
            raise TypeError(f"config must be a RoFormerConfig, got {type(config).__name__}")
        self.head.adapt_config(config)
        config.validate()
        self.config = config
        self.register_state_dict_post_hook(_drop_tied_copies)
        self.register_load_state_dict_pre_hook(_fill_tied_copies)
        self.register_load_state_dict_post_hook(_retie)

    # -- initialization ---------------------------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, RoFormerSinusoidalPositionalEmbedding):
            module.reset_table()

    def _initialize(self, names: list[str]) -> None:
        """Initialize the named parameters (canonical names) by their schema kind (``INITIALIZERS``)."""
        if not names:
            return
        specs = {spec.name: spec for spec in model_schema(self.config, self.head)}
        params = dict(self.named_parameters())
        std = self.config.initializer_range
        with torch.no_grad():
            for name in names:
                rule = INITIALIZERS[specs[name].kind]
                if rule == "normal":
                    params[name].normal_(std=std)
                    if (row := zeroed_row(specs[name], self.config)) is not None:
                        params[name][row].zero_()
                else:
                    params[name].fill_(1.0 if rule == "ones" else 0.0)

    def post_init(self) -> None:
        self.apply(self._init_weights)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the LM decoder weight with the word embeddings when ``tie_word_embeddings`` (LM heads only); call
        it again after replacing the word embeddings."""

    def get_extra_state(self) -> torch.Tensor:
        """The config, carried by ``state_dict()`` under ``_extra_state`` (roformer_core.checkpoint
        ``CONFIG_STATE_KEY``) as the uint8 ``config.json`` text, so that a weights-only save reloads with
        ``from_pretrained(directory)`` alone."""
        return torch.from_numpy(config_state(self.config))

    def set_extra_state(self, state: Any) -> None:
        """Loading a state dict changes the weights only; the model keeps its own config."""

    def _tied_pairs(self) -> list[tuple[str, str]]:
        """``(copy, source)`` canonical names of the tied parameters (roformer_core.schema ``tied_to``)."""
        return [(spec.name, spec.tied_to) for spec in model_schema(self.config, self.head) if spec.tied_to]

    @property
    def _tied_weights_keys(self) -> list[str]:
        """transformers' list of tied copies: never saved, re-tied on load."""
        return [copy for copy, _ in self._tied_pairs()]

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """The number of parameters, as transformers counts them: tied parameters once; ``exclude_embeddings``
        leaves out the weights of the embedding tables; the rotary table counts as a frozen parameter (it is an
        ``nn.Embedding`` with ``requires_grad=False`` in the reference, a buffer here).

        Args:
            only_trainable: count only parameters with ``requires_grad``.
            exclude_embeddings: leave out the word, token-type and rotary tables.
        """
        embedding_names = {
            f"{name}.weight" for name, module in self.named_modules() if isinstance(module, nn.Embedding)
        }
        total = sum(
            param.numel()
            for name, param in self.named_parameters()
            if not (exclude_embeddings and name in embedding_names) and (param.requires_grad or not only_trainable)
        )
        if not (only_trainable or exclude_embeddings):
            total += sum(
                module.weight.numel()
                for module in self.modules()
                if isinstance(module, RoFormerSinusoidalPositionalEmbedding)
            )
        return total

    # -- gradient checkpointing --------------------------------------------------------------------------------
    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any] | None = None) -> None:
        """Recompute each layer's activations in the backward pass (training only; the cache is disabled).

        Args:
            gradient_checkpointing_kwargs: passed to ``torch.utils.checkpoint.checkpoint`` on top of
                ``use_reentrant=False`` (transformers' ``Trainer`` passes ``TrainingArguments``' value).
        """
        for module in self.modules():
            if isinstance(module, RoFormerEncoder):
                module.gradient_checkpointing = True
                module.checkpoint_kwargs = {"use_reentrant": False, **(gradient_checkpointing_kwargs or {})}

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if isinstance(module, RoFormerEncoder):
                module.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(m.gradient_checkpointing for m in self.modules() if isinstance(m, RoFormerEncoder))

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def canonical_state_dict(self) -> dict[str, np.ndarray]:
        """The stored (untied) parameters as float32/float numpy arrays under their canonical names."""
        return {name: _to_numpy(tensor) for name, tensor in self._stored_tensors().items()}

    def _stored_tensors(self, state_dict: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The stored parameters (tied copies left out) by canonical name, detached on the CPU: the model's own,
        or those of ``state_dict`` (checked against the schema first; the rotary table is always the model's)."""
        schema = model_schema(self.config, self.head)
        own = self.state_dict()
        if state_dict is not None:
            state_dict = {name: value for name, value in state_dict.items() if name != CONFIG_STATE_KEY}
            check_state_dict(schema, state_dict, source="the state_dict given to save_pretrained")
        return {
            spec.name: (own if state_dict is None or spec.kind == ROTARY_TABLE else state_dict)[spec.name]
            .detach()
            .cpu()
            for spec in schema
            if spec.stored
        }

    def load_canonical_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy canonical numpy arrays (already validated against the schema) into the parameters."""
        params = dict(self.named_parameters())
        params.update(self.named_buffers())
        with torch.no_grad():
            for name, array in arrays.items():
                target = params[name]
                if not isinstance(array, torch.Tensor):
                    # copy_ only reads: a read-only (memory-mapped) array needs no copy of its own first
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                        array = torch.from_numpy(np.asarray(array))
                target.copy_(array)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        is_main_process: bool = True,
        state_dict: Mapping[str, torch.Tensor] | None = None,
        save_function: Callable[[dict[str, torch.Tensor], str], Any] = torch.save,
        safe_serialization: bool = True,
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (atomically) that the reference and every port load.

        Tied copies are written once (under the word-embedding name); the rotary table is written with
        ``max_position_embeddings`` rows, as the reference stores it. The keyword arguments are transformers' (the
        ones accelerate's documentation passes).

        Args:
            save_directory: the checkpoint directory (created if missing).
            is_main_process: when False (the other processes of a distributed run) nothing is written.
            state_dict: weights to write instead of the model's own (e.g. ``accelerator.get_state_dict(model)``),
                with or without the tied copies; checked against the schema.
            save_function: writes ``pytorch_model.bin`` when ``safe_serialization=False`` (e.g. ``accelerator.save``).
            safe_serialization: write ``model.safetensors`` (default) or, when False, ``pytorch_model.bin``.

        Returns:
            the directory.
        """
        directory = Path(save_directory)
        if not is_main_process:
            return directory
        config = self.config.copy()
        config.extra["architectures"] = [type(self).__name__]
        config.extra["torch_dtype"] = str(self.dtype).replace("torch.", "")
        tensors = self._stored_tensors(state_dict)
        if safe_serialization:
            return save_checkpoint(directory, config, {name: _to_numpy(t) for name, t in tensors.items()})
        directory.mkdir(parents=True, exist_ok=True)
        save_function({name: t.contiguous() for name, t in tensors.items()}, str(directory / PT_WEIGHTS_NAME))
        # loaders prefer safetensors: an older model.safetensors here would shadow the new weights
        (directory / SAFE_WEIGHTS_NAME).unlink(missing_ok=True)
        config.save_pretrained(directory)
        return directory

    @classmethod
    def from_pretrained(
        cls,
        pretrained_path: str | os.PathLike,
        *,
        config: RoFormerConfig | None = None,
        torch_dtype: torch.dtype | None = None,
        **config_overrides: Any,
    ):
        """Load a checkpoint directory written by the reference or by any of our ports.

        Reads ``config.json`` with ``model.safetensors``, sharded safetensors with their index, or
        ``pytorch_model.bin`` (``weights_only``). Weights of another head (e.g. ``cls.*`` when loading a masked-LM
        checkpoint into a classifier) are skipped and this head's missing weights are freshly initialized, both
        with a warning; every other missing, unexpected or mis-shaped parameter is reported, all at once.

        Args:
            pretrained_path: checkpoint directory, or a hub id (``"junnyu/roformer_chinese_base"``;
                ``revision``, ``cache_dir``, ``local_files_only``, ``token`` go to the hub, docs/hub.md).
            config: use this config instead of the directory's. Without it the config is ``config.json``, or
                the one the weights carry (:meth:`get_extra_state`) in the weights-only directories that
                ``transformers.Trainer.save_model`` and accelerate's ``save_model`` write.
            torch_dtype: cast the model to this dtype after loading.
            **config_overrides: config fields to change (e.g. ``max_position_embeddings=4096``, ``num_labels=5``).
        """
        config, state = load_checkpoint(pretrained_path, config, framework="pt", **config_overrides)
        model = cls.from_state_dict(config, state, source=str(pretrained_path))
        if torch_dtype is not None:
            model.to(torch_dtype)
        return model.eval()

    @classmethod
    def from_state_dict(cls, config: RoFormerConfig, state: dict[str, np.ndarray], source: str = ""):
        """Build this class from a canonical state dict (numpy arrays or tensors), checked against the schema.

        Same matching rules as :meth:`from_pretrained`; returns the model in training mode, like a constructor.
        """
        cls.head.adapt_config(config)
        plan = resolve_checkpoint(config, cls.head, state, source=source)
        # Built on the meta device: no memory is filled with random values that the checkpoint then overwrites
        # (for the base model that random initialization took longer than reading the file).
        with torch.device("meta"):
            model = cls(config)
        model.to_empty(device="cpu")
        model.tie_weights()
        for module in model.modules():
            if isinstance(module, RoFormerSinusoidalPositionalEmbedding):
                module.reset_table()
        model.load_canonical_state_dict(plan.arrays)
        model._initialize(plan.newly_initialized)
        if plan.newly_initialized:
            logger.warning(
                "%s: weights not in the checkpoint, newly initialized: %s",
                cls.__name__,
                ", ".join(plan.newly_initialized),
            )
        if plan.ignored:
            logger.warning("%s: checkpoint weights not used by this class: %s", cls.__name__, ", ".join(plan.ignored))
        model.tie_weights()
        return model

    # -- vocabulary (roformer_core.schema.vocab_params / resize_vocab) -------------------------------------------
    def get_input_embeddings(self) -> nn.Embedding:
        """The word embeddings ``[V, E]`` (the LM decoder shares their weight when ``tie_word_embeddings``)."""
        return self.get_submodule((self.head.prefix + WORD_EMBEDDINGS_KEY).removesuffix(".weight"))

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """Replace the word embeddings by an ``nn.Embedding`` of the same shape ``[V, E]`` (re-tied to the LM
        decoder); :meth:`resize_token_embeddings` changes ``V``."""
        current = self.get_input_embeddings()
        if not isinstance(value, nn.Embedding) or value.weight.shape != current.weight.shape:
            raise ValueError(
                f"set_input_embeddings takes an nn.Embedding of shape {list(current.weight.shape)}, got "
                f"{type(value).__name__} {list(getattr(getattr(value, 'weight', None), 'shape', []))}; use "
                "resize_token_embeddings(new_num_tokens) to change the vocabulary size"
            )
        parent, _, leaf = (self.head.prefix + WORD_EMBEDDINGS_KEY).removesuffix(".weight").rpartition(".")
        setattr(self.get_submodule(parent), leaf, value)
        self.tie_weights()

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, *, seed: int | None = None
    ) -> nn.Embedding:
        """Grow or shrink the vocabulary to ``new_num_tokens`` (rounded up to ``pad_to_multiple_of``), as
        transformers does: old rows are kept, new embedding (and untied decoder) rows drawn from
        N(0, initializer_range**2), new LM bias entries zero, ties kept, ``config.vocab_size`` updated.

        Args:
            new_num_tokens: the new vocabulary size ``V`` (e.g. ``len(tokenizer)``); None keeps it.
            pad_to_multiple_of: round ``V`` up to a multiple of this.
            seed: seeds the new rows (the same seed draws the same rows in every framework); None draws the
                seed from torch's generator, so ``torch.manual_seed`` makes it reproducible.

        Returns:
            the (new) word embeddings ``[V, E]``.
        """
        size = resized_vocab_size(self.config.vocab_size, new_num_tokens, pad_to_multiple_of)
        if size == self.config.vocab_size:
            return self.get_input_embeddings()
        seed = int(torch.randint(2**31 - 1, ())) if seed is None else seed
        old = {spec.name: self.get_parameter(spec.name) for spec in vocab_params(self.config, self.head)}
        arrays = {name: param.detach().float().cpu().numpy() for name, param in old.items()}
        for name, array in resize_vocab(self.config, self.head, arrays, size, seed).items():
            module_name, _, leaf = name.rpartition(".")
            value = torch.from_numpy(array).to(old[name].device, old[name].dtype)
            setattr(self.get_submodule(module_name), leaf, nn.Parameter(value, requires_grad=old[name].requires_grad))
        self.config.vocab_size = size
        self.tie_weights()
        for spec in model_schema(self.config, self.head):  # the tied decoder's Linear too
            if spec.name in old or spec.tied_to in old:
                module = self.get_submodule(spec.name.rpartition(".")[0])
                for size_attribute in ("num_embeddings", "out_features"):  # nn.Embedding's / nn.Linear's rows
                    if hasattr(module, size_attribute):
                        setattr(module, size_attribute, size)
        return self.get_input_embeddings()

    # -- inputs ------------------------------------------------------------------------------------------------
    def _check_inputs(
        self,
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
    ) -> None:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if _compiling():
            return
        if input_ids is not None:
            if input_ids.dtype.is_floating_point:
                raise ValueError(f"input_ids must be integers, got {input_ids.dtype}")
            if input_ids.numel():
                check_id_range("input_ids", *_min_max(input_ids), self.config)
        if token_type_ids is not None and token_type_ids.numel():
            check_id_range("token_type_ids", *_min_max(token_type_ids), self.config)

    def _finish(self, return_dict: bool | None, **fields: Any) -> ModelOutput | tuple:
        output = output_class_for(self.head)(**fields)
        if return_dict is None:
            # torch.jit.trace records tuples only (transformers' torchscript=True does the same)
            return_dict = self.config.return_dict and not torch.jit.is_tracing()
        return output if return_dict else output.to_tuple()


class RoFormerModel(RoFormerPreTrainedModel):
    """The bare RoFormer encoder (or decoder when ``config.is_decoder``): outputs the final hidden states and, with
    ``config.add_pooling_layer``, the pooled first position.

    Args:
        config: the model config.
        add_pooling_layer: build the pooler (``pooler.dense``) or not, whatever ``config.add_pooling_layer`` says;
            the model then keeps a copy of the config with this value (the caller's config is not changed).
    """

    head = MODEL

    def __init__(
        self, config: RoFormerConfig, add_pooling_layer: bool | None = None, *, _inside_head: bool = False
    ) -> None:
        if add_pooling_layer is not None and add_pooling_layer != config.add_pooling_layer:
            config = config.copy(add_pooling_layer=add_pooling_layer)
        super().__init__(config)
        self._carries_config = not _inside_head  # the head's state dict carries the config once, at its top
        self.embeddings = RoFormerEmbeddings(config)
        if config.has_embeddings_project:
            self.embeddings_project = Linear(config.embedding_size, config.hidden_size)
        self.encoder = RoFormerEncoder(config)
        if config.add_pooling_layer:
            self.pooler = RoFormerPooler(config)
        if not _inside_head:  # a head model initializes everything, this encoder included, once at its end
            self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def _attention_bias(
        self,
        mask: torch.Tensor | None,
        q_len: int,
        k_len: int,
        causal: bool,
        dtype: torch.dtype,
        rule: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """Additive bias ``[B, 1, Lq, Lk]`` (finfo.min where masked), or None when nothing is masked.

        Args:
            mask: ``[B, Lk]`` key padding or ``[B, Lq, Lk]`` (1 = attend), or None.
            causal: add the decoder's lower-triangular rule.
            rule: a bool ``[B, 1, Lq, Lk]`` rule ANDed with the mask (the UniLM rule), or None.
        """
        keep = rule
        if mask is not None:
            given = mask.to(torch.bool)
            given = given[:, None, None, :] if given.dim() == 2 else given[:, None, :, :]
            keep = given if keep is None else keep & given
        if causal and q_len > 1:
            device = mask.device if mask is not None else self.device
            rows = torch.arange(q_len, device=device)[:, None] + (k_len - q_len)
            tri = torch.arange(k_len, device=device)[None, :] <= rows  # [Lq, Lk]
            keep = tri[None, None] if keep is None else keep & tri
        if keep is None:
            return None
        fill = mask_fill_value(str(dtype))
        return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, fill)

    def _head_mask(self, head_mask: torch.Tensor | None, dtype: torch.dtype) -> list[torch.Tensor | None]:
        layers, heads = self.config.num_hidden_layers, self.config.num_attention_heads
        if head_mask is None:
            return [None] * layers
        head_mask = torch.as_tensor(head_mask)
        if head_mask.shape not in ((heads,), (layers, heads)):
            raise ValueError(f"head_mask must have shape [{heads}] or [{layers}, {heads}], got {list(head_mask.shape)}")
        head_mask = head_mask.to(dtype=dtype, device=self.device).expand(layers, heads)
        return [m[None, :, None, None] for m in head_mask]  # each [1, H, 1, 1]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_values: PastKeyValues | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """Encode (or decode, when ``config.is_decoder``).

        Args:
            input_ids: ``[B, L]`` int token ids in ``[0, vocab_size)`` (or give ``inputs_embeds [B, L, E]``).
            attention_mask: ``[B, P + L]`` key padding mask (1 for tokens to attend to, 0 for padding) or an
                explicit ``[B, L, P + L]`` mask (1 where query i may attend key j); P is the cached length. With
                ``config.unilm`` it is combined with the UniLM rule of the token types, else, for decoders, with
                the causal rule.
            token_type_ids: ``[B, L]`` in ``[0, type_vocab_size)``; zeros by default. With ``config.unilm`` they
                are the segments of the UniLM rule (:func:`roformer_core.masks.unilm_mask`); the cached tokens
                all precede the new ones, so a cached step needs only the new tokens' types.
            head_mask: ``[H]`` or ``[num_layers, H]`` multipliers of the attention probabilities.
            encoder_hidden_states: ``[B, S, hidden]`` for cross-attention (decoders with add_cross_attention).
            encoder_attention_mask: ``[B, S]`` mask of the encoder states.
            past_key_values: the cache returned by a previous call (decoders only).
            use_cache: return the cache (decoders only; default ``config.use_cache``).
            output_attentions / output_hidden_states / return_dict: as in the reference.

        Returns:
            ``last_hidden_state [B, L, hidden]``, then ``pooler_output [B, hidden]`` (with a pooler),
            ``past_key_values``, ``hidden_states`` (num_layers + 1 of ``[B, L, hidden]``), ``attentions``
            (``[B, H, L, P + L]`` each) and ``cross_attentions`` when present.
        """
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        use_cache = (config.use_cache if use_cache is None else use_cache) and config.is_decoder
        if self.encoder.gradient_checkpointing and self.training:
            use_cache = False
        self._check_inputs(input_ids, inputs_embeds, token_type_ids)
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
        if len(shape) != 2:
            raise ValueError(f"input_ids must be [batch, length], got shape {list(shape)}")
        batch, length = shape
        if past_key_values is not None and hasattr(past_key_values, "to_legacy_cache"):
            past_key_values = past_key_values.to_legacy_cache()
        if past_key_values is not None and len(past_key_values) != config.num_hidden_layers:
            raise ValueError(
                f"past_key_values has {len(past_key_values)} layers, the model has {config.num_hidden_layers}"
            )
        past_length = past_key_values[0][0].shape[2] if past_key_values else 0
        if token_type_ids is not None and tuple(token_type_ids.shape) != (batch, length):
            raise ValueError(
                f"token_type_ids shape {list(token_type_ids.shape)} differs from input shape {[batch, length]}"
            )
        if attention_mask is not None and not _compiling():
            check_attention_mask(tuple(attention_mask.shape), batch, length, past_length)

        hidden = self.embeddings(input_ids, token_type_ids, inputs_embeds)
        if hasattr(self, "embeddings_project"):
            hidden = self.embeddings_project(hidden)
        dtype = hidden.dtype
        if config.unilm:  # the UniLM rule replaces the decoder's causal one; no types: one segment, bidirectional
            rule = None if token_type_ids is None else unilm_keep(token_type_ids.to(hidden.device), past_length)
            bias = self._attention_bias(attention_mask, length, past_length + length, False, dtype, rule)
        else:
            bias = self._attention_bias(attention_mask, length, past_length + length, config.is_decoder, dtype)
        cross_bias = None
        if encoder_hidden_states is not None and config.is_decoder:
            if encoder_attention_mask is not None:
                check_attention_mask(
                    tuple(encoder_attention_mask.shape),
                    batch,
                    encoder_hidden_states.shape[1],
                    0,
                    "encoder_attention_mask",
                )
                cross_bias = self._attention_bias(
                    encoder_attention_mask, length, encoder_hidden_states.shape[1], False, dtype
                )
        else:
            # the reference ignores encoder states given to an encoder
            encoder_hidden_states = None
        out = self.encoder(
            hidden,
            bias,
            self._head_mask(head_mask, dtype),
            encoder_hidden_states,
            cross_bias,
            past_key_values,
            use_cache,
            output_attentions,
            output_hidden_states,
        )
        if hasattr(self, "pooler"):
            out["pooler_output"] = self.pooler(out["last_hidden_state"])
        return self._finish(return_dict, **out)


def _base_kwargs(output_hidden_states: bool | None, output_attentions: bool | None) -> dict[str, Any]:
    return {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions, "return_dict": True}


def _passed_on(base: ModelOutput) -> dict[str, Any]:
    """The base model's outputs that a head returns unchanged (``pooler_output`` only with a pooler)."""
    return {"pooler_output": base.pooler_output, "hidden_states": base.hidden_states, "attentions": base.attentions}


class _LMModel(RoFormerPreTrainedModel):
    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__(config)
        self.roformer = RoFormerModel(config, _inside_head=True)
        self.cls = RoFormerOnlyMLMHead(config)
        self.post_init()

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings and hasattr(self, "cls"):
            self.cls.predictions.decoder.weight = self.roformer.embeddings.word_embeddings.weight
        if hasattr(self, "cls") and self.config.has_lm_transform:
            self.cls.predictions.decoder.bias = self.cls.predictions.bias

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder


class RoFormerForMaskedLM(_LMModel):
    """Masked language model: logits ``[B, L, V]``; loss over positions whose label is not -100."""

    head = MASKED_LM

    def __init__(self, config: RoFormerConfig) -> None:
        if config.is_decoder and not config.unilm:
            logger.warning("RoFormerForMaskedLM with is_decoder=True attends causally; set is_decoder=False")
        super().__init__(config)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """Args as :meth:`RoFormerModel.forward`; ``labels [B, L]`` in ``[0, V)`` or -100 (ignored)."""
        base = self.roformer(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            head_mask=head_mask,
            inputs_embeds=inputs_embeds,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            **_base_kwargs(output_hidden_states, output_attentions),
        )
        logits = self.cls(base.last_hidden_state)
        loss = None
        if labels is not None:
            loss = _class_loss(logits.view(-1, self.config.vocab_size), labels, self.head.name)
        return self._finish(return_dict, loss=loss, logits=logits, **_passed_on(base))


class RoFormerForCausalLM(GenerationMixin, _LMModel):
    """Causal language model (needs ``config.is_decoder=True``): next-token logits ``[B, L, V]`` and a KV cache."""

    head = CAUSAL_LM

    def __init__(self, config: RoFormerConfig) -> None:
        if not config.is_decoder:
            logger.warning("RoFormerForCausalLM with is_decoder=False is bidirectional; set is_decoder=True")
        super().__init__(config)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        cross_attn_head_mask: torch.Tensor | None = None,
        past_key_values: PastKeyValues | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """Args as :meth:`RoFormerModel.forward` (in the reference's order for this class).

        ``labels [B, L]``: the input ids themselves; position t is scored against label t + 1 (-100 ignored).
        ``cross_attn_head_mask`` is accepted and unused, as in the reference.
        """
        base = self.roformer(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            head_mask=head_mask,
            inputs_embeds=inputs_embeds,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
            **_base_kwargs(output_hidden_states, output_attentions),
        )
        logits = self.cls(base.last_hidden_state)
        loss = None
        if labels is not None:
            loss = _class_loss(logits[:, :-1].reshape(-1, self.config.vocab_size), labels[:, 1:], self.head.name)
        return self._finish(
            return_dict,
            loss=loss,
            logits=logits,
            past_key_values=base.past_key_values,
            **_passed_on(base),
            cross_attentions=base.cross_attentions,
        )


class RoFormerForSequenceClassification(RoFormerPreTrainedModel):
    """Sequence classification / regression from the first token: logits ``[B, num_labels]``."""

    head = SEQUENCE_CLASSIFICATION

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roformer = RoFormerModel(config, _inside_head=True)
        self.classifier = RoFormerClassificationHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """``labels``: ``[B]`` class ids (single-label), ``[B]`` floats (regression, num_labels == 1) or
        ``[B, num_labels]`` 0/1 floats (multi-label); the kind is ``config.problem_type`` or inferred (and stored
        in the config) on first use."""
        base = self.roformer(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            head_mask=head_mask,
            inputs_embeds=inputs_embeds,
            **_base_kwargs(output_hidden_states, output_attentions),
        )
        logits = self.classifier(base.last_hidden_state)
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            problem = losses.resolve_problem_type(
                self.config.problem_type, self.num_labels, not labels.dtype.is_floating_point
            )
            self.config.problem_type = problem
            if problem == losses.REGRESSION:
                loss = F.mse_loss(logits.squeeze().float(), labels.squeeze().float())
            elif problem == losses.SINGLE_LABEL:
                loss = _class_loss(logits.view(-1, self.num_labels), labels, self.head.name)
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return self._finish(return_dict, loss=loss, logits=logits, **_passed_on(base))


class RoFormerForMultipleChoice(RoFormerPreTrainedModel):
    """Multiple choice: inputs ``[B, C, L]``, logits ``[B, C]``.

    Like the reference, each choice is summarized by its **last** position (even when that is padding).
    """

    head = MULTIPLE_CHOICE

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__(config)
        self.roformer = RoFormerModel(config, _inside_head=True)
        self.classifier = Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """``input_ids``/``attention_mask``/``token_type_ids`` ``[B, C, L]`` (or ``inputs_embeds [B, C, L, E]``);
        ``labels [B]`` in ``[0, C)``."""
        ref = input_ids if input_ids is not None else inputs_embeds
        if ref is None:
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        expected = 3 if input_ids is not None else 4
        if ref.dim() != expected:
            raise ValueError(f"multiple-choice inputs must be [batch, choices, length], got shape {list(ref.shape)}")
        num_choices = ref.shape[1]

        def flat(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.reshape(-1, *x.shape[2:])

        base = self.roformer(
            flat(input_ids),
            attention_mask=flat(attention_mask),
            token_type_ids=flat(token_type_ids),
            head_mask=head_mask,
            inputs_embeds=flat(inputs_embeds),
            **_base_kwargs(output_hidden_states, output_attentions),
        )
        logits = self.classifier(base.last_hidden_state[:, -1]).view(-1, num_choices)
        loss = None
        if labels is not None:
            loss = _class_loss(logits, labels, self.head.name)
        return self._finish(return_dict, loss=loss, logits=logits, **_passed_on(base))


class RoFormerForTokenClassification(RoFormerPreTrainedModel):
    """Per-token classification: logits ``[B, L, num_labels]``."""

    head = TOKEN_CLASSIFICATION

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roformer = RoFormerModel(config, _inside_head=True)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """``labels [B, L]`` in ``[0, num_labels)`` or -100 (ignored; the attention mask does not filter)."""
        base = self.roformer(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            head_mask=head_mask,
            inputs_embeds=inputs_embeds,
            **_base_kwargs(output_hidden_states, output_attentions),
        )
        logits = self.classifier(self.dropout(base.last_hidden_state))
        loss = None
        if labels is not None:
            loss = _class_loss(logits.view(-1, self.num_labels), labels, self.head.name)
        return self._finish(return_dict, loss=loss, logits=logits, **_passed_on(base))


class RoFormerForQuestionAnswering(RoFormerPreTrainedModel):
    """Extractive QA: ``start_logits``, ``end_logits`` ``[B, L]``.

    Like the reference, the constructor sets ``config.num_labels = 2`` on the config it is given.
    """

    head = QUESTION_ANSWERING

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__(config)
        self.roformer = RoFormerModel(config, _inside_head=True)
        self.qa_outputs = Linear(config.hidden_size, 2)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """``start_positions``/``end_positions [B]``: answer span; positions outside ``[0, L)`` are ignored."""
        base = self.roformer(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            head_mask=head_mask,
            inputs_embeds=inputs_embeds,
            **_base_kwargs(output_hidden_states, output_attentions),
        )
        start_logits, end_logits = self.qa_outputs(base.last_hidden_state).unbind(dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = losses.qa_ignored_index(start_logits.shape[1])
            parts = []
            for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
                positions = positions.to(logits.device).reshape(-1).clamp(0, ignored)
                parts.append(F.cross_entropy(logits.float(), positions, ignore_index=ignored))
            loss = (parts[0] + parts[1]) / 2
        return self._finish(
            return_dict,
            loss=loss,
            start_logits=start_logits.contiguous(),
            end_logits=end_logits.contiguous(),
            **_passed_on(base),
        )
