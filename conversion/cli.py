"""Command lines: ``roformer-convert`` and ``roformer`` (``roformer verify``, ``roformer convert``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

CONVERT_EPILOG = """\
source formats (detected from the files in SRC):
  config.json + model.safetensors            canonical (reference PyTorch names)
  config.json + model.safetensors.index.json sharded safetensors
  config.json + pytorch_model.bin[.index.json]  read with weights_only=True (no pickled code runs)
  config.json + tf_model.h5                  the reference's TensorFlow layout
  config.json + flax_model.msgpack           the reference's Flax layout
  bert_config.json + bert_model.ckpt.*       original ZhuiyiTechnology / bert4keras checkpoint (needs TensorFlow)

targets (--to):
  pt    config.json + model.safetensors   (RoFormer*.from_pretrained in transformers and in every port;
        --max-shard-size shards it, --pytorch-bin writes pytorch_model.bin instead)
  tf    config.json + tf_model.h5         (TFRoFormer*.from_pretrained in transformers 4.57 and roformer_tf)
  flax  config.json + flax_model.msgpack  (FlaxRoFormer*.from_pretrained in transformers 4.57 and roformer_flax)

Tokenizer files (vocab.txt, tokenizer.json, ...) are copied along. DST is built beside itself and renamed into
place, so a failed conversion leaves nothing under DST.

examples:
  roformer-convert ./roformer_chinese_base ./roformer_tf --to tf
  roformer-convert ./chinese_roformer_L-12_H-768_A-12 ./converted --to pt --dtype float16
"""


def _convert_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from .convert import DTYPES, TARGETS

    parser.add_argument("src", help="source checkpoint directory")
    parser.add_argument("dst", help="destination directory (must not exist unless --force)")
    parser.add_argument("--to", required=True, choices=TARGETS, help="target framework layout")
    parser.add_argument("--dtype", choices=DTYPES, help="cast floating tensors (default: keep)")
    parser.add_argument("--force", action="store_true", help="replace an existing destination")
    parser.add_argument(
        "--max-shard-size",
        type=_size,
        metavar="SIZE",
        help="with --to pt: shard model.safetensors into files of at most SIZE (e.g. 500MB, 2GB) plus an index",
    )
    parser.add_argument(
        "--pytorch-bin", action="store_true", help="with --to pt: write pytorch_model.bin instead of safetensors"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return parser


def _size(text: str) -> int:
    """``"500MB"`` / ``"2GB"`` / ``"1048576"`` -> bytes."""
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit) and upper[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return int(float(upper[: -len(unit)]) * factor)
    if upper.isdigit():
        return int(upper)
    raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 500MB or 2GB)")


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import ConversionError, convert_checkpoint

    try:
        report = convert_checkpoint(
            args.src,
            args.dst,
            to=args.to,
            dtype=args.dtype,
            force=args.force,
            progress=not args.quiet,
            max_shard_size=args.max_shard_size,
            pytorch_bin=args.pytorch_bin,
        )
    except ConversionError as err:
        print(f"roformer-convert: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("roformer-convert: interrupted; nothing was written", file=sys.stderr)
        return 130
    if not args.quiet:
        print(
            f"converted {report.source_format} {report.head} ({report.tensors} tensors) -> {report.destination} "
            f"[{report.target}]"
        )
        for name in report.dropped:
            print(f"  dropped (RoFormer has no such module): {name}")
    return 0


def convert_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``roformer-convert``."""
    parser = argparse.ArgumentParser(
        prog="roformer-convert",
        description="Convert a RoFormer checkpoint between PyTorch, TensorFlow and Flax layouts.",
        epilog=CONVERT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return _run_convert(_convert_parser(parser).parse_args(argv))


def _run_verify(args: argparse.Namespace) -> int:
    from .verify import format_table, passed, verify

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    frameworks = tuple(args.frameworks.split(",")) if args.frameworks else ("pt", "tf", "flax")
    try:
        rows = verify(args.checkpoint, frameworks)
    except (OSError, ValueError) as err:
        print(f"roformer verify: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    print(format_table(rows))
    ok = passed(rows)
    print("\nOK: every framework matches within 1e-5" if ok else "\nFAILED: see the table above")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``roformer``."""
    parser = argparse.ArgumentParser(prog="roformer", description="RoFormer for PyTorch, TensorFlow and Flax.")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser(
        "verify",
        help="run a checkpoint in every installed framework and compare",
        description="Load a checkpoint (default: a tiny one shipped with the package) in every installed framework, "
        "run every head on inputs made with our tokenizer, print max abs differences against a float64 numpy "
        "oracle and timings; exit 1 if any difference exceeds 1e-5.",
    )
    verify.add_argument("checkpoint", nargs="?", help="checkpoint directory (default: the shipped sample)")
    verify.add_argument("--frameworks", help="comma-separated subset of pt,tf,flax")
    convert = sub.add_parser(
        "convert",
        help="convert a checkpoint (same as roformer-convert)",
        epilog=CONVERT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _convert_parser(convert)
    args = parser.parse_args(argv)
    return _run_verify(args) if args.command == "verify" else _run_convert(args)


if __name__ == "__main__":
    sys.exit(main())
