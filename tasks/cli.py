"""Pipelines on the command line: ``roformer fill-mask``, ``roformer similarity`` and ``roformer embed``.

:func:`add_commands` adds them to the ``roformer`` command; :func:`main` runs them on their own.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import FRAMEWORKS
from .feature_extraction import POOLINGS


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint directory or hub id")
    parser.add_argument("--framework", choices=FRAMEWORKS, default="pt", help="framework to run (default: pt)")
    parser.add_argument("--batch-size", type=int, default=8, help="texts per forward pass (default: 8)")
    parser.add_argument(
        "--unilm", action="store_true", help="load with unilm=True (JunnYu's RoFormer-Sim config.json lacks it)"
    )


def _pipeline(args: argparse.Namespace, task: str, **params: Any):
    from .base import pipeline

    return pipeline(
        task,
        model=args.model,
        framework=args.framework,
        batch_size=args.batch_size,
        model_kwargs={"unilm": True} if args.unilm else None,
        **params,
    )


def _fill_mask(args: argparse.Namespace) -> int:
    result = _pipeline(args, "fill-mask", top_k=args.top_k)(args.text)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    rows_per_mask = [result] if result and isinstance(result[0], dict) else result
    for number, rows in enumerate(rows_per_mask, 1):
        if len(rows_per_mask) > 1:
            print(f"[MASK] {number}:")
        for row in rows:
            print(f"{row['score']:.4f}\t{row['token_str']}\t{row['sequence']}")
    return 0


def _similarity(args: argparse.Namespace) -> int:
    if len(args.texts) < 2:
        raise ValueError("give at least two texts to compare")
    pipe = _pipeline(args, "sentence-similarity", pooling=args.pooling or "mean")
    pooling = args.pooling or ("pooler" if pipe.config.add_pooling_layer else "mean")
    matrix = pipe(args.texts, pooling=pooling)
    if args.json:
        print(json.dumps(matrix))
        return 0
    for text, row in zip(args.texts, matrix):
        print("\t".join(f"{v:.4f}" for v in row) + f"\t{text}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    lines = [line.rstrip("\r\n") for line in sys.stdin]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ValueError("no text on standard input: give one text per line")
    pipe = _pipeline(args, "feature-extraction", return_tensors=True)
    pooling = args.pooling or ("pooler" if pipe.config.add_pooling_layer else "mean")
    vectors = np.stack(pipe(lines, pooling=pooling, normalize=args.normalize)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    sys.stdout.buffer.write(buffer.getvalue())
    sys.stdout.buffer.flush()
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fill-mask``, ``similarity`` and ``embed`` to a command's subparsers; each sets ``func`` (args -> exit
    status)."""
    fill = subparsers.add_parser(
        "fill-mask", help="predict the tokens at [MASK]", description="Print the most likely tokens at each [MASK]."
    )
    _common(fill)
    fill.add_argument("text", help="a text with at least one [MASK]")
    fill.add_argument("--top-k", type=int, default=5, help="tokens per mask (default: 5)")
    fill.add_argument("--json", action="store_true", help="print the pipeline's result as JSON")
    fill.set_defaults(func=_guarded("fill-mask", _fill_mask))

    similarity = subparsers.add_parser(
        "similarity",
        help="cosine similarities of texts (RoFormer-Sim)",
        description="Print the cosine matrix of the texts' normalized sentence vectors (a RoFormer-Sim checkpoint's "
        "pooler; --pooling for other encoders).",
    )
    _common(similarity)
    similarity.add_argument("texts", nargs="+", help="two or more texts")
    similarity.add_argument("--json", action="store_true", help="print the matrix as JSON")
    similarity.add_argument(
        "--pooling",
        choices=POOLINGS,
        help="sentence vector: the model's pooler (default when it has one, as RoFormer-Sim), else the mean of "
        "its token vectors (or cls: the first token's)",
    )
    similarity.set_defaults(func=_guarded("similarity", _similarity))

    embed = subparsers.add_parser(
        "embed",
        help="one vector per input line, as .npy on stdout",
        description="Read texts from stdin (one per line, blank lines skipped) and write a float32 [N, E] .npy to "
        "stdout: roformer embed MODEL < lines.txt > vectors.npy",
    )
    _common(embed)
    embed.add_argument(
        "--pooling",
        choices=POOLINGS,
        help="how a text becomes one vector (default: pooler if the model has one, else mean)",
    )
    embed.add_argument("--normalize", action="store_true", help="scale each vector to unit length")
    embed.set_defaults(func=_guarded("embed", _embed))


def _guarded(command: str, run):
    """``run`` with its errors as one line on stderr and exit status 1."""

    def guarded(args: argparse.Namespace) -> int:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            return run(args)
        except (ValueError, TypeError, OSError) as err:
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"roformer {command}: error: {message}", file=sys.stderr)
            return 1

    return guarded


def main(argv: Sequence[str] | None = None) -> int:
    """Run one pipeline command (``fill-mask``, ``similarity``, ``embed``); returns the exit status."""
    parser = argparse.ArgumentParser(prog="roformer", description="RoFormer task pipelines.")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
