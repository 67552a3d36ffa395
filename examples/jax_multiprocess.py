"""Train a RoFormer masked LM over several processes: ``pmap``, ``jit`` data parallel or FSDP, Orbax checkpoints.

Run one copy per process (per host on a cluster or TPU pod); here two processes on one machine, four CPU
devices each, eight devices in all:

    python examples/jax_multiprocess.py --make_data data --num_steps 3 --global_batch_size 16
    for i in 0 1; do
      XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu python examples/jax_multiprocess.py \\
          --coordinator 127.0.0.1:12345 --num_processes 2 --process_id $i --data data \\
          --mode pmap --mode fsdp --mode dp --resume --num_steps 3 --save_every 2 --checkpoint_dir ckpt &
    done; wait

``--data`` is a directory of two ``.npy`` files, ``input_ids`` and ``labels``, ``[steps, global batch, length]``
(``--make_data`` writes random ones); each process memory-maps them and reads only its own rows of each step.
``--mode pmap`` runs ``roformer_flax.training``'s ``pmap`` step over the local devices (the ``psum`` spans all
processes), ``dp`` the ``jax.jit`` step with replicated parameters, ``fsdp`` the same with parameters and
optimizer moments split across all devices (``roformer_flax.distributed``); repeated, they run one after
another, each from a fresh state. With ``--checkpoint_dir`` the ``jit`` modes save the train state with Orbax
every ``--save_every`` steps; with ``--resume`` they start from the newest checkpoint there, whichever layout
wrote it (above: FSDP saves step 2, data parallel resumes from it for step 3). Process 0 writes
``<output>/<mode>.npz``: the loss of every step run, the first step and the final parameters, flattened in tree
order; every process writes ``<output>/process<i>.json``: the rows it read, its devices, and the shape of its
share of the word embeddings (docs/distributed-jax.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MODES = ("pmap", "dp", "fsdp")
# a tiny masked LM (the tests' size); the flags below set it
MODEL = {"vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}


def make_data(directory: Path, num_steps: int, global_batch_size: int, length: int, seed: int = 0) -> None:
    """Random ``input_ids.npy`` / ``labels.npy`` of shape ``[num_steps, global_batch_size, length]`` (30% targets)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, MODEL["vocab_size"], (num_steps, global_batch_size, length)).astype(np.int32)
    labels = np.where(rng.random(ids.shape) < 0.3, ids, -100).astype(np.int32)  # uneven targets per device
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "input_ids.npy", ids)
    np.save(directory / "labels.npy", labels)


