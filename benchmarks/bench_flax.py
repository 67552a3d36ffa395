"""Forward throughput of our jitted Flax RoFormer vs the reference's Flax RoFormer (jitted), same run, same weights.

Base config (hidden 768, 12 layers, 12 heads, vocab 50000), float32, inference (no dropout), full attention mask.
Both models run the same parameters (our bare-model tree is the reference's tree when embedding_size ==
hidden_size), and the script checks that their outputs agree before timing.

    python benchmarks/bench_flax.py                      # batch 4 x 512 and batch 1 x 2048
    python benchmarks/bench_flax.py --shapes 2x128 --repeats 3

Each measurement is the best of ``--repeats`` timed calls after one compile/warm-up call; ours and the
reference alternate so that background load hits both alike. Prints tokens per second and the ratio.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from roformer_core import RoFormerConfig
from roformer_flax import FlaxRoFormerModel

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["4x512", "1x2048"], help="BATCHxLENGTH pairs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=BASE["num_hidden_layers"])
    args = parser.parse_args(argv)

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
        t_ours, t_ref = float("inf"), float("inf")
        for _ in range(args.repeats):  # alternate, so that background load hits both alike
            t_ours = min(t_ours, _best_time(run_ours, 1))
            t_ref = min(t_ref, _best_time(run_reference, 1))
        tokens = batch * length
        print(
            f"{batch} x {length}: ours {tokens / t_ours:8.1f} tok/s ({t_ours:.3f} s), reference {tokens / t_ref:8.1f} "
            f"tok/s ({t_ref:.3f} s), ratio {t_ref / t_ours:.2f}x, max |diff| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
