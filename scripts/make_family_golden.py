"""Write the RoFormer family golden fixtures (V1, V2, Sim, GPT-char) from both oracles.

The two oracles are the authors' bert4keras 0.11.5 and JunnYu's PyTorch package ``roformer`` 0.4.3 (see
docs/variants.md and the behavioural reference, section D). Each runs in its own subprocess, in an environment
outside the repository that this script creates when missing (under ``$ROFORMER_ORACLES``, default
``~/.cache/roformer-oracles``):

* ``bert4keras/``: ``pip install --no-deps --target`` of bert4keras 0.11.5, run by this project's Python (it needs
  TensorFlow and tf-keras) with ``TF_KERAS=1 TF_USE_LEGACY_KERAS=1``; LayerNormalization's default epsilon is set to
  1e-12, the value the released checkpoints were trained with (0.11.5 defaults to 1e-7).
* ``junnyu/``: a virtual environment with ``roformer==0.4.3``, ``transformers==4.50.3`` and ``tokenizers`` 0.21,
  installed with ``--no-deps`` on top of this project's environment (a ``.pth`` file adds its site-packages, for
  torch and numpy), so that no second torch is downloaded.

For each variant the bert4keras model is built with seeded random weights (every kernel, bias and norm weight
drawn), run on a fixed batch (padding, mixed segments), and written as an original checkpoint
(``bert_model.ckpt.*`` + ``bert_config.json``, eagerly, since ``save_weights_as_checkpoint`` needs a TF1 session).
Its variables, renamed to our canonical names, are loaded into JunnYu's model, which is run on the same batch and
(V2, Sim) saved in its own layout (``pytorch_model.bin`` + ``config.json``). Outputs:

* ``tests/fixtures/golden/family/<variant>.npz``: ``config`` (our config.json text), ``param/<canonical name>``,
  ``in/<name>``, ``bert4keras/<field>`` and ``junnyu/<field>`` (``hidden_states`` stacked on a first axis of
  num_layers + 1; ``zero/...``: the same inputs with all-zero token types; ``quirk/...``: JunnYu run as its users
  run it where that differs from the right answer, kept to document the difference);
* ``tests/fixtures/family/<variant>_bert4keras/``: the original checkpoint;
* ``tests/fixtures/family/<variant>_junnyu/``: JunnYu's checkpoint (V2 and Sim).

With ``--junnyu-heads`` the script leaves every file above untouched and writes only
``tests/fixtures/golden/family/junnyu_heads_<variant>.npz`` (V1, V2, Sim): JunnYu's seven classes (RoFormerModel,
ForMaskedLM, ForCausalLM, ForSequenceClassification, ForMultipleChoice, ForTokenClassification,
ForQuestionAnswering) on seeded random weights, with targets, and their outputs and losses (layout:
:func:`run_junnyu_heads`).

Usage (from the repository root, in the project's virtual environment; takes about a minute)::

    python scripts/make_family_golden.py
    python scripts/make_family_golden.py --junnyu-heads
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ORACLES = Path(os.environ.get("ROFORMER_ORACLES", Path.home() / ".cache" / "roformer-oracles"))
BERT4KERAS_DIR = ORACLES / "bert4keras"
JUNNYU_VENV = ORACLES / "junnyu"
GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "family"
CHECKPOINTS = ROOT / "tests" / "fixtures" / "family"
SEED = 1234
NORM_EPS = 1e-12

# The bert_config.json of every variant (hidden_act differs: V2 uses relu).
BERT_CONFIG = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
}

# variant -> (hidden_act, bert4keras build_transformer_model kwargs, our head, JunnYu class or None)
VARIANTS = {
    "v1": ("gelu", {"model": "roformer", "application": "encoder", "with_mlm": "linear"}, "masked_lm"),
    "v2": ("relu", {"model": "roformer_v2", "application": "encoder", "with_mlm": "linear"}, "masked_lm"),
    "sim": (
        "gelu",
        {"model": "roformer", "application": "unilm", "with_pool": "linear", "with_mlm": "linear"},
        "causal_lm",
    ),
    "gpt": ("gelu", {"model": "roformer", "application": "lm", "with_mlm": "linear"}, "causal_lm"),
}
JUNNYU_SAVED = ("v2", "sim")

# [B=3, L=9]: id 0 is padding (bert4keras masks keys by id != 0); row 2 has the reference's worked-example segments
# [0,0,0,0,1,1,1,0,0] (source, target, two pads of type 0); row 1 one pad.
INPUT_IDS = np.array(
    [
        [2, 15, 27, 33, 41, 52, 66, 78, 3],
        [2, 11, 22, 33, 3, 44, 55, 3, 0],
        [2, 9, 8, 3, 17, 19, 3, 0, 0],
    ],
    dtype=np.int64,
)
TOKEN_TYPE_IDS = np.array(
    [
        [0, 0, 0, 0, 0, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 1, 1, 1, 0, 0],
    ],
    dtype=np.int64,
)


def pip(python: Path | str, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", *args], check=True)


def ensure_oracles() -> Path:
    """Create the two oracle environments if missing; return the JunnYu environment's python."""
    if not (BERT4KERAS_DIR / "bert4keras").is_dir():
        pip(sys.executable, "--target", str(BERT4KERAS_DIR), "bert4keras==0.11.5")
    python = JUNNYU_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(JUNNYU_VENV)], check=True)
        site = subprocess.run(
            [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        project_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
        # appended after the venv's own site-packages: its transformers 4.50.3 shadows the project's 4.57
        Path(site, "zz_project_site.pth").write_text(project_site + "\n")
        pip(python, "roformer==0.4.3", "transformers==4.50.3", "tokenizers>=0.21,<0.22")
    return python


# ---- child 1: bert4keras (run with TF_KERAS=1 TF_USE_LEGACY_KERAS=1) -------------------------------------------


def run_bert4keras(work: Path) -> None:
    import bert4keras.layers
    import tensorflow as tf
    from bert4keras.models import build_transformer_model
    from tensorflow import keras

    init = bert4keras.layers.LayerNormalization.__init__

    def init_with_eps(self, *args, epsilon=None, **kwargs):
        init(self, *args, epsilon=epsilon or NORM_EPS, **kwargs)

    bert4keras.layers.LayerNormalization.__init__ = init_with_eps
    rng = np.random.default_rng(SEED)
    for variant, (act, kwargs, _) in VARIANTS.items():
        out_dir = work / f"{variant}_bert4keras"
        out_dir.mkdir()
        (out_dir / "bert_config.json").write_text(json.dumps({**BERT_CONFIG, "hidden_act": act}, indent=2) + "\n")
        built = build_transformer_model(
            config_path=str(out_dir / "bert_config.json"), return_keras_model=False, **kwargs
        )
        mapping = {k: v for k, v in built.variable_mapping().items() if k in built.layers}
        original: dict[str, np.ndarray] = {}
        for layer_name, names in mapping.items():
            layer = built.layers[layer_name]
            values = []
            for weight, name in zip(layer.trainable_weights, names, strict=True):
                shape = tuple(weight.shape)
                if name.endswith("gamma"):
                    value = 1.0 + 0.1 * rng.standard_normal(shape)
                else:
                    value = 0.1 * rng.standard_normal(shape)
                values.append(value.astype(np.float32))
                original[name] = values[-1]
            layer.set_weights(values)
        with tf.Graph().as_default():
            variables = [tf.compat.v1.Variable(value, name=name) for name, value in original.items()]
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                saver = tf.compat.v1.train.Saver(variables)
                saver.save(session, str(out_dir / "bert_model.ckpt"), write_meta_graph=False)
        (out_dir / "checkpoint").unlink()  # holds an absolute path; readers glob *.ckpt.index
        model = built.model
        layers = ["Embedding-Norm"] + [
            f"Transformer-{n}-FeedForward-Norm" for n in range(BERT_CONFIG["num_hidden_layers"])
        ]
        probe = keras.Model(model.inputs, [*model.outputs, *[model.get_layer(n).output for n in layers]])
        record: dict[str, np.ndarray] = {f"original/{k}": v for k, v in original.items()}
        for tag, types in (("", TOKEN_TYPE_IDS), ("zero/", np.zeros_like(TOKEN_TYPE_IDS))):
            outputs = [np.asarray(o) for o in probe.predict([INPUT_IDS, types], verbose=0)]
            heads, hidden = outputs[: len(model.outputs)], outputs[len(model.outputs) :]
            if kwargs.get("with_pool"):  # bert4keras' order: pooled vector, then the token scores
                record[f"{tag}pooler_output"] = heads.pop(0)
            record[f"{tag}logits"] = heads.pop(0)
            record[f"{tag}hidden_states"] = np.stack(hidden)
        np.savez(work / f"{variant}_bert4keras.npz", **record)


# ---- child 2: JunnYu's roformer 0.4.3 ---------------------------------------------------------------------------


def run_junnyu(work: Path) -> None:
    import roformer
    import torch

    torch.manual_seed(SEED)
    ids = torch.from_numpy(INPUT_IDS)
    padding = (ids != 0).long()
    causal = torch.tril(torch.ones(ids.shape[1], ids.shape[1], dtype=torch.long))

    def unilm(types: torch.Tensor) -> torch.Tensor:
        # written here independently of roformer_core.masks: query i sees key j iff C[j] <= C[i], j not padding
        c = torch.cumsum(types, dim=1)
        return (c[:, None, :] <= c[:, :, None]).long() * padding[:, None, :]

    for variant, (act, _, head) in VARIANTS.items():
        data = np.load(work / f"{variant}_canonical.npz")
        state = {k: torch.from_numpy(data[k]) for k in data.files}
        rms = variant == "v2"
        config = roformer.RoFormerConfig(
            **BERT_CONFIG,
            hidden_act=act,
            embedding_size=BERT_CONFIG["hidden_size"],
            layer_norm_eps=NORM_EPS,
            norm_type="rms_norm" if rms else "layer_norm",
            use_bias=not rms,
            pooler_activation="linear" if variant == "sim" else "tanh",
            is_decoder=head == "causal_lm",
            eos_token_id=3 if head == "causal_lm" else None,
        )
        cls = roformer.RoFormerForMaskedLM if head == "masked_lm" else roformer.RoFormerForCausalLM
        model = cls(config).eval()
        missing, unexpected = model.load_state_dict(state, strict=False)
        allowed = {"roformer.encoder.embed_positions.weight", "cls.predictions.decoder.weight"}
        allowed |= {"cls.predictions.decoder.bias"} if not rms else set()
        if variant == "gpt":  # JunnYu's causal LM always has a pooler; GPT-char has none (its output is unused)
            allowed |= {"roformer.pooler.dense.weight", "roformer.pooler.dense.bias"}
        if unexpected or set(missing) - allowed:
            raise SystemExit(f"{variant}: JunnYu state mismatch: missing={missing} unexpected={unexpected}")
        assert model.cls.predictions.decoder.weight is model.roformer.embeddings.word_embeddings.weight
        types = torch.from_numpy(TOKEN_TYPE_IDS)
        zero = torch.zeros_like(types)
        # (tag, token types, attention mask): JunnYu's 2-D mask is never causal on a pass without a cache, so the
        # UniLM and causal masks go in as explicit 3-D masks
        runs = {"masked_lm": [("", types, padding)]}.get(head)
        if variant == "sim":
            runs = [("", types, unilm(types)), ("zero/", zero, padding), ("quirk/", types, padding)]
        elif variant == "gpt":
            runs = [("", types, causal[None] * padding[:, None, :]), ("quirk/", types, padding)]
        record: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for tag, token_types, mask in runs:
                out = model(
                    input_ids=ids,
                    token_type_ids=token_types,
                    attention_mask=mask,
                    output_hidden_states=True,
                    return_dict=True,
                )
                record[f"{tag}logits"] = out.logits.numpy()
                record[f"{tag}hidden_states"] = torch.stack(out.hidden_states).numpy()
                if variant == "sim":
                    record[f"{tag}pooler_output"] = out.pooler_output.numpy()
        np.savez(work / f"{variant}_junnyu.npz", **record)
        if variant in JUNNYU_SAVED:
            model.save_pretrained(work / f"{variant}_junnyu", safe_serialization=False)


# ---- child 3: JunnYu's seven classes (--junnyu-heads) -------------------------------------------------------------

HEADS_VARIANTS = ("v1", "v2", "sim")
# our head name -> JunnYu's class
JUNNYU_CLASSES = {
    "model": "RoFormerModel",
    "masked_lm": "RoFormerForMaskedLM",
    "causal_lm": "RoFormerForCausalLM",
    "sequence_classification": "RoFormerForSequenceClassification",
    "multiple_choice": "RoFormerForMultipleChoice",
    "token_classification": "RoFormerForTokenClassification",
    "question_answering": "RoFormerForQuestionAnswering",
}
NUM_LABELS = 3
# the config.json keys JunnYu's RoFormerConfig reads (ours use the same names)
JUNNYU_CONFIG_KEYS = (
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
    "rotary_value",
    "use_bias",
    "norm_type",
    "pooler_activation",
    "is_decoder",
    "eos_token_id",
)
# JunnYu's tied state-dict keys -> the key they share storage with (one value drawn, as in our schema)
JUNNYU_TIED = {
    "cls.predictions.decoder.weight": "roformer.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
JUNNYU_TABLE = "roformer.encoder.embed_positions.weight"
# multiple choice [B=2, C=3, L=9]: the rows of INPUT_IDS in two orders
MC_ROWS = ([0, 1, 2], [2, 0, 1])
HEAD_TARGETS = {
    # masked LM: six masked positions, the rest ignored
    "masked_lm": {"labels": np.where(np.isin(np.arange(9), [2, 5])[None] | (INPUT_IDS == 33), INPUT_IDS, -100)},
    # causal LM: the inputs, padding ignored (position t predicts t + 1)
    "causal_lm": {"labels": np.where(INPUT_IDS != 0, INPUT_IDS, -100)},
    "sequence_classification": {"labels": np.array([0, 2, 1], dtype=np.int64)},
    "multiple_choice": {"labels": np.array([1, 2], dtype=np.int64)},
    # token classification: a label at every position, padding included (JunnYu drops padded ones, see below)
    "token_classification": {"labels": (INPUT_IDS * 7 + np.arange(9)) % NUM_LABELS},
    # question answering: the third start lies outside the sequence (clamped to L, the ignored index)
    "question_answering": {
        "start_positions": np.array([1, 3, 20], dtype=np.int64),
        "end_positions": np.array([4, 6, 2], dtype=np.int64),
    },
}


def our_head_configs(variant: str) -> tuple[dict, dict[str, dict]]:
    """The member's config (the sizes of its golden fixture, ``num_labels=3``) and, per JunnYu class, the fields
    our config of that class overrides: a pooler exactly where JunnYu's class has one (RoFormerForCausalLM always,
    with the member's activation; RoFormerModel where the member has one; no other class), and ``is_decoder`` for
    the causal LM."""
    from roformer_core import RoFormerConfig

    golden = np.load(GOLDEN / f"{variant}.npz")
    base = RoFormerConfig.from_dict(json.loads(str(golden["config"])), num_labels=NUM_LABELS)
    overrides = {head: {"add_pooling_layer": False} for head in JUNNYU_CLASSES}
    overrides["model"] = {"add_pooling_layer": base.add_pooling_layer}
    overrides["causal_lm"] = {"add_pooling_layer": True, "is_decoder": True}
    return base.to_dict(), overrides


def draw(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float16 weight: norm weights 1 + 0.1 N(0, 1), the rest 0.1 N(0, 1)."""
    value = rng.standard_normal(shape)
    value = 1.0 + 0.1 * value if name.endswith("LayerNorm.weight") else 0.1 * value
    return value.astype(np.float16)


def run_junnyu_heads(work: Path) -> None:
    """For each member and each of JunnYu's classes: seeded random weights loaded strictly, one fixed batch with
    padding, targets, and the outputs. Writes ``<work>/<variant>_heads.npz``; the parent adds ``config`` (our
    config.json text of the member, ``num_labels=3``) and ``<head>/config`` (the JSON of the fields our config of
    that class overrides, :func:`our_head_configs`) and checks the weights against our schema. Keys:

    * ``param/<name>``: the encoder weights (``roformer.*``, the pooler included), shared by the seven classes
      (the bare model's own names lack the ``roformer.`` prefix, as its state dict does);
      ``<head>/param/<name>``: that class's own weights (LM head, classifiers). Canonical names (= JunnYu's
      state-dict keys, without tied copies and the sinusoidal table). Drawn as float16 values (norm weights
      1 + 0.1 N(0, 1), the rest 0.1 N(0, 1)) and stored as float16 to keep the files small; JunnYu runs them in
      float32, exactly.
    * ``in/<name>``: ``input_ids``, ``token_type_ids``, ``attention_mask`` (our 2-D padding mask), ``[B=3, L=9]``;
      ``multiple_choice/in/<name>``: the same three, ``[B=2, C=3, L=9]``; ``<head>/in/<target>``: ``labels``, or
      ``start_positions`` / ``end_positions``.
    * ``<head>/<run>/<field>``: JunnYu's ``logits`` (``start_logits`` / ``end_logits``, ``last_hidden_state``),
      ``pooler_output`` where its class returns one, and ``loss``. Run ``main``: JunnYu given the mask that states
      our rule (a 3-D causal or UniLM mask where our config is causal or UniLM: its 2-D mask is never causal
      without a cache). Run ``bidirectional``: JunnYu given the 2-D padding mask while our rule is UniLM, where
      its class cannot take a 3-D mask (multiple choice flattens the mask to ``[B * C, L]``; token
      classification's loss indexes ``attention_mask.view(-1)`` by token, so it runs once with the 3-D mask and
      no labels, once with the 2-D mask and the labels).
    """
    import roformer
    import torch

    torch.manual_seed(SEED)
    configs = json.loads((work / "configs.json").read_text())
    for number, variant in enumerate(HEADS_VARIANTS):
        rng = np.random.default_rng([SEED, number])
        shared: dict[str, np.ndarray] = {}

        record: dict[str, np.ndarray] = {}
        for head, class_name in JUNNYU_CLASSES.items():
            ours = {**configs[variant]["config"], **configs[variant][head]}
            config = roformer.RoFormerConfig(
                **{k: ours[k] for k in JUNNYU_CONFIG_KEYS}, num_labels=len(ours["id2label"])
            )
            cls = getattr(roformer, class_name)
            model = cls(config, add_pooling_layer=ours["add_pooling_layer"]) if head == "model" else cls(config)
            model = model.eval()
            template = model.state_dict()
            if head == "model":  # RoFormerModel's keys have no "roformer." prefix
                template = {f"roformer.{k}": v for k, v in template.items()}
            has_pooler = any(k.startswith("roformer.pooler.") for k in template)
            if has_pooler != ours["add_pooling_layer"]:
                raise SystemExit(f"{variant} {head}: JunnYu's pooler ({has_pooler}) is not our config's")
            state: dict[str, np.ndarray] = {}
            for name in template:
                if name == JUNNYU_TABLE or name in JUNNYU_TIED:
                    continue
                if name.startswith("roformer."):
                    if name not in shared:
                        shared[name] = draw(rng, name, tuple(template[name].shape))
                    state[name] = shared[name]
                else:
                    state[name] = draw(rng, name, tuple(template[name].shape))
                    record[f"{head}/param/{name}"] = state[name]
            full = {k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()}
            full |= {k: full[v] for k, v in JUNNYU_TIED.items() if k in template}
            full[JUNNYU_TABLE] = template[JUNNYU_TABLE]
            if head == "model":
                full = {k.removeprefix("roformer."): v for k, v in full.items()}
            model.load_state_dict(full, strict=True)
            base = model if head == "model" else model.roformer
            table = base.encoder.embed_positions
            table.weight = table._init_weight(table.weight)  # the sinusoidal table, as its constructor builds it
            if "cls.predictions.decoder.weight" in template:
                assert model.cls.predictions.decoder.weight is base.embeddings.word_embeddings.weight

            if head == "multiple_choice":
                ids = np.stack([INPUT_IDS[rows] for rows in MC_ROWS])
                types = np.stack([TOKEN_TYPE_IDS[rows] for rows in MC_ROWS])
            else:
                ids, types = INPUT_IDS, TOKEN_TYPE_IDS
            padding = (ids != 0).astype(np.int64)
            targets = HEAD_TARGETS.get(head, {})
            where = f"{head}/in" if head == "multiple_choice" else "in"
            record |= {f"{where}/input_ids": ids, f"{where}/token_type_ids": types, f"{where}/attention_mask": padding}
            record |= {f"{head}/in/{k}": v.astype(np.int64) for k, v in targets.items()}
            # the 3-D mask that states our rule (built here independently of roformer_core.masks)
            length = ids.shape[-1]
            if ours["unilm"]:
                c = np.cumsum(types, axis=-1)
                rule = (c[..., None, :] <= c[..., :, None]).astype(np.int64) * padding[..., None, :]
            elif ours["is_decoder"]:
                rule = np.tril(np.ones((length, length), dtype=np.int64)) * padding[..., None, :]
            else:
                rule = None
            if rule is None:
                runs = [("main", padding, True)]
            elif head == "multiple_choice":
                runs = [("bidirectional", padding, True)]
            elif head == "token_classification":
                runs = [("main", rule, False), ("bidirectional", padding, True)]
            else:
                runs = [("main", rule, True)]
            for run, mask, with_targets in runs:
                kwargs = {k: torch.from_numpy(v.astype(np.int64)) for k, v in targets.items()} if with_targets else {}
                with torch.no_grad():
                    out = model(
                        input_ids=torch.from_numpy(ids),
                        token_type_ids=torch.from_numpy(types),
                        attention_mask=torch.from_numpy(mask),
                        return_dict=True,
                        **kwargs,
                    )
                for field in ("logits", "start_logits", "end_logits", "last_hidden_state", "pooler_output", "loss"):
                    value = getattr(out, field, None)
                    if value is not None:
                        record[f"{head}/{run}/{field}"] = value.numpy()
        record |= {f"param/{k}": v for k, v in shared.items()}
        np.savez(work / f"{variant}_heads.npz", **record)


# ---- parent ------------------------------------------------------------------------------------------------------


def our_config(variant: str) -> dict:
    from roformer_core.variants import variant_config

    act = VARIANTS[variant][0]
    config = variant_config(
        variant,
        **BERT_CONFIG,
        hidden_act=act,
        layer_norm_eps=NORM_EPS,
        eos_token_id=3 if variant in ("sim", "gpt") else None,
    )
    return config.to_dict()


def main() -> None:
    from conversion.original import original_to_canonical
    from roformer_core import RoFormerConfig
    from roformer_core.schema import ROTARY_TABLE, check_state_dict, model_schema

    junnyu_python = ensure_oracles()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "TF_KERAS": "1",
            "TF_USE_LEGACY_KERAS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": str(BERT4KERAS_DIR),
        }
        subprocess.run([sys.executable, __file__, "--bert4keras", str(work)], check=True, env=env)
        canonical: dict[str, dict[str, np.ndarray]] = {}
        for variant, (_, _, head) in VARIANTS.items():
            original = np.load(work / f"{variant}_bert4keras.npz")
            state = {
                original_to_canonical(k.removeprefix("original/")): original[k].T
                if k.endswith("/kernel")
                else original[k]
                for k in original.files
                if k.startswith("original/")
            }
            config = RoFormerConfig.from_dict(our_config(variant))
            schema = [s for s in model_schema(config, head) if s.kind != ROTARY_TABLE]
            canonical[variant] = check_state_dict(schema, state, source=f"bert4keras {variant}")
            np.savez(work / f"{variant}_canonical.npz", **canonical[variant])
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        subprocess.run([str(junnyu_python), __file__, "--junnyu", str(work)], check=True, env=env)

        GOLDEN.mkdir(parents=True, exist_ok=True)
        CHECKPOINTS.mkdir(parents=True, exist_ok=True)
        for variant in VARIANTS:
            b4k = np.load(work / f"{variant}_bert4keras.npz")
            jy = np.load(work / f"{variant}_junnyu.npz")
            record = {"config": np.array(json.dumps(our_config(variant), sort_keys=True))}
            record |= {f"param/{k}": v for k, v in canonical[variant].items()}
            record |= {"in/input_ids": INPUT_IDS, "in/token_type_ids": TOKEN_TYPE_IDS}
            record |= {"in/attention_mask": (INPUT_IDS != 0).astype(np.int64)}
            record |= {f"bert4keras/{k}": b4k[k] for k in b4k.files if not k.startswith("original/")}
            record |= {f"junnyu/{k}": jy[k] for k in jy.files}
            np.savez_compressed(GOLDEN / f"{variant}.npz", **record)
            for kind in ("bert4keras", "junnyu"):
                source, target = work / f"{variant}_{kind}", CHECKPOINTS / f"{variant}_{kind}"
                if source.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                    shutil.copytree(source, target)
    total = sum(p.stat().st_size for d in (GOLDEN, CHECKPOINTS) for p in d.rglob("*") if p.is_file())
    print(f"wrote {GOLDEN} and {CHECKPOINTS}: {total / 1e6:.2f} MB")


def main_junnyu_heads() -> None:
    """Write ``junnyu_heads_<variant>.npz`` (V1, V2, Sim); the other fixtures are left as they are."""
    from roformer_core import RoFormerConfig
    from roformer_core.schema import ROTARY_TABLE, check_state_dict, model_schema

    junnyu_python = ensure_oracles()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        configs = {}
        for variant in HEADS_VARIANTS:
            base, overrides = our_head_configs(variant)
            configs[variant] = {"config": base, **overrides}
        (work / "configs.json").write_text(json.dumps(configs))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        subprocess.run([str(junnyu_python), __file__, "--junnyu-heads-child", str(work)], check=True, env=env)
        for variant in HEADS_VARIANTS:
            data = dict(np.load(work / f"{variant}_heads.npz"))
            shared = {k.removeprefix("param/"): v for k, v in data.items() if k.startswith("param/")}
            base = RoFormerConfig.from_dict(configs[variant]["config"])
            record = {"config": np.array(json.dumps(base.to_dict(), sort_keys=True))}
            for head in JUNNYU_CLASSES:
                overrides = configs[variant][head]
                # JunnYu's keys are our schema's stored names, exactly
                config = base.copy(**overrides)
                schema = [s for s in model_schema(config, head) if s.kind != ROTARY_TABLE]
                own = f"{head}/param/"
                state = {k.removeprefix(own): v for k, v in data.items() if k.startswith(own)}
                # the encoder weights, under the bare model's names there (its state dict has no "roformer.")
                encoder = "" if head == "model" else "roformer."
                state |= {
                    k: shared[f"roformer.{k.removeprefix(encoder)}"]
                    for k in (s.name for s in schema if s.stored and s.name.startswith(encoder))
                    if f"roformer.{k.removeprefix(encoder)}" in shared
                }
                check_state_dict(schema, state, source=f"JunnYu {variant} {head}")
                record[f"{head}/config"] = np.array(json.dumps(overrides, sort_keys=True))
            record |= data
            np.savez_compressed(GOLDEN / f"junnyu_heads_{variant}.npz", **record)
    sizes = {p.name: p.stat().st_size for p in sorted(GOLDEN.glob("junnyu_heads_*.npz"))}
    print(f"wrote {', '.join(f'{k} ({v / 1e3:.0f} kB)' for k, v in sizes.items())}: {sum(sizes.values()) / 1e3:.0f} kB")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bert4keras":
        run_bert4keras(Path(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--junnyu":
        run_junnyu(Path(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--junnyu-heads-child":
        run_junnyu_heads(Path(sys.argv[2]))
    elif sys.argv[1:] == ["--junnyu-heads"]:
        main_junnyu_heads()
    else:
        main()
