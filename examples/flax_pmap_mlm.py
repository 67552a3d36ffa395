"""Pretrain a RoFormer masked LM on a plain text file, data-parallel over every local device with ``jax.pmap``.

    python examples/flax_pmap_mlm.py --train_file corpus.txt --output_dir runs/mlm \\
        --vocab_file vocab.txt --num_train_steps 10000 --per_device_batch_size 16 [--variant v2]

Without ``--vocab_file`` a character vocabulary is built from the text (fine for a demo, not for real work).
Lines are tokenized with our ``RoFormerTokenizerFast`` (jieba words + WordPiece), concatenated and cut into
blocks of ``--max_seq_length``; 15% of the tokens are selected for prediction (80% [MASK], 10% random, 10%
kept), as in BERT. ``--variant v2`` pretrains a RoFormer-V2 (weightless RMS norm, no biases in the encoder's
dense layers, tied-only LM head; docs/variants.md) instead of a V1 RoFormer. The recipe is
``roformer_flax.training``: AdamW with warmup and linear decay, weight decay off biases and LayerNorm, gradients
averaged across devices, optional gradient accumulation. Every ``--save_steps`` the run writes
``train_state.msgpack`` plus a loadable checkpoint (``config.json``, ``model.safetensors``, tokenizer files) and
``trainer_state.json`` (the step and the loss of every step, those before a resume included) to ``--output_dir``,
and nothing anywhere else; ``--resume`` continues from there with
the same batches and dropout keys it would have used. The learning rate warms up over ``--warmup_steps``
(default: 10% of ``--num_train_steps``; a value above ``--num_train_steps`` is clamped to it, with a warning).
On CPU, try ``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from roformer_core.io import atomic_write_text
from roformer_core.variants import variant_config
from roformer_flax import FlaxRoFormerForMaskedLM, training

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# the family members that are bidirectional masked LMs (Sim and GPT-char are decoders)
MLM_VARIANTS = ("v1", "v2")
TRAINER_STATE_NAME = "trainer_state.json"


def build_char_vocab(lines: list[str], path: Path) -> Path:
    """A vocab.txt of the special tokens, every character of the text and its ``##`` continuation."""
    chars = sorted({ch for line in lines for ch in line.lower() if not ch.isspace()})
    path.write_text("\n".join(SPECIAL_TOKENS + chars + [f"##{ch}" for ch in chars]) + "\n", encoding="utf-8")
    return path


def load_tokenizer(args: argparse.Namespace, lines: list[str]):
    try:
        from roformer_core import RoFormerTokenizerFast
    except ImportError as err:  # the tokenizer needs rjieba and tokenizers
        raise SystemExit(f"this example needs the RoFormer tokenizer: {err}") from None
    vocab_file = Path(args.vocab_file) if args.vocab_file else None
    if vocab_file is None:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        vocab_file = build_char_vocab(lines, Path(args.output_dir) / "vocab.txt")
    return RoFormerTokenizerFast(vocab_file=str(vocab_file))


def make_blocks(tokenizer, lines: list[str], max_seq_length: int) -> np.ndarray:
    """All lines tokenized, concatenated, cut into ``[N, max_seq_length]`` blocks framed by [CLS] ... [SEP]."""
    ids = [i for row in tokenizer(lines, add_special_tokens=False)["input_ids"] for i in row]
    body = max_seq_length - 2
    n = len(ids) // body
    if n == 0:
        raise SystemExit(f"the text has {len(ids)} tokens, fewer than one block of {body}")
    blocks = np.asarray(ids[: n * body], dtype=np.int32).reshape(n, body)
    cls = np.full((n, 1), tokenizer.cls_token_id, np.int32)
    sep = np.full((n, 1), tokenizer.sep_token_id, np.int32)
    return np.concatenate([cls, blocks, sep], axis=1)


