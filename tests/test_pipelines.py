"""Task pipelines (``roformer_tasks``) used as a user uses them: against transformers' pipelines on the same
checkpoint directory, in every framework against PyTorch, batched against one-by-one, on the command line, and on
bad input."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from roformer_conversion import SAMPLE_CHECKPOINT
from roformer_core import RoFormerConfig, save_checkpoint
from roformer_core.numpy_model import init_params
from roformer_core.variants import variant_config
from roformer_tasks import pipeline
from roformer_tasks.cli import main
from tests.tolerances import ATOL

TOL = ATOL["float32"]
TINY = {
    "vocab_size": 129,  # the sample checkpoint's vocabulary
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
}
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
TEXTS = ["今天天气非常好。", "我们去公园散步吧", "永和服装饰品有限公司", "好"]
MASKED = ["今天[MASK]气非常好。", "我们去公园[MASK]步吧", "[MASK]", "北京[MASK]很好，我们去公园[MASK]步。"]


def _checkpoint(root: Path, name: str, config: RoFormerConfig, head: str, seed: int) -> Path:
    directory = save_checkpoint(root / name, config, init_params(config, head, seed=seed, scale=0.2))
    for name in TOKENIZER_FILES:
        shutil.copy(SAMPLE_CHECKPOINT / name, directory / name)
    return directory


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> dict[str, Path]:
    """Tiny checkpoints with the sample's tokenizer: a masked LM, a 3-label classifier, a decoder, a Sim model."""
    root = tmp_path_factory.mktemp("pipelines")
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    return {
        "mlm": _checkpoint(root, "mlm", RoFormerConfig(**TINY), "masked_lm", 1),
        "cls": _checkpoint(root, "cls", RoFormerConfig(**TINY, id2label=labels), "sequence_classification", 2),
        "gpt": _checkpoint(root, "gpt", RoFormerConfig(**TINY, is_decoder=True), "causal_lm", 5),
        "sim": _checkpoint(root, "sim", variant_config("sim", **TINY), "causal_lm", 4),
    }


@pytest.fixture(scope="module")
def pt(ckpt) -> dict[str, Any]:
    """One PyTorch pipeline per task, shared by the module's tests."""
    return {
        "fill-mask": pipeline("fill-mask", model=ckpt["mlm"]),
        "feature-extraction": pipeline("feature-extraction", model=ckpt["mlm"]),
        "text-classification": pipeline("text-classification", model=ckpt["cls"]),
        "text-generation": pipeline("text-generation", model=ckpt["gpt"]),
        "sentence-similarity": pipeline("sentence-similarity", model=ckpt["sim"]),
        "paraphrase": pipeline("paraphrase", model=ckpt["sim"]),
    }


