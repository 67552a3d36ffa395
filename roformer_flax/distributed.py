"""Multi-process training: ``jax.distributed``, a ``jit`` step over a device mesh (data parallel or FSDP), Orbax.

The single-host recipe (:mod:`roformer_flax.training`) already runs over several hosts with ``pmap``: every process
calls :func:`initialize`, feeds its own shard of the data to ``training.shard_batch`` and the step's ``lax.psum``
spans every device of every process. This module adds the ``jax.jit`` + ``NamedSharding`` route, where the state
and the batch are *global* arrays laid out over a :class:`jax.sharding.Mesh` and XLA inserts the collectives:

* :func:`initialize`: ``jax.distributed.initialize`` plus the CPU collectives (gloo) that CPU-only runs need.
* :func:`data_mesh`: a one-axis mesh ``("data",)`` over every device of every process.
* :func:`create_sharded_train_state`: the :class:`~roformer_flax.training.TrainState` placed on the mesh, its
  parameters and optimizer moments either replicated (data parallel) or split along the ``"data"`` axis (FSDP,
  ZeRO-3 style: each device keeps ``1 / devices`` of every large tensor, XLA gathers it where a layer uses it),
  and the tree of shardings that describes it.
* :func:`global_batch`: each process's rows as one global batch, sharded along ``"data"``; a process never holds
  another's rows.
* :func:`make_sharded_train_step`: ``jax.jit`` of ``training.make_train_step`` with those shardings. The loss of a
  global batch is the mean over all its targets and the dropout masks are drawn for the global shape, so the step
  is the one-device step of the whole batch, whatever the mesh.
* :func:`save_checkpoint` / :func:`restore_checkpoint`: the train state with Orbax, one step per sub-directory;
  every process writes (and reads) only its own shards, and a restore lays the state out on any mesh.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import training

__all__ = [
    "DATA_AXIS",
    "FSDP_MIN_SIZE",
    "create_sharded_train_state",
    "data_mesh",
    "global_batch",
    "initialize",
    "latest_checkpoint_step",
    "make_sharded_train_step",
    "put_global",
    "restore_checkpoint",
    "save_checkpoint",
    "state_shardings",
]

DATA_AXIS = "data"
# FSDP leaves smaller tensors (biases, norms, small kernels) replicated: splitting them saves little memory and
# costs a gather each
FSDP_MIN_SIZE = 2**14


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    cpu_collectives: str = "gloo",
    **kwargs: Any,
) -> None:
    """Join the multi-process run: ``jax.distributed.initialize`` after choosing the CPU collectives.

    Call it first thing in every process, before any JAX computation. On TPU pods and SLURM / Open MPI GPU
    clusters the arguments are detected and may be left out; on CPU hosts (and in tests) pass the coordinator
    ``"host:port"`` (process 0's address), the number of processes and this process's index.

    Args:
        coordinator_address: ``"host:port"`` of process 0.
        num_processes: number of processes.
        process_id: this process's index in ``[0, num_processes)``.
        cpu_collectives: the implementation of cross-process collectives between CPU devices (``"gloo"``;
            ``"mpi"`` needs an MPI library); without one, a CPU computation spanning processes fails.
        **kwargs: passed to ``jax.distributed.initialize`` (``local_device_ids``, ``initialization_timeout``, ...).
    """
    if num_processes is not None and (process_id is None or not 0 <= process_id < num_processes):
        raise ValueError(f"process_id must be in [0, {num_processes}) when num_processes={num_processes} is given")
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id, **kwargs
    )


def data_mesh(devices: list | None = None, axis_name: str = DATA_AXIS) -> Mesh:
    """A one-axis mesh over ``devices`` (default: every device of every process, in process order)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (axis_name,))