def build(dropout: float = 0.0, seed: int = 0):
    """The model and optimizer every process (and a one-device reference run) builds identically from ``seed``.

    The weights come from the core's numpy initializer, which compiles nothing; a real run would load a
    pretrained checkpoint with ``from_pretrained`` instead, in every process.
    """
    from roformer_core import RoFormerConfig, numpy_model
    from roformer_flax import FlaxRoFormerForMaskedLM, training

    config = RoFormerConfig(
        **MODEL,
        intermediate_size=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    model = FlaxRoFormerForMaskedLM.from_state_dict(config, numpy_model.init_params(config, "masked_lm", seed=seed))
    tx, schedule = training.create_optimizer(1e-3, num_train_steps=10, warmup_steps=1, weight_decay=0.01)
    return model, tx, schedule


def read_local_rows(data: Path, step: int, process_id: int, num_processes: int) -> tuple[dict[str, np.ndarray], list]:
    """This process's rows of ``step`` (only those are read from disk) and their range in the global batch."""
    ids = np.load(data / "input_ids.npy", mmap_mode="r")
    labels = np.load(data / "labels.npy", mmap_mode="r")
    per_process = ids.shape[1] // num_processes
    start, stop = process_id * per_process, (process_id + 1) * per_process
    batch = {"input_ids": np.array(ids[step, start:stop]), "labels": np.array(labels[step, start:stop])}
    batch["attention_mask"] = np.ones_like(batch["input_ids"])
    return batch, [start, stop]


def flat(tree):
    """Every leaf of a parameter tree, raveled and concatenated in tree order (numpy or, traced, jax.numpy)."""
    import jax
    import jax.numpy as jnp

    leaves = jax.tree_util.tree_leaves(tree)
    xp = jnp if isinstance(leaves[0], jax.Array) else np
    return xp.concatenate([xp.ravel(x) for x in leaves])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make_data", type=Path, help="write random data into this directory and exit")
    parser.add_argument("--global_batch_size", type=int, default=16)
    parser.add_argument("--max_seq_length", type=int, default=12)
    parser.add_argument("--coordinator", help="host:port of process 0 (leave out on TPU pods / SLURM)")
    parser.add_argument("--num_processes", type=int)
    parser.add_argument("--process_id", type=int)
    parser.add_argument("--data", type=Path, help="directory of input_ids.npy and labels.npy")
    parser.add_argument("--mode", choices=MODES, action="append", help="repeat to run several, one after another")
    parser.add_argument("--num_steps", type=int, default=2, help="train until this step")
    parser.add_argument("--checkpoint_dir", type=Path, help="Orbax checkpoints of the jit modes")
    parser.add_argument("--save_every", type=int, default=1, help="save the jit modes' state every this many steps")
    parser.add_argument("--resume", action="store_true", help="jit modes start from the newest checkpoint, if any")
    parser.add_argument("--fsdp_min_size", type=int, default=1024, help="FSDP splits tensors of this many elements")
    parser.add_argument("--output", type=Path, default=Path("out"))
    args = parser.parse_args(argv)
    if args.make_data is None and (args.data is None or not args.mode):
        parser.error("pass --data and at least one --mode (or --make_data)")
    if args.resume and args.checkpoint_dir is None:
        parser.error("--resume needs --checkpoint_dir")
    return args


def train_pmap(args: argparse.Namespace, model, tx, schedule) -> tuple[list[float], np.ndarray]:
    """``--num_steps`` steps of the ``pmap`` recipe; the losses and the final parameters (flattened)."""
    import jax

    from roformer_flax import training

    step_fn = training.make_pmap_train_step(model, learning_rate_fn=schedule)
    state = training.replicate(training.TrainState.create(model.params, tx, seed=0))
    losses = []
    for step in range(args.num_steps):
        local, _ = read_local_rows(args.data, step, jax.process_index(), jax.process_count())
        state, metrics = step_fn(state, training.shard_batch(local))  # local devices; the psum spans all
        losses.append(float(training.unreplicate(metrics)["loss"]))
    return losses, flat(jax.device_get(training.unreplicate(state).params))


def train_sharded(args: argparse.Namespace, model, tx, schedule, fsdp: bool) -> tuple[list[float], np.ndarray, dict]:
    """Steps of the ``jit`` recipe up to ``--num_steps`` (from the newest checkpoint with ``--resume``).

    Returns the losses of the steps run, the final parameters (flattened) and what this process saw.
    """
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from roformer_flax import distributed

    mesh = distributed.data_mesh()
    state, shardings = distributed.create_sharded_train_state(
        model.params, tx, mesh, fsdp=fsdp, min_size=args.fsdp_min_size
    )
    if args.resume and distributed.latest_checkpoint_step(args.checkpoint_dir) is not None:
        # whatever layout saved it: each process reads the slices of its devices in this run's layout
        state = distributed.restore_checkpoint(args.checkpoint_dir, state, shardings)
    step_fn = distributed.make_sharded_train_step(model, shardings, mesh, learning_rate_fn=schedule)
    seen = {"start": int(state.step), "rows": []}
    losses = []
    for step in range(int(state.step), args.num_steps):
        local, rows = read_local_rows(args.data, step, jax.process_index(), jax.process_count())
        state, metrics = step_fn(state, distributed.global_batch(local, mesh))
        losses.append(float(metrics["loss"]))  # replicated: every process holds it
        seen["rows"].append(rows)
        if args.checkpoint_dir is not None and (step + 1) % args.save_every == 0:
            distributed.save_checkpoint(args.checkpoint_dir, state)
    embedding = state.params["roformer"]["embeddings"]["word_embeddings"]["embedding"]
    seen["embedding_shard"] = list(embedding.addressable_shards[0].data.shape)  # [V, E] or [V / devices, E]
    params = jax.jit(flat, out_shardings=NamedSharding(mesh, P()))(state.params)  # gathered onto every device
    return losses, np.asarray(params), seen


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.make_data is not None:
        make_data(args.make_data, args.num_steps, args.global_batch_size, args.max_seq_length)
        return

    from roformer_flax import distributed

    distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    import jax

    pid = jax.process_index()
    args.output.mkdir(parents=True, exist_ok=True)
    model, tx, schedule = build()
    report = {"local_devices": jax.local_device_count(), "global_devices": jax.device_count()}
    for mode in args.mode:
        if mode == "pmap":
            losses, params = train_pmap(args, model, tx, schedule)
            start = 0
        else:
            losses, params, report[mode] = train_sharded(args, model, tx, schedule, fsdp=mode == "fsdp")
            start = report[mode]["start"]
        if pid == 0:
            print(f"{mode}: steps {start + 1}-{args.num_steps}, losses {[round(x, 4) for x in losses]}", flush=True)
            np.savez(args.output / f"{mode}.npz", losses=np.asarray(losses), params=params, start=start)
    (args.output / f"process{pid}.json").write_text(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
