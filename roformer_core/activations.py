"""Activation functions by their config name, in float64 numpy: the executable spec every port follows.

Names follow the reference's activation table. ``gelu`` is the exact (erf) GELU in every framework; the tanh
approximations are only reached through ``gelu_new`` / ``gelu_pytorch_tanh`` / ``gelu_fast``. Ports map each
name to their framework's function and the shared tests compare them with these definitions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def gelu_exact(x: np.ndarray) -> np.ndarray:
    """x * Phi(x) with the exact normal CDF."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """The tanh approximation of GELU (``gelu_new`` / ``gelu_pytorch_tanh``)."""
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def gelu_fast(x: np.ndarray) -> np.ndarray:
    """The reference's ``gelu_fast``: tanh GELU written with x * (1 + 0.044715 x^2)."""
    return 0.5 * x * (1.0 + np.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(1.702 x)."""
    return x / (1.0 + np.exp(-1.702 * x))


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(np.log1p(np.exp(x)))


def linear(x: np.ndarray) -> np.ndarray:
    return x


#: Config name -> numpy definition. The set of names a config may use; every port implements all of them.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gelu": gelu_exact,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_fast,
    "quick_gelu": quick_gelu,
    "relu": relu,
    "silu": silu,
    "swish": silu,
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "mish": mish,
    "linear": linear,
}
