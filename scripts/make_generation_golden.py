"""Write ``tests/fixtures/golden/generation_cases.npz``: the reference's ``generate`` on a tiny causal LM, one case
per decoding feature (beam search with each ``early_stopping`` mode and a length penalty, ``num_return_sequences``,
repetition penalty, n-gram ban, bad words, ``min_new_tokens`` and ``min_length``, two eos ids, ``max_length``).

The file holds ``param/<name>`` (the weights, canonical names), ``prompts`` / ``attention_mask`` (``[2, 5]``, the
second prompt left-padded with the pad id), and per case ``<case>/settings`` (the keyword settings, as JSON) and
``<case>/sequences`` (the reference's output). Every case passes ``pad_token_id=1``; ``eos_token_id`` 91 and 68
were picked because beams emit them after a few tokens, so that the early-stopping modes give different results.

Usage (needs ``pip install transformers==4.57.6``; the package itself never imports transformers)::

    python scripts/make_generation_golden.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roformer_core import RoFormerConfig  # noqa: E402
from roformer_core.numpy_model import init_params  # noqa: E402
from scripts.make_golden import reference_model  # noqa: E402
from tests.cases import BASE_CONFIG  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "golden" / "generation_cases.npz"
PAD = 1

# All beam cases use 3 beams and every case fits in 15 positions, so a port compiles few step shapes.
CASES: dict[str, dict] = {
    "beam": {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 8},
    "beam_early_stopping_true": {
        "num_beams": 3,
        "num_return_sequences": 3,
        "max_new_tokens": 10,
        "repetition_penalty": 1.3,
        "eos_token_id": 91,
        "early_stopping": True,
    },
    "beam_early_stopping_false": {
        "num_beams": 3,
        "num_return_sequences": 3,
        "max_new_tokens": 10,
        "repetition_penalty": 1.3,
        "eos_token_id": 91,
        "early_stopping": False,
    },
    "beam_early_stopping_never": {
        "num_beams": 3,
        "num_return_sequences": 3,
        "max_new_tokens": 10,
        "repetition_penalty": 1.3,
        "eos_token_id": 68,
        "early_stopping": "never",
        "length_penalty": 2.0,
    },
    "beam_processors": {
        "num_beams": 3,
        "num_return_sequences": 2,
        "max_length": 15,
        "no_repeat_ngram_size": 2,
        "bad_words_ids": [[94], [91, 31]],
        "min_new_tokens": 4,
        "eos_token_id": [91, 68],
        "length_penalty": 0.5,
    },
    "greedy_processors": {
        "max_length": 15,
        "repetition_penalty": 1.3,
        "no_repeat_ngram_size": 3,
        "bad_words_ids": [[18], [77, 91]],
        "min_new_tokens": 5,
        "eos_token_id": 91,
    },
    "greedy_min_new_tokens": {"max_new_tokens": 8, "min_new_tokens": 4, "eos_token_id": 77},
    "greedy_min_length": {"max_new_tokens": 8, "min_length": 9, "eos_token_id": 77},
}


def main() -> None:
    config = {**BASE_CONFIG, "is_decoder": True}
    # the weights of generate.npz (scripts/make_golden.py): greedy continuations that vary
    state = init_params(RoFormerConfig(**config), "causal_lm", seed=11, scale=0.15)
    model = reference_model("causal_lm", config, state)
    prompts = np.random.default_rng(5).integers(2, config["vocab_size"], size=(2, 5), dtype=np.int64)
    mask = np.ones_like(prompts)
    prompts[1, :2], mask[1, :2] = PAD, 0
    record = {f"param/{k}": v for k, v in state.items()}
    record["prompts"], record["attention_mask"] = prompts, mask
    for name, settings in CASES.items():
        with torch.no_grad():
            out = model.generate(
                torch.from_numpy(prompts),
                attention_mask=torch.from_numpy(mask),
                pad_token_id=PAD,
                do_sample=False,
                **settings,
            )
        record[f"{name}/settings"] = np.array(json.dumps(settings, sort_keys=True))
        record[f"{name}/sequences"] = out.numpy()
        print(name, out.shape[1] - prompts.shape[1], "new tokens")
    np.savez_compressed(OUT, **record)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
