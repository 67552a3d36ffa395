"""Training recipe: optax AdamW with warmup and linear decay, a data-parallel ``jax.pmap`` step, checkpoints.

* :func:`create_optimizer`: AdamW (optionally with global-norm clipping), a linear warmup then linear decay of
  the learning rate, and weight decay masked off biases and LayerNorm parameters (:func:`decay_mask`).
* :func:`make_train_step`: one optimizer step from ``loss = model(**batch, params=p, train=True,
  dropout_rng=r).loss``, with optional gradient accumulation over micro-batches (``lax.scan``). Given an
  ``axis_name`` it is the per-device body of a data-parallel step: gradients and metrics are reduced across
  devices with ``lax.psum``, each device draws its own dropout key (the step key folded with
  ``lax.axis_index``). Losses are weighted by their number of targets, so 8 devices x 2 examples give the loss
  and update of 1 device x 16 examples (the plain ``lax.pmean`` of per-device means, to which this reduces
  when every shard has the same number of targets).
* :func:`make_pmap_train_step`, :func:`replicate`, :func:`unreplicate`, :func:`shard_batch`: the ``pmap``
  plumbing.
* :func:`save_train_state` / :func:`restore_train_state`: step, parameters, optimizer state, the dropout
  seed and optionally the loss history (:func:`load_loss_history`), in one msgpack file written atomically (plus
  a loadable model checkpoint). Dropout keys are derived from the seed and the step number, so a resumed run
  continues the same loss curve.

Over several processes the ``pmap`` step runs as it is (each process feeds its own rows, the ``psum`` spans
every device); :mod:`roformer_flax.distributed` adds the ``jax.jit`` step over a device mesh (data parallel or
FSDP) and Orbax checkpoints (docs/distributed-jax.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import jax_utils, serialization, struct
from flax.traverse_util import flatten_dict, unflatten_dict

from roformer_core import losses
from roformer_core.io import atomic_write_bytes
from roformer_core.optim import no_decay

TRAIN_STATE_NAME = "train_state.msgpack"
# the loss history's entry in train_state.msgpack (a float64 array with one loss per step)
_LOSSES_KEY = "losses"

Batch = Mapping[str, jax.Array]


def decay_mask(params: Any) -> Any:
    """A tree of bools like ``params``: False (no weight decay) for biases and LayerNorm scales/biases, by the rule
    every port shares (:func:`roformer_core.optim.no_decay` on the parameter's dotted path)."""
    flat = flatten_dict(params)
    return unflatten_dict({path: not no_decay(".".join(map(str, path))) for path in flat})


def learning_rate_schedule(
    learning_rate: float, num_train_steps: int, warmup_steps: int = 0, end_learning_rate: float = 0.0
) -> optax.Schedule:
    """Linear warmup from 0 to ``learning_rate`` over ``warmup_steps``, then linear decay to ``end_learning_rate``."""
    if num_train_steps <= 0 or not 0 <= warmup_steps <= num_train_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= num_train_steps ({num_train_steps}), > 0")
    warmup = optax.linear_schedule(0.0, learning_rate, max(warmup_steps, 1))
    decay = optax.linear_schedule(learning_rate, end_learning_rate, max(num_train_steps - warmup_steps, 1))
    if warmup_steps == 0:
        return decay
    return optax.join_schedules([warmup, decay], boundaries=[warmup_steps])


def create_optimizer(
    learning_rate: float | optax.Schedule = 5e-5,
    num_train_steps: int | None = None,
    warmup_steps: int = 0,
    weight_decay: float = 0.01,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    max_grad_norm: float | None = 1.0,
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW with warmup/decay, weight decay masked off biases and LayerNorm, optional global-norm clipping.

    Args:
        learning_rate: peak learning rate, or a schedule (then ``num_train_steps``/``warmup_steps`` are unused).
        num_train_steps: total optimizer steps for the decay (None: constant after warmup).
        warmup_steps: linear warmup steps.
        weight_decay: decoupled weight decay of the kernels and embeddings.
        max_grad_norm: clip the global gradient norm to this value (None: no clipping).

    Returns:
        the optax transformation and the learning-rate schedule (for logging).
    """
    if callable(learning_rate):
        schedule = learning_rate
    elif num_train_steps is None:
        schedule = (
            optax.linear_schedule(0.0, learning_rate, warmup_steps)
            if warmup_steps
            else optax.constant_schedule(learning_rate)
        )
    else:
        schedule = learning_rate_schedule(learning_rate, num_train_steps, warmup_steps)
    adamw = optax.adamw(schedule, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=decay_mask)
    tx = adamw if max_grad_norm is None else optax.chain(optax.clip_by_global_norm(max_grad_norm), adamw)
    return tx, schedule


class TrainState(struct.PyTreeNode):
    """Everything a training run needs to continue: step, parameters, optimizer state, dropout seed.

    Attributes:
        step: int32 number of optimizer steps taken.
        params: the model parameters.
        opt_state: the optax state.
        dropout_seed: ``jax.random`` key; the key of step ``s`` on device ``d`` is derived from it, ``s`` and ``d``.
        tx: the optax transformation (static, not saved).
    """

    step: jax.Array
    params: Any
    opt_state: Any
    dropout_seed: jax.Array
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @classmethod
    def create(cls, params: Any, tx: optax.GradientTransformation, seed: int | jax.Array = 0) -> TrainState:
        key = jax.random.PRNGKey(seed) if isinstance(seed, int) else seed
        params = jax.tree_util.tree_map(jnp.asarray, params)
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), dropout_seed=key, tx=tx)

    def apply_gradients(self, grads: Any) -> TrainState:
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates), opt_state=opt_state)


def _split_micro_batches(batch: Batch, accumulation_steps: int) -> Batch:
    def split(x: jax.Array) -> jax.Array:
        if x.shape[0] % accumulation_steps:
            raise ValueError(f"batch size {x.shape[0]} is not divisible by accumulation_steps={accumulation_steps}")
        return x.reshape(accumulation_steps, x.shape[0] // accumulation_steps, *x.shape[1:])

    return {k: split(v) for k, v in batch.items()}


def make_train_step(
    model: Any,
    accumulation_steps: int = 1,
    axis_name: str | None = None,
    learning_rate_fn: optax.Schedule | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """An un-jitted train step ``(state, batch) -> (state, metrics)`` for a Flax RoFormer model object.

    Args:
        model: a ``FlaxRoFormerFor...`` model; its ``__call__`` gives the loss (``batch`` holds its keyword
            arguments: ``input_ids``, ``attention_mask``, ``labels``, ...).
        accumulation_steps: split the (per-device) batch into this many micro-batches and sum their gradients
            before the single optimizer update.
        axis_name: the ``pmap`` axis to reduce gradients and metrics over (None: single device).
        learning_rate_fn: schedule reported as ``learning_rate`` in the metrics.

    Returns:
        the step; wrap it in ``jax.jit`` or use :func:`make_pmap_train_step`. Metrics: ``loss`` (the mean over
        every target of the global batch), ``grad_norm``, ``num_targets`` and ``learning_rate``.
    """
    head_name = model.head.name

    def summed_loss(params: Any, batch: Batch, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        n = jnp.asarray(losses.target_count(head_name, batch, model.config), jnp.float32)
        loss = model(**batch, params=params, train=True, dropout_rng=key).loss
        # a micro-batch (or device shard) without targets has a NaN mean loss and contributes nothing
        return jnp.where(n > 0, loss, 0.0) * n, n

    grad_fn = jax.value_and_grad(summed_loss, has_aux=True)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        key = jax.random.fold_in(state.dropout_seed, state.step)
        if axis_name is not None:
            key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))  # one dropout key per device
        if accumulation_steps == 1:
            (loss_sum, n), grads = grad_fn(state.params, batch, key)
        else:

            def micro(carry: tuple, inputs: tuple) -> tuple:
                loss_acc, n_acc, grad_acc = carry
                index, micro_batch = inputs
                (loss_sum, n), grads = grad_fn(state.params, micro_batch, jax.random.fold_in(key, index))
                grad_acc = jax.tree_util.tree_map(jnp.add, grad_acc, grads)
                return (loss_acc + loss_sum, n_acc + n, grad_acc), None

            zeros = jax.tree_util.tree_map(jnp.zeros_like, state.params)
            micro_batches = _split_micro_batches(batch, accumulation_steps)
            init = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32), zeros)
            (loss_sum, n, grads), _ = jax.lax.scan(micro, init, (jnp.arange(accumulation_steps), micro_batches))
        if axis_name is not None:
            loss_sum, n, grads = jax.lax.psum((loss_sum, n, grads), axis_name)
        grads = jax.tree_util.tree_map(lambda g: g / n, grads)
        metrics = {"loss": loss_sum / n, "grad_norm": optax.tree.norm(grads), "num_targets": n}
        if learning_rate_fn is not None:
            metrics["learning_rate"] = jnp.asarray(learning_rate_fn(state.step), jnp.float32)
        return state.apply_gradients(grads), metrics

    return step


def make_pmap_train_step(
    model: Any,
    accumulation_steps: int = 1,
    learning_rate_fn: optax.Schedule | None = None,
    axis_name: str = "batch",
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """The data-parallel step: ``jax.pmap`` over devices of :func:`make_train_step` (state replicated, batch sharded).

    Call it with ``replicate(state)`` and ``shard_batch(batch)``; the returned metrics are identical on every
    device (``unreplicate`` them).
    """
    step = make_train_step(model, accumulation_steps, axis_name, learning_rate_fn)
    return jax.pmap(step, axis_name=axis_name, donate_argnums=(0,))


def replicate(tree: Any, devices: list | None = None, axis_name: str = "batch") -> Any:
    """Copy a tree onto every local device (a leading device axis), in ``pmap``'s device order.

    ``axis_name`` should be the step's: the copies then carry the sharding the step returns, so it compiles once.
    """
    return jax_utils.replicate(tree, devices, axis_name=axis_name)


def unreplicate(tree: Any) -> Any:
    """The first device's copy of a replicated tree."""
    return jax_utils.unreplicate(tree)


def shard_batch(batch: Mapping[str, Any], num_devices: int | None = None) -> dict[str, np.ndarray]:
    """Reshape every array ``[N, ...]`` to ``[devices, N / devices, ...]`` for a ``pmap`` step."""
    num_devices = num_devices or jax.local_device_count()
    out = {}
    for key, value in batch.items():
        value = np.asarray(value)
        if value.shape[0] % num_devices:
            raise ValueError(f"{key}: batch size {value.shape[0]} is not divisible by {num_devices} devices")
        out[key] = value.reshape(num_devices, value.shape[0] // num_devices, *value.shape[1:])
    return out


def save_train_state(
    directory: str | os.PathLike, state: TrainState, model: Any | None = None, losses: Sequence[float] | None = None
) -> Path:
    """Write ``train_state.msgpack`` (step, params, optimizer state, dropout seed) atomically into ``directory``.

    With ``model``, also writes its ``config.json`` + ``model.safetensors`` with the state's parameters, so the
    directory loads with ``from_pretrained`` in every port. With ``losses`` (the loss of every step so far, one
    per step), the history is saved in the same file, so it always matches the step (see
    :func:`load_loss_history`). ``state`` must not be replicated.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = jax.device_get(state)
    payload = {
        "step": state.step,
        "params": state.params,
        "opt_state": state.opt_state,
        "dropout_seed": state.dropout_seed,
    }
    if losses is not None:
        payload[_LOSSES_KEY] = np.asarray(losses, np.float64)
    atomic_write_bytes(directory / TRAIN_STATE_NAME, serialization.to_bytes(payload))
    if model is not None:
        model.save_pretrained(directory, params=state.params)
    return directory


def _read_train_state(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / TRAIN_STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {TRAIN_STATE_NAME} in {directory}")
    return serialization.msgpack_restore(path.read_bytes())


def restore_train_state(directory: str | os.PathLike, state: TrainState) -> TrainState:
    """Read ``train_state.msgpack`` into the structure of ``state`` (a fresh state built with the same optimizer)."""
    raw = _read_train_state(directory)
    raw.pop(_LOSSES_KEY, None)
    template = {
        "step": state.step,
        "params": state.params,
        "opt_state": state.opt_state,
        "dropout_seed": state.dropout_seed,
    }
    restored = serialization.from_state_dict(template, raw)
    restored = jax.tree_util.tree_map(jnp.asarray, restored)
    return state.replace(**restored)


def load_loss_history(directory: str | os.PathLike) -> list[float]:
    """The per-step losses saved with ``save_train_state(..., losses=...)`` ([] when none were saved)."""
    return [float(x) for x in np.asarray(_read_train_state(directory).get(_LOSSES_KEY, []))]
