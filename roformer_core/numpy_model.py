"""A float64 numpy forward pass of every model class: the executable spec the ports are tested against.

No dropout, no cache: this is the full-sequence computation that cached decoding must reproduce. Parameters are a
canonical state dict (see :mod:`roformer_core.schema`). The RoFormer family members (V2's weightless RMS norm,
bias-free dense layers and tied-only LM head; Sim's pooler and UniLM attention) are the same building blocks
driven by the config's family fields (docs/variants.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import losses
from .activations import ACTIVATIONS
from .config import RoFormerConfig
from .constants import mask_fill_value
from .heads import HeadSpec, get_head
from .masks import causal_mask, unilm_mask
from .rotary import apply_rotary, sinusoidal_table
from .schema import POOLER, model_schema, untie


def _linear(params: Mapping[str, np.ndarray], name: str, x: np.ndarray, bias: bool = True) -> np.ndarray:
    out = x @ params[f"{name}.weight"].T
    return out + params[f"{name}.bias"] if bias else out


def _layer_norm(params: Mapping[str, np.ndarray], name: str, x: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * params[f"{name}.weight"] + params[f"{name}.bias"]


def _norm(params: Mapping[str, np.ndarray], name: str, x: np.ndarray, config: RoFormerConfig) -> np.ndarray:
    """An encoder norm: LayerNorm, or RoFormer-V2's ``x / sqrt(mean(x^2) + eps)`` (no centring, no weights)."""
    if config.norm_type == "layer_norm":
        return _layer_norm(params, name, x, config.layer_norm_eps)
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + config.layer_norm_eps)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def extended_attention_bias(mask: np.ndarray | None, batch: int, q_len: int, k_len: int, causal: bool) -> np.ndarray:
    """Additive bias ``[B, 1, Lq, Lk]`` from a 2-D ``[B, Lk]`` or 3-D ``[B, Lq, Lk]`` 0/1 mask (float64)."""
    keep = np.ones((batch, 1, q_len, k_len)) if mask is None else np.asarray(mask, dtype=np.float64)
    if keep.ndim == 2:
        keep = keep[:, None, None, :]
    elif keep.ndim == 3:
        keep = keep[:, None, :, :]
    if causal:
        keep = keep * causal_mask(q_len, k_len)[None, None]
    return (1.0 - keep) * mask_fill_value("float64")


def _self_attention_bias(
    config: RoFormerConfig, attention_mask: np.ndarray | None, token_type_ids: np.ndarray, batch: int, length: int
) -> np.ndarray:
    """The self-attention bias ``[B, 1, L, L]``: with ``config.unilm`` the UniLM rule of the token types (instead
    of the decoder's causal rule) AND the given mask (a 2-D padding mask or a 3-D one); else the given mask, causal
    when ``config.is_decoder``."""
    if not config.unilm:
        return extended_attention_bias(attention_mask, batch, length, length, causal=config.is_decoder)
    keep = unilm_mask(token_type_ids)
    if attention_mask is not None:
        given = np.asarray(attention_mask)
        keep = keep * (given[:, None, :] if given.ndim == 2 else given)
    return extended_attention_bias(keep, batch, length, length, causal=False)


def _attention(
    params: Mapping[str, np.ndarray],
    name: str,
    config: RoFormerConfig,
    hidden: np.ndarray,
    bias: np.ndarray,
    layer_head_mask: np.ndarray | None,
    table: np.ndarray | None,
    kv_source: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    B, L, _ = hidden.shape
    H, D = config.num_attention_heads, config.head_dim
    source = hidden if kv_source is None else kv_source

    def split(x: np.ndarray) -> np.ndarray:
        return x.reshape(B, -1, H, D).transpose(0, 2, 1, 3)  # [B, H, L, D]

    q = split(_linear(params, f"{name}.self.query", hidden, config.use_bias))
    k = split(_linear(params, f"{name}.self.key", source, config.use_bias))
    v = split(_linear(params, f"{name}.self.value", source, config.use_bias))
    if table is not None:
        q, k = apply_rotary(q, table), apply_rotary(k, table)
        if config.rotary_value:
            v = apply_rotary(v, table)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D) + bias
    probs = _softmax(scores)
    if layer_head_mask is not None:
        probs = probs * layer_head_mask
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(B, L, H * D)
    attended = _linear(params, f"{name}.output.dense", context, config.use_bias)
    return _norm(params, f"{name}.output.LayerNorm", attended + hidden, config), probs


