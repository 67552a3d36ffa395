"""RoFormer in Flax (``flax.linen``): the bare model and the six heads, wrapped in model objects.

Each model class (``FlaxRoFormerModel``, ``FlaxRoFormerForMaskedLM``, ...) holds ``.config``, ``.module`` (the
``flax.linen`` module) and ``.params`` and is called like the reference's Flax models. The call is jit-compiled
and cached per input shape; it also works inside a user's own ``jax.jit`` / ``jax.pmap``.

The parameter tree is the reference's Flax tree (``roformer/encoder/layer/0/attention/self/query/kernel``),
extended with ``embeddings_project``, E-wide embeddings and LM transform, cross-attention and the causal LM, so
it maps 1:1 onto the canonical names of :mod:`roformer_core.schema` (kernels are the transposed ``[in, out]``
Linear weights). The building blocks (embeddings, attention, layers, encoder, head layers) are in
:mod:`roformer_flax.layers`; this module holds the head modules, the losses, the parameter-tree conversion and the
model classes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from roformer_core import losses
from roformer_core.checkpoint import load_checkpoint, save_checkpoint
from roformer_core.config import RoFormerConfig
from roformer_core.formats import flax_param_path
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
from roformer_core.rotary import sinusoidal_table
from roformer_core.schema import (
    INITIALIZERS,
    LINEAR,
    ROTARY_TABLE,
    WORD_EMBEDDINGS_KEY,
    model_schema,
    resize_vocab,
    resized_vocab_size,
    resolve_checkpoint,
    vocab_params,
    zeroed_row,
)
from roformer_core.validation import check_attention_mask, check_class_labels, check_id_range

from .generation import FlaxGenerationMixin
from .layers import (
    Array,
    FlaxRoFormerCache,
    FlaxRoFormerClassificationHead,
    FlaxRoFormerModule,
    FlaxRoFormerOnlyMLMHead,
    _dense,
)

logger = logging.getLogger(__name__)

Params = Mapping[str, Any]


def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _register_output_pytrees() -> None:
    """Make the core's output classes pytrees, so a jitted user function can return a whole model output."""

    def flatten(output: ModelOutput):
        return tuple(output.values()), tuple(output.keys())

    for cls in OUTPUT_CLASSES.values():

        def unflatten(keys, values, cls=cls):
            return cls(**dict(zip(keys, values)))

        with contextlib.suppress(ValueError):  # already registered (module re-import)
            jax.tree_util.register_pytree_node(cls, flatten, unflatten)


_register_output_pytrees()


# ---- head modules -----------------------------------------------------------------------------------------------


class _HeadModule(nn.Module):
    """A head module: the encoder under ``roformer`` plus the head's own layers."""

    config: RoFormerConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def _encoder(self) -> FlaxRoFormerModule:
        return FlaxRoFormerModule(
            self.config, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing, name="roformer"
        )


class FlaxRoFormerForMaskedLMModule(_HeadModule):
    def setup(self) -> None:
        self.roformer = self._encoder()
        self.cls = FlaxRoFormerOnlyMLMHead(self.config, dtype=self.dtype)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        base = self.roformer(*args, **kwargs)
        shared = None
        if self.config.tie_word_embeddings:
            shared = self.roformer.variables["params"]["embeddings"]["word_embeddings"]["embedding"]
        base["logits"] = self.cls(base.pop("last_hidden_state"), shared)
        return base


class FlaxRoFormerForCausalLMModule(FlaxRoFormerForMaskedLMModule):
    """Same layers and tree as the masked LM; causal when ``config.is_decoder``."""


class FlaxRoFormerForSequenceClassificationModule(_HeadModule):
    def setup(self) -> None:
        self.roformer = self._encoder()
        self.classifier = FlaxRoFormerClassificationHead(self.config, dtype=self.dtype)

    def __call__(self, *args: Any, deterministic: bool = True, **kwargs: Any) -> dict[str, Any]:
        base = self.roformer(*args, deterministic=deterministic, **kwargs)
        base["logits"] = self.classifier(base.pop("last_hidden_state"), deterministic=deterministic)
        return base


class FlaxRoFormerForMultipleChoiceModule(_HeadModule):
    """Inputs already flattened to ``[B * C, L]``; each choice is summarized by its last position (no dropout)."""

    def setup(self) -> None:
        self.roformer = self._encoder()
        self.classifier = _dense(self.config, 1, self.dtype)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        base = self.roformer(*args, **kwargs)
        base["logits"] = self.classifier(base.pop("last_hidden_state")[:, -1])  # [B * C, 1]
        return base


class FlaxRoFormerForTokenClassificationModule(_HeadModule):
    def setup(self) -> None:
        self.roformer = self._encoder()
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)
        self.classifier = _dense(self.config, self.config.num_labels, self.dtype)

    def __call__(self, *args: Any, deterministic: bool = True, **kwargs: Any) -> dict[str, Any]:
        base = self.roformer(*args, deterministic=deterministic, **kwargs)
        hidden = self.dropout(base.pop("last_hidden_state"), deterministic=deterministic)
        base["logits"] = self.classifier(hidden)
        return base