def assert_close(got: Any, expected: Any, path: str = "result") -> None:
    """Equal structures (same keys, tokens, texts and labels); floats within the float32 tolerance."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), f"{path}: {got} != {expected}"
        for key in expected:
            assert_close(got[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(expected), f"{path}: {got} != {expected}"
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(got, float) and abs(got - expected) <= TOL, f"{path}: {got} != {expected}"
    else:
        assert type(got) is type(expected) and got == expected, f"{path}: {got!r} != {expected!r}"


def _transformers(task: str, directory: Path):
    transformers = pytest.importorskip("transformers")
    return transformers.pipeline(task, model=str(directory), framework="pt")


# ---------------------------------------------------------------------------------------------- vs transformers


def test_fill_mask_equals_transformers(ckpt, pt) -> None:
    reference = _transformers("fill-mask", ckpt["mlm"])
    ours = pt["fill-mask"]
    for text in MASKED:  # one mask, a lone mask, two masks (a list per mask)
        assert_close(ours(text, top_k=3), reference(text, top_k=3))
    assert_close(ours(MASKED[:2]), reference(MASKED[:2]))
    assert_close(ours(MASKED[:1]), reference(MASKED[:1]))  # a one-text list comes back unwrapped, as there
    targets = ["天", "公园", "rotary", "好"]
    assert_close(ours(MASKED[0], targets=targets), reference(MASKED[0], targets=targets))


def test_feature_extraction_equals_transformers(ckpt, pt) -> None:
    reference = _transformers("feature-extraction", ckpt["mlm"])
    ours = pt["feature-extraction"]
    expected = reference(TEXTS)
    got = ours(TEXTS)
    assert_close(got, expected)
    vectors = ours(TEXTS[0], pooling="mean", return_tensors=True)
    np.testing.assert_allclose(vectors, np.mean(expected[0][0], axis=0), atol=TOL)
    np.testing.assert_allclose(ours(TEXTS[0], pooling="cls"), expected[0][0][0], atol=TOL)


def test_text_classification_equals_transformers(ckpt, pt) -> None:
    reference = _transformers("text-classification", ckpt["cls"])
    ours = pt["text-classification"]
    pair = {"text": TEXTS[0], "text_pair": TEXTS[1]}
    for call in (
        {},
        {"top_k": None},
        {"top_k": 2},
        {"function_to_apply": "sigmoid", "top_k": None},
        {"function_to_apply": "none"},
    ):
        assert_close(ours(TEXTS[0], **call), reference(TEXTS[0], **call))
        assert_close(ours(TEXTS, **call), reference(TEXTS, **call))
        assert_close(ours(pair, **call), reference(pair, **call))
    assert {r["label"] for r in ours(TEXTS[0], top_k=None)} == {"negative", "neutral", "positive"}


def test_text_classification_applies_sigmoid_for_multi_label(ckpt, tmp_path) -> None:
    directory = shutil.copytree(ckpt["cls"], tmp_path / "multi")
    RoFormerConfig.from_pretrained(directory, problem_type="multi_label_classification").save_pretrained(directory)
    reference = _transformers("text-classification", directory)
    got = pipeline("text-classification", model=directory)(TEXTS, top_k=None)
    assert_close(got, reference(TEXTS, top_k=None))
    assert sum(r["score"] for r in got[0]) > 1.05  # independent sigmoids, not a softmax


def test_text_generation_greedy_equals_transformers(ckpt, pt) -> None:
    reference = _transformers("text-generation", ckpt["gpt"])
    for text in TEXTS[:2]:
        for call in ({}, {"return_full_text": False}):
            expected = reference(text, max_new_tokens=6, do_sample=False, **call)
            assert pt["text-generation"](text, max_new_tokens=6, do_sample=False, **call) == expected
    sampled = pt["text-generation"](TEXTS[0], max_new_tokens=4, num_return_sequences=3, seed=1, top_k=0)
    assert len(sampled) == 3 and all(s["generated_text"].startswith(TEXTS[0]) for s in sampled)
    assert sampled == pt["text-generation"](TEXTS[0], max_new_tokens=4, num_return_sequences=3, seed=1, top_k=0)


# ---------------------------------------------------------------------------------------------- Sim tasks


def test_sentence_similarity_is_the_cosine_of_pooled_vectors(pt) -> None:
    sim = pt["sentence-similarity"]
    vectors = np.stack([pt["paraphrase"].runner(_encoded(sim, t))["pooler_output"][0] for t in TEXTS])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    matrix = sim(TEXTS)
    np.testing.assert_allclose(matrix, unit @ unit.T, atol=TOL)
    hits = sim(TEXTS[0], corpus=TEXTS[1:], top_k=2)
    order = np.argsort(-(unit[1:] @ unit[0]))[:2]
    assert [h["corpus_id"] for h in hits] == order.tolist()
    assert [h["text"] for h in hits] == [TEXTS[1 + i] for i in order]
    np.testing.assert_allclose([h["score"] for h in hits], (unit[1:] @ unit[0])[order], atol=TOL)
    assert sim(TEXTS[:2], corpus=TEXTS[2:]) == [sim(TEXTS[0], corpus=TEXTS[2:]), sim(TEXTS[1], corpus=TEXTS[2:])]


def test_sentence_similarity_of_an_encoder_without_pooler_averages_tokens(ckpt, pt) -> None:
    """pooling="mean" / "cls": the cosine of feature-extraction's pooled vectors (a V1 encoder has no pooler)."""
    with pytest.raises(ValueError, match="no pooler.*pass pooling='mean' or 'cls'"):
        pipeline("sentence-similarity", model=ckpt["mlm"])
    sim = pipeline("sentence-similarity", model=ckpt["mlm"], pooling="mean")
    features = pt["feature-extraction"]
    for pooling in ("mean", "cls"):
        unit = np.stack([features(t, pooling=pooling, normalize=True, return_tensors=True) for t in TEXTS])
        np.testing.assert_allclose(sim(TEXTS, pooling=pooling), unit @ unit.T, atol=TOL)
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        sim(TEXTS, pooling="max")


def _encoded(pipe, text: str) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[None] for k, v in pipe.tokenizer(text).items()}


