"""Command lines: ``roformer-convert`` and ``roformer`` (``verify``, ``convert``, ``models``, ``export`` and the task
commands ``fill-mask``, ``similarity``, ``embed`` of :mod:`roformer_tasks.cli`)."""

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
  pt        config.json + model.safetensors  (RoFormer*.from_pretrained in transformers and in every port;
            --max-shard-size shards it, --pytorch-bin writes pytorch_model.bin instead)
  tf        config.json + tf_model.h5        (TFRoFormer*.from_pretrained in transformers 4.57 and roformer_tf)
  flax      config.json + flax_model.msgpack (FlaxRoFormer*.from_pretrained in transformers 4.57 and roformer_flax)
  original  bert_config.json + bert_model.ckpt.* (bert4keras' layout of the released checkpoints; needs TensorFlow)

members of the family (--variant; bert_config.json does not say which one a checkpoint is):
  v1   RoFormer word / char (the default for an original checkpoint with norm weights and biases)
  v2   RoFormer-V2: no biases, weightless RMS norms, tied LM head (detected from the variables)
  sim  RoFormer-Sim: V1 + linear pooler + UniLM mask (sets unilm, is_decoder, add_pooling_layer,
       pooler_activation=linear); a checkpoint without bert/pooler/dense is an error
  gpt  RoFormer GPT-char (bert4keras application="lm"; sets is_decoder)
  The member's config fields are written to config.json, so the result loads with no overrides; a member that
  the variables contradict (v1 on a V2 checkpoint, ...) is an error. --variant applies to every source format.

Tokenizer files (vocab.txt, tokenizer.json, ...) are copied along. DST is built beside itself and renamed into
place, so a failed conversion leaves nothing under DST.

examples:
  roformer-convert ./roformer_chinese_base ./roformer_tf --to tf
  roformer-convert ./chinese_roformer_L-12_H-768_A-12 ./converted --to pt --dtype float16
  roformer-convert ./chinese_roformer-v2-char_L-12_H-768_A-12 ./v2 --to pt
  roformer-convert ./chinese_roformer-sim-char-ft_L-12_H-768_A-12 ./sim --to pt --variant sim
  roformer-convert ./chinese_roformer-gpt-char_L-12_H-768_A-12 ./gpt --to flax --variant gpt
"""


def _convert_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from .convert import DTYPES, TARGETS
    from .original import VARIANTS

    parser.add_argument("src", help="source checkpoint directory, or a hub id (owner/name)")
    parser.add_argument("dst", help="destination directory (must not exist unless --force)")
    parser.add_argument("--to", required=True, choices=TARGETS, help="target framework layout")
    parser.add_argument("--dtype", choices=DTYPES, help="cast floating tensors (default: keep)")
    parser.add_argument(
        "--variant", choices=VARIANTS, help="the member of the RoFormer family (default: as the source says)"
    )
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
    from .original import member_name

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
            variant=args.variant,
        )
    except ConversionError as err:
        print(f"roformer-convert: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("roformer-convert: interrupted; nothing was written", file=sys.stderr)
        return 130
    if not args.quiet:
        member = f" {member_name(report.variant)}," if report.variant else ""
        print(
            f"converted {report.source_format},{member} {report.head} ({report.tensors} tensors) -> "
            f"{report.destination} [{report.target}]"
        )
        for name in report.dropped:
            print(f"  dropped (the model has no such module): {name}")
        if any(name.startswith("bert/pooler/") for name in report.dropped):
            print("  (a RoFormer-Sim checkpoint? --variant sim keeps its pooler)")
    return 0


def convert_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``roformer-convert``."""
    parser = argparse.ArgumentParser(
        prog="roformer-convert",
        description="Convert a RoFormer checkpoint between the PyTorch, TensorFlow, Flax and bert4keras layouts.",
        epilog=CONVERT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return _run_convert(_convert_parser(parser).parse_args(argv))


def _run_verify(args: argparse.Namespace) -> int:
    from .verify import FRAMEWORKS, check_frameworks, format_report, passed, verify

    try:
        frameworks = check_frameworks(args.frameworks) if args.frameworks is not None else tuple(FRAMEWORKS)
    except ValueError as err:  # a usage error: exit status 2 like argparse's own, before anything is loaded
        print(f"roformer verify: error: {err}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        report = verify(args.checkpoint, frameworks)
    except (OSError, ValueError) as err:
        print(f"roformer verify: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    print(format_report(report))
    ok = passed(report)
    print("\nOK: every framework matches within 1e-5" if ok else "\nFAILED: see the table above")
    return 0 if ok else 1


def _run_models(args: argparse.Namespace) -> int:
    from roformer_core.known_checkpoints import KNOWN_CHECKPOINTS

    print(f"{'id':<44}{'member':<8}{'lang':<6}{'size':<7}{'vocab':<11}applied when loaded / note")
    for repo_id, known in KNOWN_CHECKPOINTS.items():
        applied = ", ".join(f"{name}={value!r}" for name, value in known.overrides.items())
        notes = "; ".join(text for text in (applied, known.note) if text)
        print(f"{repo_id:<44}{known.member:<8}{known.language:<6}{known.size:<7}{known.vocabulary:<11}{notes}".rstrip())
    return 0


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
    verify.add_argument(
        "checkpoint", nargs="?", help="checkpoint directory or hub id (owner/name; default: the shipped sample)"
    )
    verify.add_argument("--frameworks", help="comma-separated subset of pt,tf,flax")
    convert = sub.add_parser(
        "convert",
        help="convert a checkpoint (same as roformer-convert)",
        epilog=CONVERT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _convert_parser(convert)
    sub.add_parser(
        "models",
        help="list the released checkpoints loadable by hub id",
        description="The released RoFormer checkpoints on the Hugging Face hub, with the config fields applied when "
        "one is loaded by its id (roformer_core.known_checkpoints).",
    )
    from roformer_tasks.cli import add_commands as add_task_commands

    from .export import add_commands as add_export_commands

    add_export_commands(sub)  # roformer export
    add_task_commands(sub)  # roformer fill-mask / similarity / embed
    args = parser.parse_args(argv)
    runners = {"verify": _run_verify, "convert": _run_convert, "models": _run_models}
    return runners[args.command](args) if args.command in runners else args.func(args)


if __name__ == "__main__":
    sys.exit(main())