class FlaxRoFormerForQuestionAnsweringModule(_HeadModule):
    def setup(self) -> None:
        self.roformer = self._encoder()
        self.qa_outputs = _dense(self.config, 2, self.dtype)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        base = self.roformer(*args, **kwargs)
        logits = self.qa_outputs(base.pop("last_hidden_state"))
        base["start_logits"], base["end_logits"] = logits[..., 0], logits[..., 1]
        return base


# ---- losses (the rules of roformer_core.losses) -----------------------------------------------------------------


def _cross_entropy(logits: Array, labels: Array, ignore_index: int = losses.IGNORE_INDEX) -> Array:
    """Mean cross-entropy of ``logits [..., C]`` against int ``labels [...]`` over the labels != ``ignore_index``.

    Labels are checked before the jitted forward (``_check_labels``); inside it a label outside ``[0, C)`` makes the
    loss NaN (a negative one would otherwise silently pick a class from the end).
    """
    logits = logits.reshape(-1, logits.shape[-1]).astype(jnp.float32)
    labels = labels.reshape(-1)
    keep = labels != ignore_index
    valid = (labels >= 0) & (labels < logits.shape[-1])
    safe = jnp.where(keep & valid, labels, 0).astype(jnp.int32)
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.where(valid, jnp.take_along_axis(logp, safe[:, None], axis=-1)[:, 0], jnp.nan)
    return -jnp.sum(jnp.where(keep, picked, 0.0)) / jnp.sum(keep)


def _sequence_classification_loss(logits: Array, labels: Array, problem_type: str) -> Array:
    logits = logits.astype(jnp.float32)
    if problem_type == losses.REGRESSION:
        return jnp.mean((jnp.squeeze(logits) - jnp.squeeze(labels).astype(jnp.float32)) ** 2)
    if problem_type == losses.SINGLE_LABEL:
        return _cross_entropy(logits, labels)
    y = labels.astype(jnp.float32)
    return jnp.mean(jnp.maximum(logits, 0) - logits * y + jnp.log1p(jnp.exp(-jnp.abs(logits))))


def _qa_loss(start_logits: Array, end_logits: Array, start_positions: Array, end_positions: Array) -> Array:
    ignored = losses.qa_ignored_index(start_logits.shape[1])
    parts = []
    for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
        positions = jnp.clip(positions.reshape(-1), 0, ignored)
        parts.append(_cross_entropy(logits, positions, ignore_index=ignored))
    return (parts[0] + parts[1]) / 2


# ---- parameter tree <-> canonical names -------------------------------------------------------------------------


def params_from_canonical(
    config: RoFormerConfig, head: HeadSpec, arrays: Mapping[str, np.ndarray]
) -> dict[tuple[str, ...], np.ndarray]:
    """Flat Flax params (path -> float32 array) from canonical arrays; Linear weights are transposed to kernels."""
    out = {}
    for spec in model_schema(config, head):
        if not spec.stored or spec.kind == ROTARY_TABLE or spec.name not in arrays:
            continue
        value = np.asarray(arrays[spec.name], dtype=np.float32)
        out[flax_param_path(spec)] = value.T if spec.kind == LINEAR else value
    return out


def _fresh_params(
    config: RoFormerConfig, head: HeadSpec, names: Sequence[str], seed: int
) -> dict[tuple[str, ...], np.ndarray]:
    """Flat Flax params for the canonical ``names``, drawn by their schema kind (``INITIALIZERS``)."""
    specs = {spec.name: spec for spec in model_schema(config, head)}
    key = jax.random.PRNGKey(seed)
    out = {}
    for index, name in enumerate(names):
        spec = specs[name]
        shape = spec.shape[::-1] if spec.kind == LINEAR else spec.shape  # Flax kernels are [in, out]
        rule = INITIALIZERS[spec.kind]
        if rule == "normal":
            draw = jax.random.normal(jax.random.fold_in(key, index), shape, jnp.float32)
            value = np.array(draw) * np.float32(config.initializer_range)
            if (row := zeroed_row(spec, config)) is not None:
                value[row] = 0.0
        else:
            value = np.full(shape, 1.0 if rule == "ones" else 0.0, np.float32)
        out[flax_param_path(spec)] = value
    return out


def params_to_canonical(config: RoFormerConfig, head: HeadSpec, params: Params) -> dict[str, np.ndarray]:
    """The stored canonical state dict (float32 numpy, PyTorch layout) of a Flax parameter tree.

    The rotary table is written with ``max_position_embeddings`` rows, as the reference stores it.
    """
    flat = flatten_dict(jax.device_get(params))
    out = {}
    for spec in model_schema(config, head):
        if not spec.stored:
            continue
        if spec.kind == ROTARY_TABLE:
            out[spec.name] = sinusoidal_table(*spec.shape)
            continue
        value = np.asarray(flat[flax_param_path(spec)], dtype=np.float32)
        out[spec.name] = np.ascontiguousarray(value.T if spec.kind == LINEAR else value)
    return out


# ---- model objects ----------------------------------------------------------------------------------------------

# Flags that change the traced computation: the jitted forward is compiled per combination (and input shapes).
_STATIC = ("train", "output_attentions", "output_hidden_states", "problem_type", "past_length", "num_choices")


