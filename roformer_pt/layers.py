"""The building blocks of the PyTorch RoFormer models: activations, rotary positions, the norm and dense helpers,
embeddings, rotary self-attention, the encoder layers, the pooler and the heads' blocks (the seven model classes are
in :mod:`.modeling`).

Module and parameter names follow the reference, so ``state_dict()`` keys are the canonical names of
:mod:`roformer_core.schema`. The rotary layout is documented once, in :mod:`roformer_core.rotary`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from roformer_core.config import RoFormerConfig
from roformer_core.rotary import sinusoidal_table

# Cache layout: a tuple over layers of (self_key, self_value) or, with cross-attention,
# (self_key, self_value, cross_key, cross_value); each [B, H, L, D]. Keys (and values with rotary_value) are
# stored already rotated.
PastKeyValues = tuple[tuple[torch.Tensor, ...], ...]


def _gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


# Every name of roformer_core.activations.ACTIVATIONS; the shared tests check the two tables agree.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": _gelu_fast,
    "quick_gelu": _quick_gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "mish": F.mish,
    "linear": lambda x: x,
}


def _compiling() -> bool:
    """Whether a graph is being captured (torch.compile, torch.export or torch.jit.trace): input checks that read
    values are skipped and only portable ops are recorded."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


# ---- rotary -----------------------------------------------------------------------------------------------------


class Rotary(NamedTuple):
    """Per-position rotation: ``sin``/``cos`` halves of the table rows ``[L, D/2]``; ``phase = cos + i sin``
    (complex, float32/float64 only) rotates each pair ``x[2i] + i x[2i+1]`` by one complex multiply."""

    sin: torch.Tensor
    cos: torch.Tensor
    phase: torch.Tensor | None


