"""Conversion time and peak resident memory for a base-size checkpoint (~110M parameters, 12 x 768, vocab 50000).

Writes a random base-size ``model.safetensors`` checkpoint, then converts it with ``roformer-convert`` to each
target in a fresh process and reports wall time and that process's peak resident memory (ru_maxrss) next to the
checkpoint size. When transformers is installed, the same run also times the reference's own route for
comparison: ``RoFormerForMaskedLM.from_pretrained`` + ``save_pretrained`` (PyTorch to PyTorch). Usage::

    python benchmarks/bench_convert.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REFERENCE = """
import sys, transformers
model = transformers.RoFormerForMaskedLM.from_pretrained(sys.argv[1])
model.save_pretrained(sys.argv[2])
"""


def _fresh_peak(cmd: list[str]) -> tuple[float, float]:
    # RUSAGE_CHILDREN is a maximum over all children so far: measure each command from its own parent process
    import json

    wrapper = (
        "import resource, subprocess, sys, time, json;"
        "t = time.perf_counter(); r = subprocess.run(sys.argv[1:]);"
        "print(json.dumps([time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,"
        " r.returncode]))"
    )
    result = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True)
    seconds, peak, code = json.loads(result.stdout.strip().splitlines()[-1])
    if code:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="where to write the checkpoints (default: a temporary directory)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_convert_"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "base"
    if not (src / "model.safetensors").is_file():
        from roformer_core import RoFormerConfig, save_checkpoint
        from roformer_core.numpy_model import init_params

        config = RoFormerConfig(architectures=["RoFormerForMaskedLM"])  # the defaults are the base model
        save_checkpoint(src, config, init_params(config, "masked_lm", seed=0))
    size = (src / "model.safetensors").stat().st_size / 2**20
    convert = str(Path(sys.executable).parent / "roformer-convert")
    print(f"checkpoint: {size:.0f} MiB ({size * 2**20 / 4 / 1e6:.0f}M float32 values)")
    print(f"{'route':<34} {'seconds':>8} {'peak MiB':>9} {'peak / size':>12}")
    for target in ("pt", "tf", "flax"):
        dst = work / f"out_{target}"
        shutil.rmtree(dst, ignore_errors=True)
        seconds, peak = _fresh_peak([convert, str(src), str(dst), "--to", target, "--quiet"])
        print(f"{'roformer-convert --to ' + target:<34} {seconds:8.1f} {peak:9.0f} {peak / size:12.2f}")
    try:
        import transformers  # noqa: F401
    except ImportError:
        return
    dst = work / "out_reference"
    shutil.rmtree(dst, ignore_errors=True)
    seconds, peak = _fresh_peak([sys.executable, "-c", REFERENCE, str(src), str(dst)])
    print(f"{'reference from_pretrained+save':<34} {seconds:8.1f} {peak:9.0f} {peak / size:12.2f}")


if __name__ == "__main__":
    main()