def _leaf_sharding(leaf: Any, mesh: Mesh, fsdp: bool, min_size: int) -> NamedSharding:
    shape = tuple(getattr(leaf, "shape", ()))
    if fsdp and int(np.prod(shape, dtype=np.int64)) >= min_size:
        axis = mesh.axis_names[0]
        size = mesh.shape[axis]
        # split the largest dimension that divides evenly (a vocabulary of 50000 rows splits over 8 devices, say)
        divisible = [d for d in range(len(shape)) if shape[d] % size == 0]
        if divisible:
            dim = max(divisible, key=lambda d: shape[d])
            return NamedSharding(mesh, P(*([None] * dim), axis))
    return NamedSharding(mesh, P())


def state_shardings(state: Any, mesh: Mesh, *, fsdp: bool = False, min_size: int = FSDP_MIN_SIZE) -> Any:
    """The sharding of every leaf of ``state`` (a train state, a parameter tree, or their ``jax.eval_shape``).

    Without ``fsdp`` every leaf is replicated. With ``fsdp`` a leaf of at least ``min_size`` elements is split
    along the mesh's first axis on its largest evenly divisible dimension. The rule reads only shapes, so
    parameters and their Adam moments get the same layout.
    """
    return jax.tree_util.tree_map(lambda leaf: _leaf_sharding(leaf, mesh, fsdp, min_size), state)


def put_global(tree: Any, shardings: Any) -> Any:
    """Host values, identical on every process (same seed, same checkpoint), as global arrays with ``shardings``.

    Each process copies only the slices its devices hold.
    """

    def put(value: Any, sharding: NamedSharding) -> jax.Array:
        value = np.asarray(value)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree_util.tree_map(put, tree, shardings)


def create_sharded_train_state(
    params: Any,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    *,
    seed: int = 0,
    fsdp: bool = False,
    min_size: int = FSDP_MIN_SIZE,
) -> tuple[training.TrainState, Any]:
    """A fresh train state laid out on ``mesh``, and its tree of shardings (for the step and for restoring).

    Args:
        params: the model's parameters (``model.params``), the same values on every process.
        tx: the optax transformation (``training.create_optimizer``).
        mesh: the device mesh (:func:`data_mesh`).
        seed: the dropout seed.
        fsdp: split parameters and optimizer moments across the devices (see :func:`state_shardings`);
            otherwise replicate them.
        min_size: the smallest tensor (in elements) that FSDP splits.

    Returns:
        ``(state, shardings)``: the state (global arrays) and a ``TrainState`` of ``NamedSharding`` leaves.
    """

    def create(p: Any) -> training.TrainState:
        return training.TrainState.create(p, tx, seed=seed)

    shardings = state_shardings(jax.eval_shape(create, params), mesh, fsdp=fsdp, min_size=min_size)
    # the optimizer state is created already sharded, never whole on one device
    state = jax.jit(create, out_shardings=shardings)(put_global(params, shardings.params))
    return state, shardings


