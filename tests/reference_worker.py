"""Run a reference (transformers 4.57.6) model in a subprocess, for interop tests.

The reference TF classes need Keras 2 (tf-keras), which cannot share a process with our Keras 3 port, so tests
call this script with ``TF_USE_LEGACY_KERAS=1``::

    python -m tests.reference_worker FRAMEWORK CLASS CKPT_DIR INPUTS.npz OUT.npz [--save DIR] [--from-pt]
        [--also CKPT_DIR2 OUT2.npz]

It loads ``CLASS`` (e.g. ``RoFormerForMaskedLM``; the TF/Flax prefix is added) from ``CKPT_DIR``, runs it on the
arrays of ``INPUTS.npz`` and writes the output fields to ``OUT.npz``; with ``--save`` it also writes the model
in its native format (``tf_model.h5`` / ``flax_model.msgpack`` / ``pytorch_model.bin``). ``--also`` then loads
``CLASS`` from a second directory (its native files, no ``--from-pt``) and writes its outputs too, in the same
process (one import of transformers and its framework for both).
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("framework", choices=["pt", "tf", "flax"])
    parser.add_argument("class_name")
    parser.add_argument("checkpoint")
    parser.add_argument("inputs")
    parser.add_argument("out")
    parser.add_argument("--save")
    parser.add_argument("--from-pt", action="store_true")
    parser.add_argument("--also", nargs=2, metavar=("CHECKPOINT", "OUT"))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import transformers

    prefix = {"pt": "", "tf": "TF", "flax": "Flax"}[args.framework]
    cls = getattr(transformers, prefix + args.class_name)
    inputs = dict(np.load(args.inputs))
    model = cls.from_pretrained(args.checkpoint, **({"from_pt": True} if args.from_pt else {}))
    np.savez(args.out, **_run(args.framework, model, inputs))
    if args.save:
        kwargs = {"safe_serialization": False} if args.framework == "pt" else {}
        model.save_pretrained(args.save, **kwargs)
    if args.also:
        checkpoint, out = args.also
        np.savez(out, **_run(args.framework, cls.from_pretrained(checkpoint), inputs))


def _run(framework: str, model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if framework == "pt":
        import torch

        model.eval()
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items() if hasattr(v, "numpy")}
    out = model(**inputs) if framework == "flax" else model(inputs, training=False)
    return {k: np.asarray(v) for k, v in out.items() if v is not None and not isinstance(v, tuple)}


if __name__ == "__main__":
    main()