class FlaxRoFormerPreTrainedModel:
    """Shared construction, loading, saving, input checks and the jitted call of every Flax model class.

    Args:
        config: the model config (validated).
        input_shape: shape of the dummy input used to initialize the parameters.
        seed: seed of the random initialization.
        dtype: computation dtype (``jnp.float32`` or ``jnp.bfloat16``); parameters stay float32 and the rotary
            table float32 whatever this is.
        _do_init: initialize random parameters (False leaves ``params`` None, to be set by the caller).
        gradient_checkpointing: recompute each layer's activations in the backward pass (``nn.remat``).
    """

    module_class: type[nn.Module] = FlaxRoFormerModule
    head: HeadSpec = MODEL

    def __init__(
        self,
        config: RoFormerConfig,
        input_shape: tuple[int, ...] = (1, 1),
        seed: int = 0,
        dtype: Any = jnp.float32,
        _do_init: bool = True,
        gradient_checkpointing: bool = False,
    ) -> None:
        if not isinstance(config, RoFormerConfig):
            raise TypeError(f"config must be a RoFormerConfig, got {type(config).__name__}")
        self.head.adapt_config(config)
        config.validate()
        self.config = config
        self.dtype = jnp.dtype(dtype)
        self.input_shape = input_shape
        self._build_module(gradient_checkpointing)
        self.params = self.init_weights(jax.random.PRNGKey(seed), input_shape) if _do_init else None

    # -- module and jitted call ------------------------------------------------------------------------------
    def _build_module(self, gradient_checkpointing: bool) -> None:
        self.gradient_checkpointing = gradient_checkpointing
        self.module = self.module_class(
            config=self.config, dtype=self.dtype, gradient_checkpointing=gradient_checkpointing
        )
        self._jit_forward = jax.jit(self._forward, static_argnames=_STATIC)
        self._jit_generate = None  # traced from self.module on first use (generation.py)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each layer in the backward pass (``nn.remat``); the parameter tree is unchanged."""
        self._build_module(True)

    def disable_gradient_checkpointing(self) -> None:
        self._build_module(False)

    def _dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Array]:
        shape = input_shape[-2:] if self.head is MULTIPLE_CHOICE else input_shape
        inputs = {"input_ids": jnp.zeros(shape, jnp.int32)}
        if self.config.add_cross_attention:
            inputs["encoder_hidden_states"] = jnp.zeros((shape[0], 1, self.config.hidden_size), self.dtype)
        return inputs

    def init_weights(self, rng: Array, input_shape: tuple[int, ...] = (1, 1)) -> dict[str, Any]:
        """Random parameters (normal(initializer_range) weights, zero biases, unit LayerNorm scales)."""
        inputs = self._dummy_inputs(input_shape)
        params_rng, dropout_rng = jax.random.split(rng)
        init = jax.jit(lambda rngs, inputs: self.module.init(rngs, **inputs))
        return init({"params": params_rng, "dropout": dropout_rng}, inputs)["params"]

    def _forward(
        self,
        params: Params,
        inputs: dict[str, Array | None],
        targets: dict[str, Array],
        cache: FlaxRoFormerCache | None,
        dropout_rng: Array | None,
        *,
        train: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        problem_type: str | None,
        past_length: int | None,
        num_choices: int | None,
    ) -> dict[str, Any]:
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
        out = self.module.apply(
            {"params": params},
            **inputs,
            cache=cache,
            deterministic=not train,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            rngs=rngs,
        )
        if past_length is not None and out.get("attentions") is not None:
            # the cache buffers are longer than what is filled: report [B, H, L, P + L] like PyTorch
            queries = out["attentions"][0].shape[2]
            out["attentions"] = tuple(a[..., : past_length + queries] for a in out["attentions"])
        if num_choices is not None:
            out["logits"] = out["logits"].reshape(-1, num_choices)  # [B, C]
        if targets:
            out["loss"] = self._loss(out, targets, problem_type)
        return out

    def _loss(self, out: dict[str, Any], targets: dict[str, Array], problem_type: str | None) -> Array:
        raise NotImplementedError

    # -- calling ---------------------------------------------------------------------------------------------
    def _check_inputs(self, input_ids: Any, inputs_embeds: Any, token_type_ids: Any) -> None:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if input_ids is not None:
            if jnp.issubdtype(input_ids.dtype, jnp.floating):
                raise ValueError(f"input_ids must be integers, got {input_ids.dtype}")
            if not _is_traced(input_ids) and input_ids.size:
                ids = np.asarray(input_ids)
                check_id_range("input_ids", int(ids.min()), int(ids.max()), self.config)
        if token_type_ids is not None and not _is_traced(token_type_ids) and token_type_ids.size:
            types = np.asarray(token_type_ids)
            check_id_range("token_type_ids", int(types.min()), int(types.max()), self.config)

    def _head_mask(self, head_mask: Any) -> Array | None:
        layers, heads = self.config.num_hidden_layers, self.config.num_attention_heads
        if head_mask is None:
            return None
        head_mask = jnp.asarray(head_mask)
        if head_mask.shape not in ((heads,), (layers, heads)):
            raise ValueError(f"head_mask must have shape [{heads}] or [{layers}, {heads}], got {list(head_mask.shape)}")
        return jnp.broadcast_to(head_mask.astype(jnp.float32), (layers, heads))

    def _prepare_cache(
        self, past_key_values: FlaxRoFormerCache | None, use_cache: bool, batch: int, length: int, mask: Any
    ) -> tuple[FlaxRoFormerCache | None, int | None]:
        """The cache to run with (grown when the new tokens do not fit) and the cached length P if known."""
        if not use_cache:
            return None, None
        if past_key_values is None:
            return FlaxRoFormerCache.empty(self.config, batch, length, self.dtype), 0
        if not isinstance(past_key_values, FlaxRoFormerCache):
            raise TypeError(
                f"past_key_values must be the FlaxRoFormerCache a previous call returned, got {type(past_key_values)}"
            )
        if _is_traced(past_key_values.index):
            past = None if mask is None else mask.shape[-1] - length
        else:
            past = int(past_key_values.index)
        if past is not None and past + length > past_key_values.capacity:
            if _is_traced(past_key_values.keys[0]):
                raise ValueError(
                    f"the cache holds {past_key_values.capacity} positions, {past + length} are needed: create it "
                    "with init_cache(batch_size, max_length) large enough"
                )
            # grow in steps, so that decoding token by token recompiles rarely
            capacity = max(past + length, 2 * past_key_values.capacity)
            past_key_values = past_key_values.grown(capacity)
        return past_key_values, past

    def init_cache(self, batch_size: int, max_length: int) -> FlaxRoFormerCache:
        """An empty decoding cache for ``batch_size`` sequences of up to ``max_length`` positions."""
        return FlaxRoFormerCache.empty(self.config, batch_size, max_length, self.dtype)

    def _call(
        self,
        input_ids: Any,
        attention_mask: Any,
        token_type_ids: Any,
        head_mask: Any,
        inputs_embeds: Any,
        encoder_hidden_states: Any,
        encoder_attention_mask: Any,
        past_key_values: FlaxRoFormerCache | None,
        use_cache: bool | None,
        targets: dict[str, Any],
        params: Params | None,
        dropout_rng: Array | None,
        train: bool,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
        return_dict: bool | None,
        num_choices: int | None = None,
    ) -> ModelOutput | tuple:
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        use_cache = bool((config.use_cache if use_cache is None else use_cache) and config.is_decoder)
        input_ids = None if input_ids is None else jnp.asarray(input_ids)
        inputs_embeds = None if inputs_embeds is None else jnp.asarray(inputs_embeds)
        token_type_ids = None if token_type_ids is None else jnp.asarray(token_type_ids)
        attention_mask = None if attention_mask is None else jnp.asarray(attention_mask)
        self._check_inputs(input_ids, inputs_embeds, token_type_ids)
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
        if len(shape) != 2:
            raise ValueError(f"input_ids must be [batch, length], got shape {list(shape)}")
        batch, length = shape
        if token_type_ids is not None and tuple(token_type_ids.shape) != (batch, length):
            raise ValueError(
                f"token_type_ids shape {list(token_type_ids.shape)} differs from input shape {[batch, length]}"
            )
        if past_key_values is not None and not config.is_decoder:
            raise ValueError("past_key_values are only used by decoders (config.is_decoder=True)")
        cache, past = self._prepare_cache(past_key_values, use_cache, batch, length, attention_mask)
        if attention_mask is not None:
            check_attention_mask(tuple(attention_mask.shape), batch, length, past or 0)
        if cache is not None:
            # the mask covers the cache's capacity; unfilled slots are hidden by the causal mask
            if attention_mask is None:
                attention_mask = jnp.ones((batch, cache.capacity), jnp.int32)
            else:
                pad = [(0, 0)] * (attention_mask.ndim - 1) + [(0, cache.capacity - attention_mask.shape[-1])]
                attention_mask = jnp.pad(attention_mask.astype(jnp.int32), pad, constant_values=1)
        cross = encoder_hidden_states is not None and config.is_decoder
        if encoder_hidden_states is not None and config.is_decoder and not config.add_cross_attention:
            raise ValueError(
                "encoder_hidden_states were given to a decoder built without cross-attention: set "
                "add_cross_attention=True in the config"
            )
        if cross and encoder_attention_mask is not None:
            enc_len = encoder_hidden_states.shape[1]
            check_attention_mask(tuple(jnp.shape(encoder_attention_mask)), batch, enc_len, 0, "encoder_attention_mask")
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "head_mask": self._head_mask(head_mask),
            "inputs_embeds": inputs_embeds,
            "encoder_hidden_states": None if not cross else jnp.asarray(encoder_hidden_states),
            "encoder_attention_mask": None
            if not cross or encoder_attention_mask is None
            else jnp.asarray(encoder_attention_mask),
        }
        targets = {k: jnp.asarray(v) for k, v in targets.items() if v is not None}
        self._check_labels(targets.get("labels"), num_choices)
        problem_type = self._resolve_problem_type(targets)
        if train and dropout_rng is None and (config.hidden_dropout_prob or config.attention_probs_dropout_prob):
            raise ValueError("train=True needs a dropout_rng (a jax.random key)")
        out = self._jit_forward(
            self.params if params is None else params,
            inputs,
            targets,
            cache,
            dropout_rng if train else None,
            train=bool(train),
            output_attentions=bool(output_attentions),
            output_hidden_states=bool(output_hidden_states),
            problem_type=problem_type,
            # static only when attention maps are sliced, so token-by-token decoding reuses one compilation
            past_length=past if cache is not None and output_attentions else None,
            num_choices=num_choices,
        )
        if not use_cache:
            out["past_key_values"] = None
        fields = set(self.head.output_fields)
        output = output_class_for(self.head)(**{k: v for k, v in out.items() if k in fields})
        use_dict = config.return_dict if return_dict is None else return_dict
        return output if use_dict else output.to_tuple()

    def _resolve_problem_type(self, targets: dict[str, Array]) -> str | None:
        return None

    def _check_labels(self, labels: Array | None, num_choices: int | None) -> None:
        """Concrete class labels must lie in ``[0, classes)`` or be -100 (``losses.class_label_limit``,
        ``validation.check_class_labels``); traced ones are left to the loss (NaN when out of range)."""
        if labels is None or _is_traced(labels) or not labels.size:
            return
        integer = not jnp.issubdtype(labels.dtype, jnp.floating)
        limit = losses.class_label_limit(self.head.name, self.config, integer, num_choices)
        values = losses.scored_labels(self.head.name, np.asarray(labels))
        if limit is None or not values.size:
            return
        as_index = np.where(values == losses.IGNORE_INDEX, 0, values)
        check_class_labels("labels", int(as_index.min()), int(as_index.max()), *limit)

    # -- state -----------------------------------------------------------------------------------------------
    def canonical_state_dict(self) -> dict[str, np.ndarray]:
        """The stored (untied) parameters as float32 numpy arrays under their canonical (PyTorch) names."""
        return params_to_canonical(self.config, self.head, self.params)

    def save_pretrained(self, save_directory: str | os.PathLike, params: Params | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (canonical names, atomically) that every port loads."""
        config = self.config.copy()
        config.extra["architectures"] = [self.head.class_name]
        config.extra["torch_dtype"] = "float32"
        state = params_to_canonical(self.config, self.head, self.params if params is None else params)
        return save_checkpoint(save_directory, config, state)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_path: str | os.PathLike,
        *,
        config: RoFormerConfig | None = None,
        dtype: Any = jnp.float32,
        seed: int = 0,
        **config_overrides: Any,
    ):
        """Load a checkpoint directory written by the reference or by any of our ports.

        Reads what :func:`roformer_core.checkpoint.load_checkpoint` reads (``model.safetensors``, sharded
        safetensors, ``pytorch_model.bin`` with ``weights_only``, the reference's ``flax_model.msgpack``).
        Weights of another head are skipped and this head's missing weights freshly initialized (with a
        warning); anything else that does not fit is reported, every parameter by name, at once.

        Args:
            pretrained_path: checkpoint directory, or a hub id (``"junnyu/roformer_chinese_base"``;
                ``revision``, ``cache_dir``, ``local_files_only``, ``token`` go to the hub, docs/hub.md).
            config: use this config instead of the directory's ``config.json``.
            dtype: computation dtype.
            seed: seed for the parameters that are newly initialized.
            **config_overrides: config fields to change (``max_position_embeddings=4096``, ``num_labels=5``).
        """
        file_config, state = load_checkpoint(pretrained_path, framework="flax", **config_overrides)
        return cls.from_state_dict(config or file_config, state, dtype=dtype, seed=seed, source=str(pretrained_path))

    @classmethod
    def from_state_dict(
        cls,
        config: RoFormerConfig,
        state: Mapping[str, np.ndarray],
        dtype: Any = jnp.float32,
        seed: int = 0,
        source: str = "",
    ):
        """Build this class from a canonical state dict, checked against the schema (see :meth:`from_pretrained`)."""
        model = cls(config, seed=seed, dtype=dtype, _do_init=False)
        plan = resolve_checkpoint(model.config, cls.head, state, source=source)
        flat = params_from_canonical(model.config, cls.head, plan.arrays)
        if plan.newly_initialized:
            logger.warning(
                "%s: weights not in the checkpoint, newly initialized: %s",
                cls.__name__,
                ", ".join(plan.newly_initialized),
            )
            # only what the checkpoint lacks is drawn (a full init of the base model took seconds)
            flat.update(_fresh_params(model.config, cls.head, plan.newly_initialized, seed))
        if plan.ignored:
            logger.warning("%s: checkpoint weights not used by this class: %s", cls.__name__, ", ".join(plan.ignored))
        model.params = jax.tree_util.tree_map(jnp.asarray, unflatten_dict(flat))
        return model

    # -- vocabulary (roformer_core.schema.vocab_params / resize_vocab) -------------------------------------------
    def _word_embeddings_path(self) -> tuple[str, ...]:
        name = self.head.prefix + WORD_EMBEDDINGS_KEY
        return flax_param_path(next(spec for spec in vocab_params(self.config, self.head) if spec.name == name))

    def get_input_embeddings(self) -> Array:
        """The word embeddings ``[V, E]``: Flax keeps weights in ``params``, so this is the array at
        ``params[...]["embeddings"]["word_embeddings"]["embedding"]`` (also the LM decoder weight when tied)."""
        node = self.params
        for key in self._word_embeddings_path():
            node = node[key]
        return node

    def set_input_embeddings(self, value: Any) -> None:
        """Put new word embeddings ``[V, E]`` of the current shape into ``params`` (a new tree);
        :meth:`resize_token_embeddings` changes ``V``."""
        flat = flatten_dict(self.params)
        path = self._word_embeddings_path()
        if tuple(jnp.shape(value)) != flat[path].shape:
            raise ValueError(
                f"set_input_embeddings takes an array of shape {list(flat[path].shape)}, got {list(jnp.shape(value))}; "
                "use resize_token_embeddings(new_num_tokens) to change the vocabulary size"
            )
        flat[path] = jnp.asarray(value, flat[path].dtype)
        self.params = unflatten_dict(flat)

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, *, seed: int = 0
    ) -> Array:
        """Grow or shrink the vocabulary to ``new_num_tokens`` (rounded up to ``pad_to_multiple_of``), as
        transformers does: old rows are kept, new embedding (and untied decoder) rows drawn from
        N(0, initializer_range**2), new LM bias entries zero, ``config.vocab_size`` updated; ``params`` becomes a
        new tree (build a new optimizer state for it).

        Args:
            new_num_tokens: the new vocabulary size ``V`` (e.g. ``len(tokenizer)``); None keeps it.
            pad_to_multiple_of: round ``V`` up to a multiple of this.
            seed: seeds the new rows (the same seed draws the same rows in every framework).

        Returns:
            the new word embeddings ``[V, E]``.
        """
        size = resized_vocab_size(self.config.vocab_size, new_num_tokens, pad_to_multiple_of)
        if size == self.config.vocab_size:
            return self.get_input_embeddings()
        flat = flatten_dict(self.params)
        paths = {spec.name: flax_param_path(spec) for spec in vocab_params(self.config, self.head)}
        # Flax kernels are [in, out]: an untied decoder is stored as [E, V] (a transpose is its own inverse)
        flip = {spec.name for spec in vocab_params(self.config, self.head) if spec.kind == LINEAR}
        arrays = {name: np.asarray(flat[path]) for name, path in paths.items()}
        arrays = {name: array.T if name in flip else array for name, array in arrays.items()}
        for name, array in resize_vocab(self.config, self.head, arrays, size, seed).items():
            flat[paths[name]] = jnp.asarray(array.T if name in flip else array)
        self.config.vocab_size = size
        self.params = unflatten_dict(flat)
        self._build_module(self.gradient_checkpointing)  # the module's shapes come from the config
        return self.get_input_embeddings()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype.name}, config={self.config.to_dict()})"


def _call_doc(extra: str = "") -> str:
    return f"""Run the model (jit-compiled, cached per input shape and flags).

        Args:
            input_ids: ``[B, L]`` int ids in ``[0, vocab_size)`` (or ``inputs_embeds [B, L, E]``).
            attention_mask: ``[B, P + L]`` (or ``[B, L, P + L]``) 1 = attend, 0 = padding; ``P`` = cached length.
            token_type_ids: ``[B, L]`` in ``[0, type_vocab_size)``; zeros by default.
            head_mask: ``[H]`` or ``[num_layers, H]`` float multipliers of the attention probabilities.
            params: parameters to use instead of ``self.params`` (e.g. inside a train step).
            dropout_rng: ``jax.random`` key for dropout (needed with ``train=True``).
            train: enable dropout.
            output_attentions / output_hidden_states / return_dict: as in the reference.{extra}

        Returns:
            the head's output class (a :class:`roformer_core.ModelOutput`, fields as in PyTorch) or its tuple.
        """


class FlaxRoFormerModel(FlaxRoFormerPreTrainedModel):
    """The bare RoFormer encoder (or decoder when ``config.is_decoder``): outputs the final hidden states."""

    module_class = FlaxRoFormerModule
    head = MODEL

    def __init__(
        self, config: RoFormerConfig, *args: Any, add_pooling_layer: bool | None = None, **kwargs: Any
    ) -> None:
        """As :class:`FlaxRoFormerPreTrainedModel`; ``add_pooling_layer`` (the reference's constructor argument)
        overrides ``config.add_pooling_layer`` on a copy of the config: with a pooler the output gains
        ``pooler_output [B, hidden]``."""
        if add_pooling_layer is not None:
            if not isinstance(add_pooling_layer, bool):
                raise TypeError(f"add_pooling_layer must be True or False, got {add_pooling_layer!r}")
            config = config.copy(add_pooling_layer=add_pooling_layer)
        super().__init__(config, *args, **kwargs)

    def __call__(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        params: Params | None = None,
        dropout_rng: Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        inputs_embeds: Any = None,
        encoder_hidden_states: Any = None,
        encoder_attention_mask: Any = None,
        past_key_values: FlaxRoFormerCache | None = None,
        use_cache: bool | None = None,
    ) -> ModelOutput | tuple:
        return self._call(
            input_ids,
            attention_mask,
            token_type_ids,
            head_mask,
            inputs_embeds,
            encoder_hidden_states,
            encoder_attention_mask,
            past_key_values,
            use_cache,
            {},
            params,
            dropout_rng,
            train,
            output_attentions,
            output_hidden_states,
            return_dict,
        )

    __call__.__doc__ = _call_doc(
        """
            inputs_embeds: ``[B, L, E]`` instead of ``input_ids``.
            encoder_hidden_states / encoder_attention_mask: ``[B, S, hidden]`` / ``[B, S]`` (decoders with
                cross-attention).
            past_key_values: the :class:`FlaxRoFormerCache` of a previous call (decoders).
            use_cache: return the cache (decoders; default ``config.use_cache``)."""
    )


class _EncoderHeadModel(FlaxRoFormerPreTrainedModel):
    """Heads called as ``model(input_ids, ..., labels=...)`` (no cache)."""

    def __call__(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        params: Params | None = None,
        dropout_rng: Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        inputs_embeds: Any = None,
        labels: Any = None,
    ) -> ModelOutput | tuple:
        return self._call(
            input_ids,
            attention_mask,
            token_type_ids,
            head_mask,
            inputs_embeds,
            None,
            None,
            None,
            False,
            {"labels": labels},
            params,
            dropout_rng,
            train,
            output_attentions,
            output_hidden_states,
            return_dict,
        )

    __call__.__doc__ = _call_doc(
        """
            inputs_embeds: ``[B, L, E]`` instead of ``input_ids``.
            labels: targets (see the class docstring); when given the output has ``loss``."""
    )


class FlaxRoFormerForMaskedLM(FlaxRoFormerPreTrainedModel):
    """Masked language model: logits ``[B, L, V]``; ``labels [B, L]`` (-100 ignored) give the mean CE ``loss``."""

    module_class = FlaxRoFormerForMaskedLMModule
    head = MASKED_LM

    def __init__(self, config: RoFormerConfig, *args: Any, **kwargs: Any) -> None:
        if config.is_decoder and not config.unilm:  # the UniLM rule replaces the causal one
            logger.warning("FlaxRoFormerForMaskedLM with is_decoder=True attends causally; set is_decoder=False")
        super().__init__(config, *args, **kwargs)

    def __call__(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        params: Params | None = None,
        dropout_rng: Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        inputs_embeds: Any = None,
        encoder_hidden_states: Any = None,
        encoder_attention_mask: Any = None,
        labels: Any = None,
    ) -> ModelOutput | tuple:
        return self._call(
            input_ids,
            attention_mask,
            token_type_ids,
            head_mask,
            inputs_embeds,
            encoder_hidden_states,
            encoder_attention_mask,
            None,
            False,
            {"labels": labels},
            params,
            dropout_rng,
            train,
            output_attentions,
            output_hidden_states,
            return_dict,
        )

    __call__.__doc__ = _call_doc(
        """
            inputs_embeds: ``[B, L, E]`` instead of ``input_ids``.
            labels: ``[B, L]`` in ``[0, V)`` or -100 (ignored)."""
    )

    def _loss(self, out: dict[str, Any], targets: dict[str, Array], problem_type: str | None) -> Array:
        return _cross_entropy(out["logits"], targets["labels"])


class FlaxRoFormerForCausalLM(FlaxGenerationMixin, FlaxRoFormerPreTrainedModel):
    """Causal language model (needs ``config.is_decoder=True``): logits ``[B, L, V]``, a decoding cache, ``generate``.

    The reference's Flax port has no causal LM; this one has the PyTorch class's behaviour and parameters (the
    same tree as the masked LM).
    """

    module_class = FlaxRoFormerForCausalLMModule
    head = CAUSAL_LM

    def __init__(self, config: RoFormerConfig, *args: Any, **kwargs: Any) -> None:
        if not config.is_decoder:
            logger.warning("FlaxRoFormerForCausalLM with is_decoder=False is bidirectional; set is_decoder=True")
        super().__init__(config, *args, **kwargs)

    def __call__(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        params: Params | None = None,
        dropout_rng: Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        inputs_embeds: Any = None,
        encoder_hidden_states: Any = None,
        encoder_attention_mask: Any = None,
        past_key_values: FlaxRoFormerCache | None = None,
        use_cache: bool | None = None,
        labels: Any = None,
    ) -> ModelOutput | tuple:
        return self._call(
            input_ids,
            attention_mask,
            token_type_ids,
            head_mask,
            inputs_embeds,
            encoder_hidden_states,
            encoder_attention_mask,
            past_key_values,
            use_cache,
            {"labels": labels},
            params,
            dropout_rng,
            train,
            output_attentions,
            output_hidden_states,
            return_dict,
        )

    __call__.__doc__ = _call_doc(
        """
            inputs_embeds: ``[B, L, E]`` instead of ``input_ids``.
            encoder_hidden_states / encoder_attention_mask: ``[B, S, hidden]`` / ``[B, S]`` (cross-attention).
            past_key_values: the :class:`FlaxRoFormerCache` of a previous call.
            use_cache: return the cache (default ``config.use_cache``).
            labels: ``[B, L]``, the input ids themselves: position t is scored against label t + 1 (-100 ignored)."""
    )

    def _loss(self, out: dict[str, Any], targets: dict[str, Array], problem_type: str | None) -> Array:
        return _cross_entropy(out["logits"][:, :-1], targets["labels"][:, 1:])


class FlaxRoFormerForSequenceClassification(_EncoderHeadModel):
    """Sequence classification / regression from the first token: logits ``[B, num_labels]``.

    ``labels``: ``[B]`` class ids (single-label), ``[B]`` floats (regression, num_labels == 1) or
    ``[B, num_labels]`` 0/1 floats (multi-label); the kind is ``config.problem_type`` or inferred (and stored in
    the config) on first use, as in the reference.
    """

    module_class = FlaxRoFormerForSequenceClassificationModule
    head = SEQUENCE_CLASSIFICATION

    def _resolve_problem_type(self, targets: dict[str, Array]) -> str | None:
        if "labels" not in targets:
            return None
        labels = targets["labels"]
        problem = losses.resolve_problem_type(
            self.config.problem_type, self.config.num_labels, not jnp.issubdtype(labels.dtype, jnp.floating)
        )
        self.config.problem_type = problem
        return problem

    def _loss(self, out: dict[str, Any], targets: dict[str, Array], problem_type: str | None) -> Array:
        return _sequence_classification_loss(out["logits"], targets["labels"], problem_type)


class FlaxRoFormerForMultipleChoice(_EncoderHeadModel):
    """Multiple choice: inputs ``[B, C, L]`` (or ``inputs_embeds [B, C, L, E]``), logits ``[B, C]``, ``labels [B]``.

    Like the reference, each choice is summarized by its **last** position (even when that is padding).
    """

    module_class = FlaxRoFormerForMultipleChoiceModule
    head = MULTIPLE_CHOICE

    def __init__(self, config: RoFormerConfig, input_shape: tuple[int, ...] = (1, 1, 1), **kwargs: Any) -> None:
        super().__init__(config, input_shape, **kwargs)

    def __call__(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        params: Params | None = None,
        dropout_rng: Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        inputs_embeds: Any = None,
        labels: Any = None,
    ) -> ModelOutput | tuple:
        ref = input_ids if input_ids is not None else inputs_embeds
        if ref is None:
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        expected = 3 if input_ids is not None else 4
        if jnp.ndim(ref) != expected:
            raise ValueError(f"multiple-choice inputs must be [batch, choices, length], got shape {list(ref.shape)}")

        def flat(x: Any) -> Any:
            return None if x is None else jnp.reshape(jnp.asarray(x), (-1, *jnp.shape(x)[2:]))

        return self._call(
            flat(input_ids),
            flat(attention_mask),
            flat(token_type_ids),
            head_mask,
            flat(inputs_embeds),
            None,
            None,
            None,
            False,
            {"labels": labels},
            params,
            dropout_rng,
            train,
            output_attentions,
            output_hidden_states,
            return_dict,
            num_choices=jnp.shape(ref)[1],
        )

    __call__.__doc__ = _call_doc(
        """
            input_ids / attention_mask / token_type_ids: ``[B, C, L]`` (flattened to ``[B * C, L]`` inside).
            inputs_embeds: ``[B, C, L, E]`` instead of ``input_ids``.
            labels: ``[B]`` in ``[0, C)``."""
    )

    def _loss(self, out: dict[str, Any], targets: dict[str, Array], problem_type: str | None) -> Array:
        return _cross_entropy(out["logits"], targets["labels"])


class FlaxRoFormerForTokenClassification(_EncoderHeadModel):
    """Per-token classification: logits ``[B, L, num_labels]``; ``labels [B, L]`` (-100 ignored)."""

    module_class = FlaxRoFormerForTokenClassificationModule
    head = TOKEN_CLASSIFICATION

    def _loss(self, out: dict[str, Any], targets: dict[str, Array], problem_type: str | None) -> Array:
        return _cross_entropy(out["logits"], targets["labels"])


class FlaxRoFormerForQuestionAnswering(FlaxRoFormerPreTrainedModel):
    """Extractive QA: ``start_logits``, ``end_logits`` ``[B, L]``; positions outside ``[0, L)`` are ignored.

    Like the reference, the constructor sets ``config.num_labels = 2`` on the config it is given.
    """

    module_class = FlaxRoFormerForQuestionAnsweringModule
    head = QUESTION_ANSWERING

    def __call__(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        head_mask: Any = None,
        params: Params | None = None,
        dropout_rng: Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        inputs_embeds: Any = None,
        start_positions: Any = None,
        end_positions: Any = None,
    ) -> ModelOutput | tuple:
        targets = {}
        if start_positions is not None and end_positions is not None:
            targets = {"start_positions": start_positions, "end_positions": end_positions}
        return self._call(
            input_ids,
            attention_mask,
            token_type_ids,
            head_mask,
            inputs_embeds,
            None,
            None,
            None,
            False,
            targets,
            params,
            dropout_rng,
            train,
            output_attentions,
            output_hidden_states,
            return_dict,
        )

    __call__.__doc__ = _call_doc(
        """
            inputs_embeds: ``[B, L, E]`` instead of ``input_ids``.
            start_positions / end_positions: ``[B]`` answer span; both needed for ``loss``."""
    )

    def _loss(self, out: dict[str, Any], targets: dict[str, Array], problem_type: str | None) -> Array:
        return _qa_loss(out["start_logits"], out["end_logits"], targets["start_positions"], targets["end_positions"])
