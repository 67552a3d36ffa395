"""Training numerics of the PyTorch port: after one ``loss.backward()`` every parameter's gradient equals the
reference's within ATOL["float32"], through the oneDNN training path of ``roformer_pt.layers.Linear`` (forward GEMM
on oneDNN; gradient GEMMs on oneDNN on AMD CPUs, on MKL elsewhere: both variants are run here on any x86 CPU).

V1: transformers 4.57.6 with the same weights. RoFormer-V2 (RMS norm, no biases), which transformers lacks: the same
model in float64, which runs plain ``torch.nn.functional.linear`` and its autograd.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from roformer_core import RoFormerConfig  # noqa: E402
from roformer_pt import RoFormerForMaskedLM, layers  # noqa: E402

from .cases import BASE_CONFIG  # noqa: E402
from .tolerances import ATOL  # noqa: E402

pytestmark = pytest.mark.skipif(not layers._ONEDNN, reason="torch built without oneDNN: no oneDNN training path")

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
# the gradient GEMMs on MKL (Intel CPUs) or on oneDNN (AMD CPUs), whatever this machine is
BACKWARDS = {"mkl_backward": False, "onednn_backward": True}


def _batch(vocab_size: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab_size, (2, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    labels = torch.where(torch.rand(ids.shape, generator=generator) < 0.5, ids, -100)
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": labels}


def _gradients(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[float, dict[str, torch.Tensor]]:
    """What a training loop does: train mode, forward with labels, ``loss.backward()``; then every gradient (the
    reference's rotary table is a frozen parameter, ours a buffer)."""
    model.train().zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    grads = {name: param.grad for name, param in model.named_parameters() if param.requires_grad}
    assert all(grad is not None for grad in grads.values())
    return loss.item(), {name: grad.clone() for name, grad in grads.items()}


@pytest.fixture(scope="module")
def v1_reference():
    """A tiny transformers masked LM (embedding projection, rotary values), its gradients, and its weights."""
    transformers = pytest.importorskip("transformers")
    settings = {**BASE_CONFIG, **NO_DROPOUT, "embedding_size": 24, "rotary_value": True}
    torch.manual_seed(0)
    ref = transformers.RoFormerForMaskedLM(transformers.RoFormerConfig(**settings))
    batch = _batch(settings["vocab_size"])
    loss, grads = _gradients(ref, batch)
    state = {name: tensor.numpy() for name, tensor in ref.state_dict().items()}
    return RoFormerConfig(**settings), state, batch, loss, grads


@pytest.fixture(scope="module")
def v2_model() -> RoFormerForMaskedLM:
    torch.manual_seed(0)
    return RoFormerForMaskedLM(RoFormerConfig(**BASE_CONFIG, **NO_DROPOUT, norm_type="rms_norm", use_bias=False))


@pytest.fixture
def onednn_calls(monkeypatch) -> dict[str, int]:
    """Counts the oneDNN training GEMMs (forward, and the gradients' where enabled), so a test fails if the
    path it means to check was not taken."""
    calls = {"forward": 0, "backward": 0}
    forward, matmul_t = layers._OneDNNLinear.forward, layers._onednn_matmul_t

    def counted_forward(*args):
        calls["forward"] += 1
        return forward(*args)

    def counted_matmul_t(*args):
        calls["backward"] += 1
        return matmul_t(*args)

    monkeypatch.setattr(layers._OneDNNLinear, "forward", staticmethod(counted_forward))
    monkeypatch.setattr(layers, "_onednn_matmul_t", counted_matmul_t)
    return calls


def _assert_same_gradients(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(want)
    for name, grad in got.items():
        assert grad.shape == want[name].shape, name
        torch.testing.assert_close(grad, want[name].to(grad.dtype), rtol=0, atol=ATOL["float32"], msg=name)


@pytest.mark.parametrize("onednn_backward", BACKWARDS.values(), ids=BACKWARDS.keys())
def test_v1_gradients_equal_the_reference(v1_reference, onednn_calls, monkeypatch, onednn_backward: bool) -> None:
    monkeypatch.setattr(layers, "_ONEDNN_BACKWARD", onednn_backward)
    config, state, batch, ref_loss, ref_grads = v1_reference
    model = RoFormerForMaskedLM.from_state_dict(config, state)
    loss, grads = _gradients(model, batch)
    assert abs(loss - ref_loss) <= ATOL["float32"]
    _assert_same_gradients(grads, ref_grads)
    # every dense layer (6 per layer, the embedding projection, the LM transform and decoder) took the path
    assert onednn_calls["forward"] == 6 * config.num_hidden_layers + 3
    assert onednn_calls["backward"] == (2 * onednn_calls["forward"] if onednn_backward else 0)


@pytest.mark.parametrize("onednn_backward", BACKWARDS.values(), ids=BACKWARDS.keys())
def test_v2_gradients_equal_float64_autograd(v2_model, onednn_calls, monkeypatch, onednn_backward: bool) -> None:
    monkeypatch.setattr(layers, "_ONEDNN_BACKWARD", onednn_backward)
    batch = _batch(v2_model.config.vocab_size)
    loss, grads = _gradients(v2_model, batch)
    assert onednn_calls["forward"] == 6 * v2_model.config.num_hidden_layers + 1  # the tied decoder alone
    assert onednn_calls["backward"] == (2 * onednn_calls["forward"] if onednn_backward else 0)
    exact = RoFormerForMaskedLM(v2_model.config)
    exact.load_state_dict(v2_model.state_dict())
    exact_loss, exact_grads = _gradients(exact.double(), batch)
    assert abs(loss - exact_loss) <= ATOL["float32"]
    _assert_same_gradients(grads, exact_grads)


def test_double_backward_matches_functional_linear(onednn_calls, monkeypatch) -> None:
    """``create_graph=True`` (gradient penalties) differentiates the custom backward, which then runs ``mm``."""
    monkeypatch.setattr(layers, "_ONEDNN_BACKWARD", True)
    torch.manual_seed(0)
    linear = layers.Linear(8, 6)
    x = torch.randn(2, 3, 8, requires_grad=True)

    def penalty_grads(forward) -> list[torch.Tensor]:
        (grad_x,) = torch.autograd.grad(forward(x).tanh().sum(), x, create_graph=True)
        first_order_onednn_calls = onednn_calls["backward"]
        grads = torch.autograd.grad(grad_x.pow(2).sum(), (x, linear.weight, linear.bias))
        return [*grads, first_order_onednn_calls]

    *got, first_order_onednn_calls = penalty_grads(linear)
    assert onednn_calls["forward"] == 1 and first_order_onednn_calls == 0
    *want, _ = penalty_grads(lambda inputs: torch.nn.functional.linear(inputs, linear.weight, linear.bias))
    for got_grad, want_grad in zip(got, want, strict=True):
        torch.testing.assert_close(got_grad, want_grad, rtol=0, atol=ATOL["float32"])


def test_training_the_biases_alone_gets_their_gradients(onednn_calls) -> None:
    """BitFit-style fine-tuning: frozen weights, trainable biases, inputs without gradients."""
    torch.manual_seed(0)
    linear = layers.Linear(8, 6)
    linear.weight.requires_grad_(False)
    x = torch.randn(2, 3, 8)
    linear(x).pow(2).sum().backward()
    assert onednn_calls["forward"] == 1
    want = 2 * torch.nn.functional.linear(x, linear.weight, linear.bias).detach().sum((0, 1))
    torch.testing.assert_close(linear.bias.grad, want, rtol=0, atol=ATOL["float32"])


@pytest.mark.parametrize("grad", [True, False], ids=["training", "inference"])
def test_autocast_keeps_its_dtype(onednn_calls, grad: bool) -> None:
    """Under ``torch.autocast("cpu", bfloat16)`` (mixed-precision training) the GEMMs run in bfloat16, as
    ``F.linear`` does there, not on the float32 oneDNN path."""
    torch.manual_seed(0)
    linear = layers.Linear(8, 6)
    x = torch.randn(2, 3, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(grad):
        out = linear(x)
        want = torch.nn.functional.linear(x, linear.weight, linear.bias)
    assert out.dtype == want.dtype == torch.bfloat16 and onednn_calls["forward"] == 0
    torch.testing.assert_close(out, want, rtol=0, atol=0)