class RoFormerSinusoidalPositionalEmbedding(nn.Module):
    """The rotary sin/cos table ``[max_position_embeddings, D]`` (a buffer saved as ``weight``, never trained).

    Positions past the stored rows are computed on demand with the same formula, so any length works.
    """

    def __init__(self, num_positions: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("weight", torch.from_numpy(sinusoidal_table(num_positions, dim)), persistent=True)
        self._extended: torch.Tensor | None = None

    def reset_table(self) -> None:
        """Recompute the stored rows (after ``to_empty`` or loading a foreign table)."""
        table = sinusoidal_table(self.weight.shape[0], self.dim)
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(table).to(self.weight.dtype))
        self._extended = None

    def forward(self, past_length: int, length: int) -> Rotary:
        """The rotation for positions ``past_length .. past_length + L - 1``."""
        end = past_length + length
        table = self.weight
        if end > table.shape[0]:
            extended = self._extended
            if extended is None or extended.shape[0] < end or extended.dtype != table.dtype:
                rows = max(end, 2 * table.shape[0])
                extended = torch.from_numpy(sinusoidal_table(rows, self.dim)).to(table.device, table.dtype)
                self._extended = extended
            table = extended.to(table.device)
        rows = table[past_length:end]  # [L, D]
        sin, cos = rows[:, : self.dim // 2], rows[:, self.dim // 2 :]
        # inductor fuses the real-valued formula itself and has no complex codegen
        complex_ok = rows.dtype in (torch.float32, torch.float64) and not _compiling()
        phase = torch.complex(cos, sin) if complex_ok else None
        return Rotary(sin, cos, phase)


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """``[x0, x1, x2, x3, ...] -> [-x1, x0, -x3, x2, ...]`` along the last axis."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def apply_rotary(x: torch.Tensor, rotary: Rotary) -> torch.Tensor:
    """Rotate ``x [B, H, L, D]`` pairwise by position (layout: roformer_core.rotary).

    In eager float32/64 the pairs are viewed as complex numbers and multiplied by ``phase`` (one pass over ``x``,
    about 4x faster than the real-valued formula); half precisions and torch.compile use
    ``x * cos + rotate_pairs(x) * sin``.
    """
    if rotary.phase is not None:
        if x.stride(-1) != 1:
            x = x.contiguous()
        return torch.view_as_real(torch.view_as_complex(x.unflatten(-1, (-1, 2))) * rotary.phase).flatten(-2)
    sin_pos = rotary.sin.repeat_interleave(2, dim=-1)
    cos_pos = rotary.cos.repeat_interleave(2, dim=-1)
    return x * cos_pos + rotate_pairs(x) * sin_pos


# ---- norm and dense helpers -------------------------------------------------------------------------------------


def _cpu_vendor() -> str:
    """The CPU's vendor id (``GenuineIntel``, ``AuthenticAMD``; empty where /proc/cpuinfo does not say)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
# MKL, torch's default CPU GEMM, runs at about half oneDNN's speed on AMD CPUs; on Intel ones they are even. oneDNN's
# GEMM (as torch exposes it) wants both operands with the reduced axis innermost, so the two gradient GEMMs pay for
# transposed copies of the weight, the gradient and the input: about 1.3x slower than MKL on an Intel Xeon, so only
# AMD CPUs, where the GEMM itself is twice as fast, take that path.
_ONEDNN_BACKWARD = _ONEDNN and _cpu_vendor() == "AuthenticAMD"
# activations oneDNN can fuse into the GEMM: config name -> (post-op, algorithm)
_ONEDNN_POST_OPS = {
    "gelu": ("gelu", "none"),
    "gelu_new": ("gelu", "tanh"),
    "gelu_pytorch_tanh": ("gelu", "tanh"),
    "relu": ("relu", ""),
}


def _onednn_matmul_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` on oneDNN for 2-D float32 ``a [M, K]``, ``b [N, K]``: ``[M, N]``."""
    return torch.ops.mkldnn._linear_pointwise(a.contiguous(), b.contiguous(), None, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` for training: oneDNN's GEMM forward; the gradients' GEMMs on oneDNN where
    ``_ONEDNN_BACKWARD`` (AMD CPUs), else (and always under ``create_graph=True``, which needs differentiable ops)
    the ``mm`` calls of ``F.linear``'s own backward."""

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        x, weight, _ = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        onednn = _ONEDNN_BACKWARD and not torch.is_grad_enabled()
        grad_2d = grad.reshape(-1, grad.shape[-1])  # [N, out]
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn_matmul_t(grad_2d, weight.t()) if onednn else grad_2d @ weight
            grad_x = grad_x.view(x.shape)
        if ctx.needs_input_grad[1]:
            x_2d = x.reshape(-1, x.shape[-1])  # [N, in]
            grad_weight = _onednn_matmul_t(grad_2d.t(), x_2d.t()) if onednn else grad_2d.t() @ x_2d
        if ctx.needs_input_grad[2]:
            grad_bias = grad_2d.sum(0)
        return grad_x, grad_weight, grad_bias


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict names) whose CPU float32 GEMMs run on oneDNN.

    With or without a bias (RoFormer-V2's dense layers have none). Where no gradient is needed, the GEMM goes through
    ``torch.ops.mkldnn._linear_pointwise`` (the kernel torch.compile's CPU backend uses), optionally with the
    activation fused in. On the benchmark machine (AMD EPYC) it runs at about 2.2x the speed of the default MKL
    path; results agree to float32 rounding. Training runs the same forward GEMM through a custom autograd function
    (``_OneDNNLinear``); other devices and dtypes, autocast, torch.compile and torch.func transforms use
    ``torch.nn.functional.linear``.
    """

    def forward(self, x: torch.Tensor, activation: str | None = None) -> torch.Tensor:
        """``activation(x @ weight.T + bias)``: ``x [..., in_features]`` -> ``[..., out_features]``; ``activation``
        is a name of ``ACTIVATIONS`` or None."""
        if (
            _ONEDNN
            and x.device.type == "cpu"
            and x.dtype == torch.float32 == self.weight.dtype
            and not torch.is_autocast_enabled("cpu")  # autocast would run F.linear in bf16/fp16
            and not _compiling()
        ):
            trained = (x, self.weight) if self.bias is None else (x, self.weight, self.bias)
            if not (torch.is_grad_enabled() and any(tensor.requires_grad for tensor in trained)):
                if activation is None or activation in _ONEDNN_POST_OPS:
                    post_op, algorithm = _ONEDNN_POST_OPS[activation] if activation else ("none", "")
                    return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, post_op, [], algorithm)
            elif not torch._C._are_functorch_transforms_active():
                out = _OneDNNLinear.apply(x, self.weight, self.bias)
                return out if activation is None else ACTIVATIONS[activation](out)
        out = F.linear(x, self.weight, self.bias)
        return out if activation is None else ACTIVATIONS[activation](out)


def norm_layer(config: RoFormerConfig, width: int) -> nn.Module:
    """The encoder's norm, by ``config.norm_type``: LayerNorm with scale and shift (V1), or RoFormer-V2's weightless
    ``x / sqrt(mean(x^2) + eps)`` (no parameters, so nothing in the state dict); eps is ``layer_norm_eps``."""
    if config.norm_type == "layer_norm":
        return nn.LayerNorm(width, eps=config.layer_norm_eps)
    return nn.RMSNorm(width, eps=config.layer_norm_eps, elementwise_affine=False)


# ---- building blocks --------------------------------------------------------------------------------------------


class RoFormerEmbeddings(nn.Module):
    """Word + token-type embeddings, norm, dropout (no absolute positions). Output ``[B, L, E]``."""

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.embedding_size)
        self.LayerNorm = norm_layer(config, config.embedding_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if token_type_ids is None:
            embeddings = inputs_embeds + self.token_type_embeddings.weight[0]
        else:
            embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings))


class RoFormerSelfAttention(nn.Module):
    """Multi-head attention with rotary positions (self-attention) or without (cross-attention)."""

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.rotary_value = config.rotary_value
        width, bias = config.hidden_size, config.use_bias
        self.query = Linear(width, width, bias=bias)
        self.key = Linear(width, width, bias=bias)
        self.value = Linear(width, width, bias=bias)
        self.dropout_prob = config.attention_probs_dropout_prob
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)  # [B, H, L, D]

    def forward(
        self,
        hidden_states: torch.Tensor,
        bias: torch.Tensor | None,
        rotary: Rotary | None,
        head_mask: torch.Tensor | None,
        kv_states: torch.Tensor | None = None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """Attend.

        Args:
            hidden_states: queries' source ``[B, Lq, E]``.
            bias: additive mask broadcastable to ``[B, H, Lq, Lk]`` (``finfo.min`` where masked) or None.
            rotary: positions of the queries (self-attention), or None (cross-attention).
            head_mask: ``[1, H, 1, 1]`` multiplier of the attention probabilities, or None.
            kv_states: cross-attention source ``[B, Lk, E]`` (None for self-attention).
            past: cached ``(key, value)``: prepended for self-attention, reused as is for cross-attention.
            output_attentions: return the probabilities ``[B, H, Lq, Lk]``.

        Returns:
            context ``[B, Lq, E]``, the ``(key, value)`` to cache, and the probabilities or None.
        """
        q = self._split(self.query(hidden_states))
        if kv_states is not None and past is not None:
            k, v = past
        else:
            source = hidden_states if kv_states is None else kv_states
            k = self._split(self.key(source))
            v = self._split(self.value(source))
            if rotary is not None:
                k = apply_rotary(k, rotary)
                if self.rotary_value:
                    v = apply_rotary(v, rotary)
                if past is not None:
                    k = torch.cat((past[0], k), dim=2)
                    v = torch.cat((past[1], v), dim=2)
        if rotary is not None:
            q = apply_rotary(q, rotary)
        dropout_p = self.dropout_prob if self.training else 0.0
        if not output_attentions and head_mask is None:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)
            probs = None
        else:
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
            if bias is not None:
                scores = scores + bias
            probs = self.dropout(scores.softmax(dim=-1))
            if head_mask is not None:
                probs = probs * head_mask
            context = probs @ v
        context = context.transpose(1, 2).flatten(2)  # [B, Lq, H * D]
        return context, (k, v), probs


class RoFormerSelfOutput(nn.Module):
    """Output projection, dropout and post-norm residual of an attention block."""

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size, bias=config.use_bias)
        self.LayerNorm = norm_layer(config, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class RoFormerAttention(nn.Module):
    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.self = RoFormerSelfAttention(config)
        self.output = RoFormerSelfOutput(config)

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any):
        context, cache, probs = self.self(hidden_states, *args, **kwargs)
        return self.output(context, hidden_states), cache, probs


class RoFormerIntermediate(nn.Module):
    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size, bias=config.use_bias)
        self.hidden_act = config.hidden_act

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dense(hidden_states, activation=self.hidden_act)


class RoFormerOutput(nn.Module):
    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.dense = Linear(config.intermediate_size, config.hidden_size, bias=config.use_bias)
        self.LayerNorm = norm_layer(config, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class RoFormerLayer(nn.Module):
    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.chunk_size = config.chunk_size_feed_forward
        self.attention = RoFormerAttention(config)
        if config.add_cross_attention:
            self.crossattention = RoFormerAttention(config)
        self.intermediate = RoFormerIntermediate(config)
        self.output = RoFormerOutput(config)

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(x), x)

    def forward(
        self,
        hidden_states: torch.Tensor,
        bias: torch.Tensor | None,
        rotary: Rotary,
        head_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None,
        cross_bias: torch.Tensor | None,
        past: tuple[torch.Tensor, ...] | None,
        output_attentions: bool,
    ):
        self_past = past[:2] if past is not None else None
        x, cache, probs = self.attention(hidden_states, bias, rotary, head_mask, None, self_past, output_attentions)
        cross_probs = None
        if encoder_hidden_states is not None:
            if not hasattr(self, "crossattention"):
                raise ValueError(
                    "encoder_hidden_states were given to a decoder built without cross-attention: set "
                    "add_cross_attention=True in the config"
                )
            cross_past = past[2:4] if past is not None and len(past) == 4 else None
            x, cross_cache, cross_probs = self.crossattention(
                x, cross_bias, None, head_mask, encoder_hidden_states, cross_past, output_attentions
            )
            cache = cache + cross_cache
        if self.chunk_size and x.shape[1] > self.chunk_size:
            x = torch.cat([self._feed_forward(chunk) for chunk in x.split(self.chunk_size, dim=1)], dim=1)
        else:
            x = self._feed_forward(x)
        return x, cache, probs, cross_probs


class RoFormerEncoder(nn.Module):
    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_positions = RoFormerSinusoidalPositionalEmbedding(config.max_position_embeddings, config.head_dim)
        self.layer = nn.ModuleList([RoFormerLayer(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False
        self.checkpoint_kwargs: dict[str, Any] = {"use_reentrant": False}

    def forward(
        self,
        hidden_states: torch.Tensor,
        bias: torch.Tensor | None,
        head_mask: list[torch.Tensor | None],
        encoder_hidden_states: torch.Tensor | None,
        cross_bias: torch.Tensor | None,
        past_key_values: PastKeyValues | None,
        use_cache: bool,
        output_attentions: bool,
        output_hidden_states: bool,
    ) -> dict[str, Any]:
        past_length = past_key_values[0][0].shape[2] if past_key_values else 0
        rotary = self.embed_positions(past_length, hidden_states.shape[1])
        all_hidden = [hidden_states] if output_hidden_states else None
        all_attn = [] if output_attentions else None
        all_cross = [] if output_attentions and encoder_hidden_states is not None else None
        cache = [] if use_cache else None
        for n, layer in enumerate(self.layer):
            args = (
                hidden_states,
                bias,
                rotary,
                head_mask[n],
                encoder_hidden_states,
                cross_bias,
                past_key_values[n] if past_key_values else None,
                output_attentions,
            )
            if self.gradient_checkpointing and self.training:
                hidden_states, layer_cache, probs, cross_probs = checkpoint(layer, *args, **self.checkpoint_kwargs)
            else:
                hidden_states, layer_cache, probs, cross_probs = layer(*args)
            if cache is not None:
                cache.append(layer_cache)
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            if all_attn is not None:
                all_attn.append(probs)
            if all_cross is not None:
                all_cross.append(cross_probs)
        return {
            "last_hidden_state": hidden_states,
            "past_key_values": tuple(cache) if cache is not None else None,
            "hidden_states": tuple(all_hidden) if all_hidden is not None else None,
            "attentions": tuple(all_attn) if all_attn is not None else None,
            "cross_attentions": tuple(all_cross) if all_cross is not None else None,
        }


def unilm_keep(token_type_ids: torch.Tensor, past_length: int) -> torch.Tensor:
    """The UniLM rule (:func:`roformer_core.masks.unilm_mask`, here in torch ops so that compiled graphs keep it)
    for the queries of one pass: bool ``[B, 1, L, P + L]``.

    Query i attends key j iff ``C[j] <= C[i]`` with ``C = cumsum(token_type_ids)``. The ``P`` cached keys precede
    every query and C never decreases, so they are always attended: the new tokens' types ``[B, L]`` suffice.
    """
    cumulative = token_type_ids.cumsum(dim=1)  # [B, L]
    keep = cumulative[:, None, :] <= cumulative[:, :, None]  # [B, L, L]
    if past_length:
        keep = torch.cat((keep.new_ones(*keep.shape[:2], past_length), keep), dim=2)
    return keep[:, None]


class RoFormerPooler(nn.Module):
    """``pooler_activation(dense(hidden[:, 0]))``: ``[B, hidden]`` (RoFormer-Sim's sentence vector, linear)."""

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.activation = config.pooler_activation

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dense(hidden_states[:, 0], activation=self.activation)


# ---- head blocks ------------------------------------------------------------------------------------------------


class RoFormerPredictionHeadTransform(nn.Module):
    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.embedding_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(hidden_states)))


class RoFormerLMPredictionHead(nn.Module):
    """hidden ``[B, L, hidden]`` -> transform (down to E) -> decoder with bias -> logits ``[B, L, V]``; RoFormer-V2
    (not ``config.has_lm_transform``) has the decoder alone, without a bias."""

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        if config.has_lm_transform:
            self.transform = RoFormerPredictionHeadTransform(config)
            self.decoder = Linear(config.embedding_size, config.vocab_size)
            self.bias = nn.Parameter(torch.zeros(config.vocab_size))
            self.decoder.bias = self.bias
        else:
            self.decoder = Linear(config.embedding_size, config.vocab_size, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "transform"):
            hidden_states = self.transform(hidden_states)
        return self.decoder(hidden_states)


class RoFormerOnlyMLMHead(nn.Module):
    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.predictions = RoFormerLMPredictionHead(config)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.predictions(sequence_output)


class RoFormerClassificationHead(nn.Module):
    """First position -> dropout -> dense -> hidden_act -> dropout -> out_proj: ``[B, num_labels]``."""

    def __init__(self, config: RoFormerConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.out_proj = Linear(config.hidden_size, config.num_labels)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features[:, 0])
        x = self.dropout(self.act(self.dense(x)))
        return self.out_proj(x)