def global_batch(local_batch: Mapping[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
    """This process's rows ``[N / processes, ...]`` as part of one global batch ``[N, ...]`` split along ``"data"``.

    Every process passes its own, equally sized, rows: process ``p`` holds global rows
    ``[p * N / processes, (p + 1) * N / processes)`` when the mesh lists devices in process order
    (:func:`data_mesh` does).
    """
    sharding = NamedSharding(mesh, P(mesh.axis_names[0]))
    local_devices = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    out = {}
    for key, value in local_batch.items():
        value = np.asarray(value)
        if value.ndim == 0 or value.shape[0] % local_devices:
            raise ValueError(
                f"{key}: this process's batch of shape {value.shape} must have a first axis divisible by its "
                f"{local_devices} devices; pass a per-process batch of a multiple of {local_devices} rows"
            )
        out[key] = jax.make_array_from_process_local_data(sharding, value)
    return out


def make_sharded_train_step(
    model: Any,
    shardings: Any,
    mesh: Mesh,
    accumulation_steps: int = 1,
    learning_rate_fn: optax.Schedule | None = None,
) -> Callable[[training.TrainState, Mapping[str, jax.Array]], tuple[training.TrainState, dict[str, jax.Array]]]:
    """The ``jax.jit`` step over ``mesh``: state in and out with ``shardings``, batch split along ``"data"``.

    Args:
        model: a ``FlaxRoFormerFor...`` model object.
        shardings: the state's shardings (from :func:`create_sharded_train_state`).
        mesh: the device mesh.
        accumulation_steps: micro-batches per step (see ``training.make_train_step``).
        learning_rate_fn: schedule reported as ``learning_rate`` in the metrics.

    Returns:
        ``step(state, batch) -> (state, metrics)``; the metrics are replicated scalars. The input state is
        donated (its buffers reused), as with the ``pmap`` step.
    """
    step = training.make_train_step(model, accumulation_steps, None, learning_rate_fn)
    batch_sharding = NamedSharding(mesh, P(mesh.axis_names[0]))
    return jax.jit(
        step,
        in_shardings=(shardings, batch_sharding),
        out_shardings=(shardings, NamedSharding(mesh, P())),
        donate_argnums=(0,),
    )


def _saved_fields(state: training.TrainState) -> dict[str, Any]:
    return {
        "step": state.step,
        "params": state.params,
        "opt_state": state.opt_state,
        "dropout_seed": state.dropout_seed,
    }


def _location(directory: str | os.PathLike) -> Any:
    """An ``etils.epath.Path`` (what Orbax takes): a ``gs://`` URL as it is, a local path made absolute."""
    from etils import epath

    directory = os.fspath(directory)
    return epath.Path(directory if "://" in directory else os.path.abspath(directory))


def _manager(directory: str | os.PathLike, max_to_keep: int | None = None) -> Any:
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False)
    return ocp.CheckpointManager(_location(directory), options=options)


def save_checkpoint(directory: str | os.PathLike, state: training.TrainState, *, max_to_keep: int | None = None) -> Any:
    """Save the train state with Orbax into ``directory/<step>/`` (every process calls it, each writes its shards).

    Args:
        directory: a directory every process can reach (the same path on a shared file system, or a
            ``gs://`` bucket on TPU pods).
        state: the train state (global arrays, e.g. from :func:`create_sharded_train_state`).
        max_to_keep: keep only this many newest steps (None: all).

    Returns:
        the step's directory (an ``etils.epath.Path``).
    """
    import orbax.checkpoint as ocp

    step = int(state.step)  # replicated: every process holds it
    with _manager(directory, max_to_keep) as manager:
        manager.save(step, args=ocp.args.StandardSave(_saved_fields(state)))
        manager.wait_until_finished()
    return _location(directory) / str(step)


def latest_checkpoint_step(directory: str | os.PathLike) -> int | None:
    """The newest step saved in ``directory`` by :func:`save_checkpoint` (None when there is none)."""
    if not _location(directory).is_dir():
        return None
    with _manager(directory) as manager:
        return manager.latest_step()


def restore_checkpoint(
    directory: str | os.PathLike, state: training.TrainState, shardings: Any, step: int | None = None
) -> training.TrainState:
    """Read a train state saved by :func:`save_checkpoint`, laid out with ``shardings`` (any mesh, any layout).

    Args:
        directory: the directory given to :func:`save_checkpoint`.
        state: a state of the same structure (a fresh one built with the same optimizer, or its
            ``jax.eval_shape``); only its shapes, dtypes and static optimizer are used.
        shardings: the layout to restore onto (from :func:`create_sharded_train_state` or :func:`state_shardings`).
        step: the step to read (None: the newest).

    Returns:
        the restored state; each process reads only the slices its devices hold.
    """
    import orbax.checkpoint as ocp

    def abstract(leaf: Any, sharding: NamedSharding) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)

    target = jax.tree_util.tree_map(abstract, _saved_fields(state), _saved_fields(shardings))
    with _manager(directory) as manager:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no Orbax checkpoint in {directory}; save one with save_checkpoint first")
        restored = manager.restore(step, args=ocp.args.StandardRestore(target))
    return state.replace(**restored)
