"""A float64 numpy forward pass of every model class: the executable spec the ports are tested against.

No dropout, no cache: this is the full-sequence computation that cached decoding must reproduce. Parameters are a
canonical state dict (see :mod:`roformer_core.schema`).
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
from .rotary import apply_rotary, sinusoidal_table
from .schema import model_schema, untie


def _linear(params: Mapping[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    return x @ params[f"{name}.weight"].T + params[f"{name}.bias"]


def _layer_norm(params: Mapping[str, np.ndarray], name: str, x: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * params[f"{name}.weight"] + params[f"{name}.bias"]


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
        past = k_len - q_len
        tri = (np.arange(k_len)[None, :] <= (np.arange(q_len)[:, None] + past)).astype(np.float64)
        keep = keep * tri[None, None]
    return (1.0 - keep) * mask_fill_value("float64")


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

    q = split(_linear(params, f"{name}.self.query", hidden))
    k = split(_linear(params, f"{name}.self.key", source))
    v = split(_linear(params, f"{name}.self.value", source))
    if table is not None:
        q, k = apply_rotary(q, table), apply_rotary(k, table)
        if config.rotary_value:
            v = apply_rotary(v, table)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D) + bias
    probs = _softmax(scores)
    if layer_head_mask is not None:
        probs = probs * layer_head_mask
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(B, L, H * D)
    attended = _linear(params, f"{name}.output.dense", context)
    return _layer_norm(params, f"{name}.output.LayerNorm", attended + hidden, config.layer_norm_eps), probs


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
        (``[B, H, L, L]`` each) and, with cross-attention, ``cross_attentions``.
    """
    p = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
    if inputs_embeds is None:
        embeds = p["embeddings.word_embeddings.weight"][np.asarray(input_ids)]
    else:
        embeds = np.asarray(inputs_embeds, dtype=np.float64)
    B, L = embeds.shape[:2]
    types = np.zeros((B, L), dtype=np.int64) if token_type_ids is None else np.asarray(token_type_ids)
    x = embeds + p["embeddings.token_type_embeddings.weight"][types]
    x = _layer_norm(p, "embeddings.LayerNorm", x, config.layer_norm_eps)
    if config.has_embeddings_project:
        x = _linear(p, "embeddings_project", x)
    table = sinusoidal_table(L, config.head_dim, np.float64)
    bias = extended_attention_bias(attention_mask, B, L, L, causal=config.is_decoder)
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
        inner = ACTIVATIONS[config.hidden_act](_linear(p, f"{layer}.intermediate.dense", x))
        x = _layer_norm(
            p, f"{layer}.output.LayerNorm", _linear(p, f"{layer}.output.dense", inner) + x, config.layer_norm_eps
        )
        hidden_states.append(x)
    out: dict[str, Any] = {"last_hidden_state": x, "hidden_states": hidden_states, "attentions": attentions}
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
        ``last_hidden_state``), ``hidden_states``, ``attentions`` and ``loss`` when targets are given.
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
        t = act(_linear(params, "cls.predictions.transform.dense", seq))
        t = _layer_norm(params, "cls.predictions.transform.LayerNorm", t, config.layer_norm_eps)
        logits = t @ params["cls.predictions.decoder.weight"].T + params["cls.predictions.bias"]
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