def _head_mask_per_layer(head_mask: np.ndarray | None, config: RoFormerConfig) -> list[np.ndarray | None]:
    if head_mask is None:
        return [None] * config.num_hidden_layers
    head_mask = np.asarray(head_mask, dtype=np.float64)
    if head_mask.ndim == 1:
        head_mask = np.broadcast_to(head_mask, (config.num_hidden_layers, config.num_attention_heads))
    return [m[None, :, None, None] for m in head_mask]


def encoder_forward(
    params: Mapping[str, np.ndarray],
    config: RoFormerConfig,
    input_ids: np.ndarray | None = None,
    attention_mask: np.ndarray | None = None,
    token_type_ids: np.ndarray | None = None,
    head_mask: np.ndarray | None = None,
    inputs_embeds: np.ndarray | None = None,
    encoder_hidden_states: np.ndarray | None = None,
    encoder_attention_mask: np.ndarray | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """The bare model.

    Returns:
        ``last_hidden_state [B, L, hidden]``, ``hidden_states`` (num_layers + 1 of them), ``attentions``
        (``[B, H, L, L]`` each), with ``config.add_pooling_layer`` ``pooler_output [B, hidden]``
        (``pooler_activation(dense(last_hidden_state[:, 0]))``) and, with cross-attention, ``cross_attentions``.
    """
    p = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
    if inputs_embeds is None:
        embeds = p["embeddings.word_embeddings.weight"][np.asarray(input_ids)]
    else:
        embeds = np.asarray(inputs_embeds, dtype=np.float64)
    B, L = embeds.shape[:2]
    types = np.zeros((B, L), dtype=np.int64) if token_type_ids is None else np.asarray(token_type_ids)
    x = embeds + p["embeddings.token_type_embeddings.weight"][types]
    x = _norm(p, "embeddings.LayerNorm", x, config)
    if config.has_embeddings_project:
        x = _linear(p, "embeddings_project", x)
    table = sinusoidal_table(L, config.head_dim, np.float64)
    bias = _self_attention_bias(config, attention_mask, types, B, L)
    cross_bias = None
    if config.add_cross_attention and encoder_hidden_states is not None:
        S = encoder_hidden_states.shape[1]
        cross_bias = extended_attention_bias(encoder_attention_mask, B, L, S, causal=False)
    hidden_states, attentions, cross_attentions = [x], [], []
    for n, layer_head_mask in enumerate(_head_mask_per_layer(head_mask, config)):
        layer = f"encoder.layer.{n}"
        x, probs = _attention(p, f"{layer}.attention", config, x, bias, layer_head_mask, table)
        attentions.append(probs)
        if cross_bias is not None:
            x, cross_probs = _attention(
                p, f"{layer}.crossattention", config, x, cross_bias, layer_head_mask, None, encoder_hidden_states
            )
            cross_attentions.append(cross_probs)
        inner = ACTIVATIONS[config.hidden_act](_linear(p, f"{layer}.intermediate.dense", x, config.use_bias))
        x = _norm(
            p, f"{layer}.output.LayerNorm", _linear(p, f"{layer}.output.dense", inner, config.use_bias) + x, config
        )
        hidden_states.append(x)
    out: dict[str, Any] = {"last_hidden_state": x, "hidden_states": hidden_states, "attentions": attentions}
    if config.add_pooling_layer:
        out["pooler_output"] = ACTIVATIONS[config.pooler_activation](_linear(p, POOLER, x[:, 0]))
    if cross_attentions:
        out["cross_attentions"] = cross_attentions
    return out


def forward(
    config: RoFormerConfig,
    params: Mapping[str, np.ndarray],
    head: HeadSpec | str,
    labels: np.ndarray | None = None,
    start_positions: np.ndarray | None = None,
    end_positions: np.ndarray | None = None,
    **inputs: Any,
) -> dict[str, Any]:
    """Run one model class in float64.

    Args:
        config: the model config.
        params: canonical state dict (tied copies optional).
        head: which model class.
        labels / start_positions / end_positions: targets; when given the result has ``loss``.
        **inputs: ``input_ids [B, L]`` (``[B, C, L]`` for multiple choice), ``attention_mask``,
            ``token_type_ids``, ``head_mask``, ``inputs_embeds``, ``encoder_hidden_states``,
            ``encoder_attention_mask``.

    Returns:
        a dict with the head's output fields (``logits``, ``start_logits``/``end_logits`` or
        ``last_hidden_state``), ``hidden_states``, ``attentions``, ``pooler_output`` when the config has a pooler
        and ``loss`` when targets are given.
    """
    head = get_head(head) if isinstance(head, str) else head
    params = {k: np.asarray(v, dtype=np.float64) for k, v in untie(model_schema(config, head), params).items()}
    act = ACTIVATIONS[config.hidden_act]
    num_choices = None
    if head.name == "multiple_choice":
        ref = inputs.get("input_ids") if inputs.get("input_ids") is not None else inputs["inputs_embeds"]
        num_choices = ref.shape[1]
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            if inputs.get(key) is not None:
                inputs[key] = np.asarray(inputs[key]).reshape(-1, inputs[key].shape[-1])
        if inputs.get("inputs_embeds") is not None:
            e = inputs["inputs_embeds"]
            inputs["inputs_embeds"] = e.reshape(-1, e.shape[-2], e.shape[-1])
    base = encoder_forward(params, config, prefix=head.prefix, **inputs)
    seq = base["last_hidden_state"]
    out = dict(base)
    if head.name == "model":
        return out
    del out["last_hidden_state"]
    if head.name in ("masked_lm", "causal_lm"):
        if config.has_lm_transform:
            t = act(_linear(params, "cls.predictions.transform.dense", seq))
            t = _layer_norm(params, "cls.predictions.transform.LayerNorm", t, config.layer_norm_eps)
            logits = t @ params["cls.predictions.decoder.weight"].T + params["cls.predictions.bias"]
        else:
            logits = seq @ params["cls.predictions.decoder.weight"].T
        out["logits"] = logits
        if labels is not None:
            rule = losses.masked_lm_loss if head.name == "masked_lm" else losses.causal_lm_loss
            out["loss"] = rule(logits, labels)
    elif head.name == "sequence_classification":
        logits = _linear(params, "classifier.out_proj", act(_linear(params, "classifier.dense", seq[:, 0])))
        out["logits"] = logits
        if labels is not None:
            labels = np.asarray(labels)
            problem = losses.resolve_problem_type(
                config.problem_type, config.num_labels, np.issubdtype(labels.dtype, np.integer)
            )
            out["loss"] = losses.sequence_classification_loss(logits, labels, problem)
    elif head.name == "multiple_choice":
        logits = _linear(params, "classifier", seq[:, -1]).reshape(-1, num_choices)
        out["logits"] = logits
        if labels is not None:
            out["loss"] = losses.multiple_choice_loss(logits, labels)
    elif head.name == "token_classification":
        logits = _linear(params, "classifier", seq)
        out["logits"] = logits
        if labels is not None:
            out["loss"] = losses.token_classification_loss(logits, labels)
    elif head.name == "question_answering":
        logits = _linear(params, "qa_outputs", seq)
        out["start_logits"], out["end_logits"] = logits[..., 0], logits[..., 1]
        if start_positions is not None and end_positions is not None:
            out["loss"] = losses.question_answering_loss(
                out["start_logits"], out["end_logits"], start_positions, end_positions
            )
    return out


def init_params(
    config: RoFormerConfig, head: HeadSpec | str, seed: int = 0, scale: float | None = None
) -> dict[str, np.ndarray]:
    """Random float32 parameters for a model class (normal weights, perturbed LayerNorms): for tests and demos.

    Returns:
        the stored (untied) canonical state dict, including the rotary table.
    """
    head = get_head(head) if isinstance(head, str) else head
    rng = np.random.default_rng(seed)
    std = config.initializer_range if scale is None else scale
    out: dict[str, np.ndarray] = {}
    for spec in model_schema(config, head):
        if not spec.stored:
            continue
        if spec.kind == "rotary_table":
            out[spec.name] = sinusoidal_table(spec.shape[0], spec.shape[1])
        elif spec.kind == "norm_weight":
            out[spec.name] = (1.0 + 0.1 * rng.standard_normal(spec.shape)).astype(np.float32)
        else:
            out[spec.name] = (std * rng.standard_normal(spec.shape)).astype(np.float32)
    return out
