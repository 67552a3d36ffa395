"""Write the golden fixtures the backend tests compare against.

Runs the reference implementation (transformers 4.57.6, PyTorch, CPU, fp32, eval mode) on every shared case of
``tests/cases.py`` and stores, per case, one ``tests/fixtures/golden/<case>.npz`` with:

* ``encoder/<name>``: encoder weights (canonical names without the ``roformer.`` prefix), shared by the heads;
* ``<head>/param/<name>``: the head's own weights;
* ``<head>/in/<name>``: inputs and targets;
* ``<head>/out/<field>``: reference outputs (``hidden_states``/``attentions``/``cross_attentions`` stacked on a
  new first axis);

plus ``tests/fixtures/golden/generate.npz`` with greedy ``generate`` ids of a tiny causal LM.

Usage (needs ``pip install transformers==4.57.6``; the package itself never imports transformers)::

    python scripts/make_golden.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import transformers  # noqa: E402

from roformer_core import RoFormerConfig, get_head  # noqa: E402
from roformer_core.schema import model_schema, untie  # noqa: E402
from tests.cases import CASES, canonical_params, make_inputs, make_params  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "golden"
STACKED = ("hidden_states", "attentions", "cross_attentions")


def reference_model(head: str, config_dict: dict, state: dict[str, np.ndarray]) -> torch.nn.Module:
    """The reference class for a head, with our weights loaded (every parameter checked)."""
    spec = get_head(head)
    cls = getattr(transformers, spec.class_name)
    model = cls(transformers.RoFormerConfig(**config_dict)).eval()
    full = untie(model_schema(RoFormerConfig(**config_dict), spec), state)
    tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in full.items()}
    table_key = f"{spec.prefix}encoder.embed_positions.weight"
    tensors[table_key] = model.state_dict()[table_key]  # the reference's own table, at its own length
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise SystemExit(f"{head}: reference state dict mismatch: missing={missing} unexpected={unexpected}")
    return model


def run_case(case) -> dict[str, np.ndarray]:
    record: dict[str, np.ndarray] = {}
    ref_config = {**case.full_config(), **case.reference_config}
    for head in case.heads:
        encoder, own = make_params(case, head)
        for k, v in encoder.items():
            record[f"encoder/{k}"] = v
        for k, v in own.items():
            record[f"{head}/param/{k}"] = v
        inputs = make_inputs(case, head)
        for k, v in inputs.items():
            record[f"{head}/in/{k}"] = v
        model = reference_model(head, ref_config, canonical_params(head, encoder, own))
        kwargs = {k: torch.from_numpy(v) for k, v in inputs.items()}
        with torch.no_grad():
            out = model(**kwargs, output_hidden_states=True, output_attentions=True, return_dict=True)
        for field, value in out.items():
            if field == "past_key_values":
                continue
            if field in STACKED:
                value = torch.stack(list(value))
            record[f"{head}/out/{field}"] = value.detach().numpy()
    return record


def generation_record() -> dict[str, np.ndarray]:
    """Greedy generation by the reference causal LM: unpadded prompts and left-padded prompts."""
    from tests.cases import BASE_CONFIG

    config = {**BASE_CONFIG, "is_decoder": True}
    ours = RoFormerConfig(**config)
    from roformer_core.numpy_model import init_params

    # a scale and seed whose greedy continuations vary (at scale 0.2 both rows collapse to one token in 3 steps)
    state = init_params(ours, "causal_lm", seed=11, scale=0.15)
    model = reference_model("causal_lm", config, state)
    rng = np.random.default_rng(5)
    prompts = rng.integers(1, config["vocab_size"], size=(2, 5), dtype=np.int64)
    padded = prompts.copy()
    padded_mask = np.ones_like(padded)
    padded[1, :2] = 0
    padded_mask[1, :2] = 0  # second prompt is 3 tokens, left-padded
    record = {f"param/{k}": v for k, v in state.items()}
    record["prompts"] = prompts
    record["padded_prompts"] = padded
    record["padded_mask"] = padded_mask
    with torch.no_grad():
        record["greedy"] = model.generate(
            torch.from_numpy(prompts), max_new_tokens=8, do_sample=False, pad_token_id=0
        ).numpy()
        record["greedy_padded"] = model.generate(
            torch.from_numpy(padded),
            attention_mask=torch.from_numpy(padded_mask),
            max_new_tokens=8,
            do_sample=False,
            pad_token_id=0,
        ).numpy()
    return record


def main() -> None:
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        path = OUT / f"{case.name}.npz"
        np.savez_compressed(path, **run_case(case))
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")
    path = OUT / "generate.npz"
    np.savez_compressed(path, **generation_record())
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