def test_paraphrase_ranks_sampled_candidates_by_cosine(pt) -> None:
    para, sim = pt["paraphrase"], pt["sentence-similarity"]
    found = para(TEXTS[1], n=6, k=4, max_new_tokens=5, seed=0)
    assert found == para(TEXTS[1], n=6, k=4, max_new_tokens=5, seed=0)  # seeded
    assert 1 <= len(found) <= 4 and len({f["text"] for f in found}) == len(found)
    scores = [f["score"] for f in found]
    assert scores == sorted(scores, reverse=True) and TEXTS[1] not in [f["text"] for f in found]
    expected = sim(TEXTS[1], corpus=[f["text"] for f in found])
    np.testing.assert_allclose(scores, [h["score"] for h in sorted(expected, key=lambda h: h["corpus_id"])], atol=TOL)


# ---------------------------------------------------------------------------------------------- batching


def test_batches_come_back_in_input_order(ckpt, pt) -> None:
    texts = [TEXTS[3], TEXTS[0], TEXTS[2], TEXTS[3] + TEXTS[1], TEXTS[1]]  # mixed lengths, unsorted
    masked = [MASKED[2], MASKED[0], MASKED[3], MASKED[1]]
    batched = pipeline("feature-extraction", model=ckpt["mlm"], batch_size=2, pooling="mean")
    assert_close(batched(texts), [batched(t) for t in texts])
    assert_close(batched(texts), [pt["feature-extraction"](t, pooling="mean") for t in texts])
    fill = pipeline("fill-mask", model=ckpt["mlm"], batch_size=2, progress=True)
    assert_close(fill(masked), [pt["fill-mask"](t) for t in masked])


# ---------------------------------------------------------------------------------------------- every framework

# (task, checkpoint, head of the model object, call)
FRAMEWORK_CASES = [
    ("fill-mask", "mlm", "masked_lm", lambda p: p(MASKED, top_k=4)),
    ("feature-extraction", "mlm", "model", lambda p: p(TEXTS, pooling="mean")),
    ("text-classification", "cls", "sequence_classification", lambda p: p(TEXTS, top_k=None)),
    ("sentence-similarity", "sim", "causal_lm", lambda p: [p(TEXTS), p(TEXTS[0], corpus=TEXTS)]),
    ("paraphrase", "sim", "causal_lm", lambda p: p(TEXTS[0], n=4, k=4, max_new_tokens=3, seed=3)),
    ("text-generation", "sim", "causal_lm", lambda p: p(TEXTS[1], max_new_tokens=3, do_sample=False)),
]


@pytest.fixture(scope="module")
def models(ckpt):
    """Model objects per (framework, checkpoint, head), loaded once for the module."""
    cache: dict[tuple[str, str, str], Any] = {}

    def get(framework: str, name: str, head: str):
        if (framework, name, head) not in cache:
            from roformer_conversion.verify import FRAMEWORKS
            from roformer_core import get_head

            module, prefix = FRAMEWORKS[framework]
            port = pytest.importorskip(module)
            cls = getattr(port, prefix + get_head(head).class_name)
            cache[framework, name, head] = cls.from_pretrained(ckpt[name])
        return cache[framework, name, head]

    return get


@pytest.mark.slow  # over 10 s: a TensorFlow and a Flax build of four models, Flax compiles, generate loops
@pytest.mark.parametrize("framework", ["tf", "flax"])
def test_every_task_gives_the_same_results_in_every_framework(framework, ckpt, models) -> None:
    tokenizer = ckpt["mlm"]
    for task, name, head, call in FRAMEWORK_CASES:
        expected = call(pipeline(task, model=models("pt", name, head), tokenizer=tokenizer))
        got = call(pipeline(task, model=models(framework, name, head), tokenizer=tokenizer))
        assert_close(got, expected, f"{task} [{framework}]")


