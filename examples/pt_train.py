"""Fine-tune or pretrain a RoFormer in PyTorch on every process ``torchrun`` starts (docs/distributed-pytorch.md).

    torchrun --nproc_per_node=2 examples/pt_train.py --model DIR --task mlm --train_file data.jsonl \\
        --output_dir runs/mlm --num_train_steps 1000 --per_device_batch_size 16 [--sharding fsdp] [--resume]

``--model`` is a checkpoint directory with tokenizer files (``vocab.txt``). ``--train_file`` holds JSON lines:
``{"text": ...}`` for ``--task mlm`` (masked-LM pretraining), ``{"text": ..., "label": 0}`` for ``--task
classification`` (sequence classification into ``--num_labels`` classes). Texts are tokenized with our
``RoFormerTokenizerFast`` and padded to ``--max_seq_length``; for the masked LM, 15% of each text's tokens (at
least one) are selected for prediction (80% [MASK], 10% random, 10% kept), drawn from ``--seed`` and the
example's index, so every process and every resumed run masks an example the same way. The recipe is
``roformer_pt.training.train``: DistributedDataParallel (or FSDP2 with ``--sharding fsdp``), a distributed
sampler, AdamW with warmup and linear decay (no weight decay on biases and norms), gradient accumulation,
``--mixed_precision bf16|fp16``, ``--gradient_checkpointing``. Every ``--save_steps`` steps and at the end it writes
``checkpoint-N/`` (a loadable model plus the optimizer, scheduler, random-generator and sampler state) to
``--output_dir``; ``--resume`` continues from the newest one. Without ``torchrun`` it trains in one process.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from roformer_core import RoFormerTokenizerFast
from roformer_pt import RoFormerForMaskedLM, RoFormerForSequenceClassification
from roformer_pt.training import TrainingArguments, checkpoints, init_distributed, train

TASKS = {"mlm": RoFormerForMaskedLM, "classification": RoFormerForSequenceClassification}


class TextDataset(Dataset):
    """Tokenized texts (and labels); for the masked LM, each example masked by its own seeded generator."""

    def __init__(self, records: list[dict[str, Any]], tokenizer, args: argparse.Namespace) -> None:
        encoded = tokenizer(
            [record["text"] for record in records],
            padding="max_length",
            truncation=True,
            max_length=args.max_seq_length,
            return_tensors="np",
        )
        self.input_ids = encoded["input_ids"].astype(np.int64)  # [N, L]
        self.attention_mask = encoded["attention_mask"].astype(np.int64)  # [N, L]
        self.labels = np.asarray([record["label"] for record in records]) if args.task == "classification" else None
        self.tokenizer, self.seed, self.probability = tokenizer, args.seed, args.mlm_probability
        self.maskable = ~np.isin(self.input_ids, tokenizer.all_special_ids)  # [N, L]

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        ids, mask = self.input_ids[index], self.attention_mask[index]
        if self.labels is not None:
            return {"input_ids": ids, "attention_mask": mask, "labels": self.labels[index]}
        return {"input_ids": ids, "attention_mask": mask, **self._mask(index)}

    def _mask(self, index: int) -> dict[str, np.ndarray]:
        """BERT masking: labels are the original ids at the selected positions, -100 elsewhere."""
        rng = np.random.default_rng([self.seed, index])
        ids, maskable = self.input_ids[index].copy(), self.maskable[index]
        selected = (rng.random(ids.shape) < self.probability) & maskable
        if not selected.any() and maskable.any():  # every text teaches something
            selected[rng.choice(np.flatnonzero(maskable))] = True
        labels = np.where(selected, ids, -100)
        roll = rng.random(ids.shape)
        ids[selected & (roll < 0.8)] = self.tokenizer.mask_token_id
        random_tokens = selected & (roll >= 0.8) & (roll < 0.9)
        ids[random_tokens] = rng.integers(0, len(self.tokenizer), size=int(random_tokens.sum()))
        return {"input_ids": ids, "labels": labels}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory with tokenizer files")
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--train_file", required=True, help="JSON lines: {'text': ...} (+ 'label' to classify)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_labels", type=int, default=2, help="classes of --task classification")
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--mlm_probability", type=float, default=0.15)
    parser.add_argument("--num_train_steps", type=int, required=True)
    parser.add_argument("--per_device_batch_size", type=int, default=8)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--warmup_steps", type=int, default=0)
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="0 turns clipping off")
    parser.add_argument("--mixed_precision", choices=["no", "bf16", "fp16"], default="no")
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--sharding", choices=["ddp", "fsdp"], default="ddp")
    parser.add_argument("--save_steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output_dir")
    parser.add_argument("--no_progress_bar", action="store_true")
    return parser.parse_args(argv)


def read_records(path: str, task: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    needed = ("text", "label") if task == "classification" else ("text",)
    for number, record in enumerate(records, 1):
        missing = [key for key in needed if key not in record]
        if missing:
            raise SystemExit(f"{path} line {number} has no {', '.join(missing)}: --task {task} needs {needed}")
    return records


def main(argv: list[str] | None = None) -> list[float]:
    args = parse_args(argv)
    ctx = init_distributed()
    resume = None
    if args.resume:
        found = checkpoints(args.output_dir)
        if not found:
            raise SystemExit(f"--resume: no checkpoint-N directory in {args.output_dir}")
        resume = found[-1]
    tokenizer = RoFormerTokenizerFast.from_pretrained(args.model)
    dataset = TextDataset(read_records(args.train_file, args.task), tokenizer, args)
    torch.manual_seed(args.seed)  # a new head starts the same on every rank
    overrides = {"num_labels": args.num_labels} if args.task == "classification" else {}
    model = TASKS[args.task].from_pretrained(args.model, **overrides)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_steps=args.num_train_steps,
        per_device_batch_size=args.per_device_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        max_grad_norm=args.max_grad_norm or None,
        mixed_precision=args.mixed_precision,
        gradient_checkpointing=args.gradient_checkpointing,
        sharding=args.sharding,
        save_steps=args.save_steps,
        seed=args.seed,
        resume_from_checkpoint=resume,
        progress_bar=not args.no_progress_bar,
    )
    result = train(model, dataset, training_args, ctx)
    if ctx.is_main:  # the last checkpoint is the trained model: with its tokenizer, it is all a user loads
        tokenizer.save_pretrained(checkpoints(args.output_dir)[-1])
    if ctx.distributed:
        torch.distributed.destroy_process_group()
    return result.losses


if __name__ == "__main__":
    main()
