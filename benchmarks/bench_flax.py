"""Our Flax RoFormer vs the reference's Flax RoFormer (transformers 4.57.6), both jitted, same run, same weights.

Base config (hidden 768, 12 layers, 12 heads, vocab 50000), float32, full attention mask. Both models run the
same parameters (our tree is the reference's tree when embedding_size == hidden_size), and the script checks
that their outputs agree before timing.

* ``--task forward`` (default): inference throughput of the bare model (no dropout).
* ``--task train``: one masked-LM training step, forward with dropout + backward + AdamW update, each side a
  jitted ``(params, opt_state, batch, key) -> (params, opt_state, loss)`` with donated buffers; ours is
  ``roformer_flax.training.make_train_step``, the reference's computes the same masked cross-entropy from its
  logits. Both use the same optax AdamW (``training.create_optimizer``).

    python benchmarks/bench_flax.py                      # forward: batch 4 x 512 and batch 1 x 2048
    python benchmarks/bench_flax.py --task train         # train step: batch 8 x 128 and batch 2 x 512
    python benchmarks/bench_flax.py --shapes 2x128 --repeats 3

Each measurement is the best of ``--repeats`` timed calls after one compile/warm-up call; ours and the
reference alternate so that background load hits both alike. Prints tokens per second and the ratio.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from roformer_core import RoFormerConfig
from roformer_flax import FlaxRoFormerForMaskedLM, FlaxRoFormerModel, training

BASE = {
    "vocab_size": 50000,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 2048,
}


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def _alternate(run_ours, run_reference, repeats: int) -> tuple[float, float]:
    """The best time of each over ``repeats`` rounds, alternating so that background load hits both alike."""
    t_ours, t_ref = float("inf"), float("inf")
    for _ in range(repeats):
        t_ours = min(t_ours, _best_time(run_ours, 1))
        t_ref = min(t_ref, _best_time(run_reference, 1))
    return t_ours, t_ref


def bench_train(args: argparse.Namespace) -> None:
    """One masked-LM training step (forward with dropout, backward, AdamW), ours vs the reference's."""
    import optax
    from transformers import FlaxRoFormerForMaskedLM as ReferenceMaskedLM
    from transformers import RoFormerConfig as ReferenceConfig

    settings = {**BASE, "num_hidden_layers": args.layers}
    ours = FlaxRoFormerForMaskedLM(RoFormerConfig(**settings), seed=0)
    reference = ReferenceMaskedLM(ReferenceConfig(**settings), seed=0, _do_init=True)
    tx, _ = training.create_optimizer(1e-4, num_train_steps=1000, warmup_steps=0)
    our_step = training.make_train_step(ours)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def ours_train(params, opt_state, batch, key):
        state = training.TrainState(
            step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, dropout_seed=key, tx=tx
        )
        state, metrics = our_step(state, batch)
        return state.params, state.opt_state, metrics["loss"]

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def reference_train(params, opt_state, batch, key):
        def loss_fn(p):
            logits = reference(
                batch["input_ids"],
                attention_mask=batch["attention_mask"],
                params=p,
                train=True,
                dropout_rng=jax.random.fold_in(key, 0),
            ).logits
            targets = batch["labels"] != -100
            per_token = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(targets, batch["labels"], 0))
            return jnp.sum(per_token * targets) / jnp.sum(targets)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    print(f"device: {jax.devices()[0].device_kind}; train step, layers={args.layers}, float32, AdamW")
    for shape in args.shapes:
        batch_size, length = (int(x) for x in shape.split("x"))
        rng = np.random.default_rng(0)
        ids = rng.integers(1, BASE["vocab_size"], size=(batch_size, length)).astype(np.int32)
        batch = {
            "input_ids": jnp.asarray(ids),
            "attention_mask": jnp.ones_like(ids),
            "labels": jnp.asarray(np.where(rng.random(ids.shape) < 0.15, ids, -100).astype(np.int32)),
        }
        key = jax.random.PRNGKey(0)
        # each side owns (and donates) its own copy of the same starting parameters and optimizer state
        sides = {name: [jax.tree_util.tree_map(jnp.array, ours.params), tx.init(ours.params)] for name in "or"}

        def run(name: str, fn, sides=sides, batch=batch, key=key) -> jax.Array:
            sides[name][0], sides[name][1], loss = fn(*sides[name], batch, key)
            return loss

        loss_ours, loss_ref = float(run("o", ours_train)), float(run("r", reference_train))  # also compiles both
        t_ours, t_ref = _alternate(lambda: run("o", ours_train), lambda: run("r", reference_train), args.repeats)
        tokens = batch_size * length
        print(
            f"{batch_size} x {length}: ours {tokens / t_ours:8.1f} tok/s ({t_ours:.3f} s), reference "
            f"{tokens / t_ref:8.1f} tok/s ({t_ref:.3f} s), ratio {t_ref / t_ours:.2f}x, first loss ours "
            f"{loss_ours:.4f} reference {loss_ref:.4f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("forward", "train"), default="forward")
    parser.add_argument("--shapes", nargs="+", help="BATCHxLENGTH pairs (forward: 4x512 1x2048; train: 8x128 2x512)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=BASE["num_hidden_layers"])
    args = parser.parse_args(argv)
    if args.shapes is None:
        args.shapes = ["4x512", "1x2048"] if args.task == "forward" else ["8x128", "2x512"]
    if args.task == "train":
        bench_train(args)
        return

    from transformers import FlaxRoFormerModel as ReferenceModel
    from transformers import RoFormerConfig as ReferenceConfig

    config = RoFormerConfig(**{**BASE, "num_hidden_layers": args.layers})
    ours = FlaxRoFormerModel(config, seed=0)
    reference = ReferenceModel(ReferenceConfig(**{**BASE, "num_hidden_layers": args.layers}), seed=0, _do_init=True)
    params = ours.params  # the same tree as the reference's bare model

    @jax.jit
    def reference_forward(params, input_ids, attention_mask):
        return reference(input_ids, attention_mask=attention_mask, params=params).last_hidden_state

    print(f"device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s); layers={args.layers}")
    for shape in args.shapes:
        batch, length = (int(x) for x in shape.split("x"))
        rng = np.random.default_rng(0)
        ids = jnp.asarray(rng.integers(1, config.vocab_size, size=(batch, length)), jnp.int32)
        mask = jnp.ones((batch, length), jnp.int32)

        def run_ours(ids=ids, mask=mask):
            return ours(ids, attention_mask=mask).last_hidden_state

        def run_reference(ids=ids, mask=mask):
            return reference_forward(params, ids, mask)

        diff = float(jnp.max(jnp.abs(run_ours() - run_reference())))  # also compiles both
        t_ours, t_ref = _alternate(run_ours, run_reference, args.repeats)
        tokens = batch * length
        print(
            f"{batch} x {length}: ours {tokens / t_ours:8.1f} tok/s ({t_ours:.3f} s), reference {tokens / t_ref:8.1f} "
            f"tok/s ({t_ref:.3f} s), ratio {t_ref / t_ours:.2f}x, max |diff| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