@pytest.mark.slow  # over 10 s: an ONNX export
def test_onnx_runs_the_exported_graph_once_cached(ckpt, pt, tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("ROFORMER_CACHE", str(tmp_path))
    onnx = pipeline("fill-mask", model=ckpt["mlm"], framework="onnx", batch_size=3)
    assert_close(onnx(MASKED, top_k=4), pt["fill-mask"](MASKED, top_k=4))
    (exported,) = tmp_path.rglob("*.onnx")
    assert exported.name == "masked-lm.onnx"
    stamp = exported.stat().st_mtime_ns
    again = pipeline("fill-mask", model=ckpt["mlm"], framework="onnx")  # from the cache: no new export
    assert list(tmp_path.rglob("*.onnx")) == [exported] and exported.stat().st_mtime_ns == stamp
    assert_close(again(MASKED[0]), pt["fill-mask"](MASKED[0]))


# ---------------------------------------------------------------------------------------------- command line


def test_cli_fill_mask_and_similarity(ckpt, pt, capsys) -> None:
    assert main(["fill-mask", str(ckpt["mlm"]), MASKED[0], "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = pt["fill-mask"](MASKED[0], top_k=2)
    assert lines == [f"{r['score']:.4f}\t{r['token_str']}\t{r['sequence']}" for r in expected]
    assert main(["similarity", str(ckpt["sim"]), *TEXTS[:3], "--json"]) == 0

    np.testing.assert_allclose(json.loads(capsys.readouterr().out), pt["sentence-similarity"](TEXTS[:3]), atol=TOL)


def test_cli_embed_writes_npy_to_stdout(ckpt, pt, monkeypatch, capsysbinary) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(TEXTS[:3]) + "\n\n"))
    assert main(["embed", str(ckpt["sim"]), "--normalize", "--batch-size", "2"]) == 0
    vectors = np.load(io.BytesIO(capsysbinary.readouterr().out))
    assert vectors.shape == (3, TINY["hidden_size"]) and vectors.dtype == np.float32
    # the Sim checkpoint has a pooler: its normalized pooled vectors, whose products are the similarity matrix
    np.testing.assert_allclose(vectors @ vectors.T, pt["sentence-similarity"](TEXTS[:3]), atol=TOL)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fill-mask", "{mlm}", "no mask here"], "roformer fill-mask: error: fill-mask: no [MASK] in 'no mask here'"),
        (
            ["similarity", "{mlm}", "a", "b", "--pooling", "pooler"],
            "roformer similarity: error: sentence-similarity: the model has no pooler",
        ),
        (["fill-mask", "{missing}", "[MASK]"], "roformer fill-mask: error: model "),
    ],
)
def test_cli_errors_are_one_line(argv, message, ckpt, capsys, tmp_path) -> None:
    argv = [a.format(mlm=ckpt["mlm"], missing=tmp_path / "missing") for a in argv]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith(message)


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_input_names_what_to_pass(ckpt, pt, models) -> None:
    fill, tc = pt["fill-mask"], pt["text-classification"]
    cases = [
        (lambda: fill(""), ValueError, "fill-mask: got an empty text; pass a non-empty string"),
        (lambda: fill([]), ValueError, "fill-mask: got an empty list; pass a text or a non-empty list of texts"),
        (lambda: fill("今天天气"), ValueError, "fill-mask: no [MASK] in '今天天气'; write [MASK] where"),
        (lambda: fill(3), TypeError, "fill-mask: expected a str or a list of str, got int"),
        (lambda: fill(MASKED[0], topk=3), TypeError, "fill-mask got unknown option(s) topk; it takes: "),
        (lambda: tc({"txt": "a"}), ValueError, "text-classification: a pair is a dict with the keys 'text'"),
        (lambda: pt["sentence-similarity"]("one"), ValueError, "sentence-similarity: pass a list of at least two"),
        (lambda: pipeline("summarization", model=ckpt["mlm"]), ValueError, "unknown task 'summarization'; choose"),
        (lambda: pipeline("fill-mask", model=ckpt["mlm"], framework="mx"), ValueError, "unknown framework 'mx'"),
        (
            lambda: pipeline("fill-mask", model=models("pt", "mlm", "model"), tokenizer=ckpt["mlm"]),
            ValueError,
            "this task needs a RoFormerForMaskedLM model; got RoFormerModel",
        ),
        (lambda: pipeline("fill-mask", model=models("pt", "mlm", "masked_lm")), ValueError, "a model object has no"),
        (
            lambda: pipeline("sentence-similarity", model=ckpt["mlm"]),
            ValueError,
            "sentence-similarity: the model has no pooler",
        ),
        (lambda: pipeline("text-generation", model=ckpt["mlm"]), ValueError, "text-generation needs a decoder"),
        (lambda: pipeline("paraphrase", model=ckpt["gpt"]), ValueError, "paraphrase: the model has no pooler"),
        (lambda: pipeline("fill-mask", model=ckpt["mlm"], batch_size=0), ValueError, "batch_size must be a positive"),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as caught:
            call()
        assert str(caught.value).startswith(message), str(caught.value)
