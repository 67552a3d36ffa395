"""Fine-tune a RoFormer sequence classifier with Keras ``fit`` on several workers (``MultiWorkerMirroredStrategy``).

Start one copy per worker, each with its own ``TF_CONFIG`` (same cluster, its own ``index``; worker 0 is the chief)::

    export TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                       "task": {"type": "worker", "index": 0}}'
    python examples/tf_multiworker.py --output_dir run --checkpoint path/to/roformer --data train.npz \\
        --global_batch_size 64 --epochs 3 --backup_dir /shared/backup

Without ``TF_CONFIG`` the same script trains in one process. ``--data`` is an ``.npz`` file with ``input_ids``
``[N, L]``, ``labels`` ``[N]`` and optionally ``attention_mask`` / ``token_type_ids`` (e.g. the tokenizer's output
saved with ``np.savez``); without it a small synthetic task is generated. Without ``--checkpoint`` a tiny random
model is trained (a demo). Every worker reads its own shard of the data (``distribute_datasets_from_function``:
element ``i`` goes to worker ``i % workers``), each replica gets ``global_batch_size / replicas`` examples per
step, and the gradients are summed over replicas of per-replica losses scaled by ``1 / replicas``: a step is the
step one process would take on the whole global batch. The optimizer is AdamW, with weight decay on every
parameter but biases and norms (``roformer_core.optim.no_decay``, the rule the PyTorch and Flax recipes share).

``--backup_dir`` adds ``keras.callbacks.BackupAndRestore``: at every epoch's end each worker writes the weights,
the optimizer state and the epoch reached to ``backup_dir/worker-<index>``; when a worker dies, restart every
worker with the same command and ``fit`` resumes at the start of the epoch that was interrupted (a run that
completes removes its backups). The chief writes
``history.csv`` (``epoch,loss``, one line per epoch as it ends, across restarts) and, at the end, a
``save_pretrained`` checkpoint to ``--output_dir``.
``--exit_at_step N`` simulates a preempted machine: that worker exits abruptly after its N-th step.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from roformer_core.numpy_model import init_params
from roformer_tf import RoFormerConfig, TFRoFormerForSequenceClassification
from roformer_tf.distributed import no_decay_variables

# the model trained without --checkpoint: small enough for a laptop or a test
DEMO_CONFIG = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
    "num_labels": 3,
    # each replica draws its own dropout masks, so only a run without dropout repeats one process's run exactly
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}


class _ExitAtStep(keras.callbacks.Callback):
    """Ends the process without any cleanup after this run's ``step``-th training step, as a killed machine."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step, self.done = step, 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.done += 1
        if self.done == self.step:
            os._exit(3)


def load_data(path: str | None, num_labels: int, seed: int) -> dict[str, np.ndarray]:
    """The training arrays by forward argument: from an ``.npz`` file, else 64 synthetic examples of length 8
    whose label is the first token's id modulo ``num_labels``."""
    if path:
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        if "input_ids" not in arrays or "labels" not in arrays:
            raise ValueError(f"{path} must hold 'input_ids' [N, L] and 'labels' [N]; it has {sorted(arrays)}")
        return arrays
    ids = np.random.default_rng(seed).integers(1, DEMO_CONFIG["vocab_size"], size=(64, 8))
    return {"input_ids": ids, "labels": ids[:, 0] % num_labels}


def build_model(checkpoint: str | None, num_labels: int, seed: int) -> TFRoFormerForSequenceClassification:
    """A pretrained encoder with a new classification head (drawn from Keras' seeded generator, the same on every
    worker), or the tiny demo model drawn from numpy with ``seed``. Call inside ``strategy.scope()``."""
    if checkpoint:
        return TFRoFormerForSequenceClassification.from_pretrained(checkpoint, num_labels=num_labels)
    config = RoFormerConfig(**{**DEMO_CONFIG, "num_labels": num_labels})
    return TFRoFormerForSequenceClassification.from_state_dict(
        config, init_params(config, "sequence_classification", seed=seed)
    )


def train(args: argparse.Namespace, strategy: tf.distribute.Strategy | None = None) -> dict[str, list[float]]:
    """Train on every worker of ``TF_CONFIG`` (or in this process alone); returns ``fit``'s history.

    Args:
        args: the command line (:func:`parse_args`).
        strategy: default: a ``MultiWorkerMirroredStrategy`` made here, before any other TensorFlow work (it
            starts this worker's collective server, which TensorFlow allows only before its runtime starts).
    """
    keras.utils.set_random_seed(args.seed)
    strategy = strategy or tf.distribute.MultiWorkerMirroredStrategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    worker = resolver.task_id if resolver is not None and resolver.task_type else 0
    arrays = load_data(args.data, args.num_labels, args.seed)
    if args.global_batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"--global_batch_size {args.global_batch_size} must be a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas"
        )

    def dataset(context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = context.get_per_replica_batch_size(args.global_batch_size)
        shard = tf.data.Dataset.from_tensor_slices(arrays).shard(context.num_input_pipelines, context.input_pipeline_id)
        # equal batches on every replica: the mean of the replicas' means is the global batch's mean
        return shard.batch(per_replica, drop_remainder=True).prefetch(2)

    data = strategy.distribute_datasets_from_function(dataset)
    with strategy.scope():
        model = build_model(args.checkpoint, args.num_labels, args.seed)
        optimizer = keras.optimizers.AdamW(args.learning_rate, weight_decay=args.weight_decay)
        optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))  # biases and norms
        model.compile(optimizer=optimizer)
    output = Path(args.output_dir)
    callbacks: list[keras.callbacks.Callback] = []
    if worker == 0:
        output.mkdir(parents=True, exist_ok=True)
        # each epoch's line is written as it ends and appended after a restart: the whole run, interruptions included
        callbacks.append(keras.callbacks.CSVLogger(str(output / "history.csv"), append=True))
    if args.backup_dir:
        # Keras' callback does not coordinate workers: each writes its own copy (they hold the same values)
        backup = Path(args.backup_dir) / f"worker-{worker}"
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup)))  # removed when fit completes
    if args.exit_at_step:
        callbacks.append(_ExitAtStep(args.exit_at_step))
    history = model.fit(data, epochs=args.epochs, callbacks=callbacks, shuffle=False, verbose=2 if not worker else 0)
    if worker == 0:
        model.save_pretrained(output)
    return history.history


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True, help="the chief's history.csv and checkpoint")
    parser.add_argument("--checkpoint", help="pretrained checkpoint directory (default: a tiny random model)")
    parser.add_argument("--data", help=".npz with input_ids [N, L] and labels [N] (default: a synthetic task)")
    parser.add_argument("--num_labels", type=int, default=3)
    parser.add_argument("--global_batch_size", type=int, default=16, help="examples per step over all replicas")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning_rate", type=float, default=3e-3)
    parser.add_argument("--weight_decay", type=float, default=0.01, help="AdamW's, on all but biases and norms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backup_dir", help="resume an interrupted run from here (keras.callbacks.BackupAndRestore)")
    parser.add_argument("--exit_at_step", type=int, help="simulate a preemption: exit after this many steps")
    return parser.parse_args(argv)


if __name__ == "__main__":
    train(parse_args())