def mask_tokens(
    ids: np.ndarray, tokenizer, rng: np.random.Generator, probability: float = 0.15
) -> dict[str, np.ndarray]:
    """BERT masking: labels are the original ids at the selected positions, -100 elsewhere."""
    special = np.isin(ids, tokenizer.all_special_ids)
    selected = (rng.random(ids.shape) < probability) & ~special
    labels = np.where(selected, ids, -100)
    inputs = ids.copy()
    replace = selected & (rng.random(ids.shape) < 0.8)
    inputs[replace] = tokenizer.mask_token_id
    randomize = selected & ~replace & (rng.random(ids.shape) < 0.5)
    inputs[randomize] = rng.integers(0, tokenizer.vocab_size, size=int(randomize.sum()))
    return {"input_ids": inputs, "attention_mask": np.ones_like(ids), "labels": labels.astype(np.int32)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_file", required=True, help="plain text, one or more sentences per line")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--vocab_file", help="vocab.txt (default: a character vocabulary built from the text)")
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--per_device_batch_size", type=int, default=8)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--num_train_steps", type=int, default=1000)
    parser.add_argument(
        "--warmup_steps", type=int, help="learning-rate warmup (default: 10%% of --num_train_steps; at most all)"
    )
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument(
        "--variant", choices=MLM_VARIANTS, default="v1", help="RoFormer (v1) or RoFormer-V2 (v2); default v1"
    )
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--num_hidden_layers", type=int, default=4)
    parser.add_argument("--num_attention_heads", type=int, default=4)
    parser.add_argument("--intermediate_size", type=int, default=1024)
    parser.add_argument("--save_steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from the train_state in --output_dir")
    args = parser.parse_args(argv)
    if args.num_train_steps <= 0:
        parser.error(f"--num_train_steps must be positive, got {args.num_train_steps}")
    if args.warmup_steps is None:
        args.warmup_steps = args.num_train_steps // 10
    elif args.warmup_steps > args.num_train_steps:
        warnings.warn(
            f"--warmup_steps {args.warmup_steps} is more than --num_train_steps {args.num_train_steps}: warming up "
            f"over all {args.num_train_steps} steps",
            stacklevel=2,
        )
        args.warmup_steps = args.num_train_steps
    return args


def main(argv: list[str] | None = None) -> list[float]:
    """Train; returns the loss of every step this call ran (for tests)."""
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    lines = [line.strip() for line in Path(args.train_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    tokenizer = load_tokenizer(args, lines)
    blocks = make_blocks(tokenizer, lines, args.max_seq_length)

    devices = jax.local_device_count()
    global_batch = args.per_device_batch_size * devices * args.gradient_accumulation_steps
    config = variant_config(
        args.variant,
        vocab_size=tokenizer.vocab_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        max_position_embeddings=args.max_seq_length,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = FlaxRoFormerForMaskedLM(config, seed=args.seed)
    tx, schedule = training.create_optimizer(
        args.learning_rate, args.num_train_steps, args.warmup_steps, weight_decay=args.weight_decay
    )
    state = training.TrainState.create(model.params, tx, seed=args.seed)
    history: list[float] = []  # the loss of every step, from step 0 (a resumed run's earlier steps included)
    if args.resume and (output_dir / training.TRAIN_STATE_NAME).is_file():
        state = training.restore_train_state(output_dir, state)
        history = training.load_loss_history(output_dir)[: int(state.step)]
    start = int(state.step)
    p_step = training.make_pmap_train_step(model, args.gradient_accumulation_steps, schedule)
    state = training.replicate(state)

    def save(step: int) -> None:
        training.save_train_state(output_dir, training.unreplicate(state), model, losses=history + losses)
        tokenizer.save_pretrained(output_dir)
        report = {"step": step, "losses": history + losses}
        atomic_write_text(output_dir / TRAINER_STATE_NAME, json.dumps(report, indent=2) + "\n")

    losses: list[float] = []
    progress = tqdm(range(start, args.num_train_steps), initial=start, total=args.num_train_steps, desc="train")
    for step in progress:
        rng = np.random.default_rng([args.seed, step])  # a function of the step: resuming sees the same data
        rows = rng.integers(0, len(blocks), size=global_batch)
        batch = mask_tokens(blocks[rows], tokenizer, rng)
        state, metrics = p_step(state, training.shard_batch(batch))
        loss = float(metrics["loss"][0])
        losses.append(loss)
        progress.set_postfix(loss=f"{loss:.4f}", lr=f"{float(metrics['learning_rate'][0]):.2e}")
        if (step + 1) % args.save_steps == 0:
            save(step + 1)
    save(args.num_train_steps)
    return losses


if __name__ == "__main__":
    main()
