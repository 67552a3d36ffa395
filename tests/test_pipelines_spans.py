"""The token-classification and question-answering pipelines against transformers' pipelines of the same names.

Both sides load the same tiny checkpoint directories, saved by transformers with a fixed seed on the test
vocabulary (tests/fixtures/tokenizer/golden.json): a RoFormerForTokenClassification with B-/I- labels and a
RoFormerForQuestionAnswering. Results must have the same keys, tokens, words and character spans, and scores within
the float32 tolerance, for every aggregation strategy, for texts and contexts cut into overlapping windows, and in
every framework. Needs transformers and torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roformer_core import RoFormerTokenizerFast
from roformer_tasks import pipeline

from .tolerances import ATOL

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

VOCAB = json.loads((Path(__file__).parent / "fixtures" / "tokenizer" / "golden.json").read_text(encoding="utf-8"))[
    "vocab"
]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
# English wordpieces ("un ##aff ##able"), a lower-cased word, jieba words kept whole and characters, punctuation
TEXTS = [
    "Hello world，北京大学的unaffable研究员cafe说hello",
    "我们一起去公园散步吧。中华人民共和国成立于北京，the world",
]
LONG_TEXT = (
    "北京大学的研究员发现深度模型在多任务上取得突破，hello world unaffable cafe说我们一起去公园散步吧。中华人民共和国"
)
CONTEXT = (
    "我们一起去公园散步吧，顺便讨论一下机器学习的最新进展。北京大学的研究员发现深度模型在多任务上取得突破。"
    "hello world unaffable cafe"
)
QUESTION = "北京大学的研究员发现了什么？"
TOLERANCE = ATOL["float32"]
# transformers' pipeline crashes past the model's 64 positions; ours caps its default max_seq_len (384) there
MODEL_POSITIONS = 64


def _save_tiny(model_class: Any, directory: Path, vocab_file: Path, **config: Any) -> Path:
    torch.manual_seed(0)
    settings = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    # a wide initialization spreads the logits, so that no two labels or spans tie within float noise
    cfg = transformers.RoFormerConfig(
        vocab_size=len(VOCAB), max_position_embeddings=MODEL_POSITIONS, initializer_range=0.5, **settings, **config
    )
    model_class(cfg).eval().save_pretrained(directory)
    transformers.RoFormerTokenizerFast(vocab_file=str(vocab_file)).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spans")
    vocab_file = root / "vocab.txt"
    vocab_file.write_text("".join(token + "\n" for token in VOCAB), encoding="utf-8")
    return {
        "token": _save_tiny(
            transformers.RoFormerForTokenClassification,
            root / "token",
            vocab_file,
            id2label=dict(enumerate(LABELS)),
            label2id={label: i for i, label in enumerate(LABELS)},
        ),
        "qa": _save_tiny(transformers.RoFormerForQuestionAnswering, root / "qa", vocab_file),
    }


@pytest.fixture(scope="module")
def reference(checkpoints: dict[str, Path]) -> dict[str, Any]:
    return {
        "token": transformers.pipeline("token-classification", model=str(checkpoints["token"]), framework="pt"),
        "qa": transformers.pipeline("question-answering", model=str(checkpoints["qa"]), framework="pt"),
    }


@pytest.fixture(scope="module")
def ours(checkpoints: dict[str, Path]) -> dict[str, Any]:
    return {
        "token": pipeline("token-classification", model=checkpoints["token"], framework="pt"),
        "qa": pipeline("question-answering", model=checkpoints["qa"], framework="pt"),
    }


def assert_same(ours: Any, theirs: Any) -> None:
    """Same structure, keys, words and spans; scores within the float32 tolerance."""
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), (ours, theirs)
        for mine, other in zip(ours, theirs):
            assert_same(mine, other)
        return
    assert list(ours) == list(theirs), (ours, theirs)
    assert {k: v for k, v in ours.items() if k != "score"} == {k: v for k, v in theirs.items() if k != "score"}
    assert abs(float(ours["score"]) - float(theirs["score"])) <= TOLERANCE, (ours, theirs)


def test_offsets_match_the_reference_tokenizer(checkpoints: dict[str, Path]) -> None:
    """Spans come from our tokenizer's offsets: the same character offsets as transformers' on mixed text."""
    theirs = transformers.RoFormerTokenizerFast.from_pretrained(checkpoints["token"])
    mine = RoFormerTokenizerFast.from_pretrained(checkpoints["token"])
    for text in [*TEXTS, LONG_TEXT, "Café UNAFFABLE 中国人民"]:
        expected = theirs(text, return_offsets_mapping=True)
        got = mine(text, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"]
        assert [tuple(pair) for pair in got["offset_mapping"]] == expected["offset_mapping"]


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_matches_transformers(strategy: str, ours: dict, reference: dict) -> None:
    for ignore_labels in (None, []):
        got = ours["token"](TEXTS, aggregation_strategy=strategy, ignore_labels=ignore_labels)
        assert_same(got, reference["token"](TEXTS, aggregation_strategy=strategy, ignore_labels=ignore_labels))
    # the words of one text are grouped: "un ##aff ##able" is one entity whatever each piece's label
    if strategy in ("first", "average", "max"):
        words = [e["word"] for e in ours["token"](TEXTS[0], aggregation_strategy=strategy, ignore_labels=[])]
        assert any("unaffable" in word for word in words)


def test_token_classification_windows_match_transformers(checkpoints: dict[str, Path], ours: dict) -> None:
    """A tokenizer limited to 16 tokens: truncation by default, overlapping windows merged with ``stride``."""
    directory = checkpoints["token"]
    theirs = transformers.pipeline(
        "token-classification",
        model=str(directory),
        tokenizer=transformers.RoFormerTokenizerFast.from_pretrained(directory, model_max_length=16),
        framework="pt",
    )
    mine = pipeline(
        "token-classification",
        model=ours["token"].runner.model,
        tokenizer=RoFormerTokenizerFast.from_pretrained(directory, model_max_length=16),
    )
    assert len(mine.task.preprocess(mine.tokenizer, LONG_TEXT, aggregation_strategy="first", stride=4)) > 3
    assert_same(mine(LONG_TEXT, ignore_labels=[]), theirs(LONG_TEXT, ignore_labels=[]))
    for strategy, ignore_labels in (("simple", None), ("first", []), ("average", None), ("max", [])):
        got = mine(LONG_TEXT, aggregation_strategy=strategy, stride=4, ignore_labels=ignore_labels)
        assert_same(got, theirs(LONG_TEXT, aggregation_strategy=strategy, stride=4, ignore_labels=ignore_labels))
    assert got[-1]["end"] == len(LONG_TEXT)  # the last window reaches the end of the text


QA_CASES = {
    "default": {},
    "top_k": {"top_k": 3},
    "long_context_with_stride": {"max_seq_len": 32, "doc_stride": 8, "top_k": 5, "handle_impossible_answer": True},
    "tokens_not_words": {"align_to_words": False, "top_k": 4, "max_seq_len": 40, "doc_stride": 10},
    "max_answer_len": {"max_answer_len": 2, "top_k": 3},
}


@pytest.mark.parametrize("case", QA_CASES)
def test_question_answering_matches_transformers(case: str, ours: dict, reference: dict) -> None:
    params = QA_CASES[case]
    item = {"question": QUESTION, "context": CONTEXT}
    got = ours["qa"](item, **params)
    expected = reference["qa"](question=QUESTION, context=CONTEXT, **{"max_seq_len": MODEL_POSITIONS, **params})
    assert_same(got, expected)
    for answer in got if isinstance(got, list) else [got]:
        assert CONTEXT[answer["start"] : answer["end"]] == answer["answer"]
    if case == "long_context_with_stride":
        assert len(ours["qa"].task.preprocess(ours["qa"].tokenizer, item, **params)) >= 3
        assert {"score", "start", "end", "answer"} == set(got[0]) and len(got) == 5
    if case == "max_answer_len":
        assert all(len(ours["qa"].tokenizer.tokenize(answer["answer"])) <= 2 for answer in got)


def test_question_answering_batch_equals_one_by_one(ours: dict) -> None:
    items = [
        {"question": QUESTION, "context": CONTEXT},
        {"question": "hello", "context": "hello world unaffable cafe"},
        {"question": "谁发现了深度模型", "context": CONTEXT},
    ]
    one_by_one = [ours["qa"](item, max_seq_len=32, doc_stride=8) for item in items]
    assert_same(ours["qa"](items, max_seq_len=32, doc_stride=8), one_by_one)
    # transformers' keyword form: one item, lists zipped, a question paired with every context
    qa = ours["qa"]
    assert_same(qa(question=QUESTION, context=CONTEXT, max_seq_len=32, doc_stride=8), one_by_one[0])
    questions, contexts = [item["question"] for item in items], [item["context"] for item in items]
    assert_same(qa(question=questions, context=contexts, max_seq_len=32, doc_stride=8), one_by_one)
    paired = qa(question=QUESTION, context=[CONTEXT, CONTEXT], max_seq_len=32, doc_stride=8)
    assert_same(paired, [one_by_one[0], one_by_one[0]])
    with pytest.raises(ValueError, match="missing context="):
        qa(question=QUESTION)
    with pytest.raises(ValueError, match="differ in length"):
        qa(question=questions, context=contexts[:2])


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["tf", "flax"])
def test_every_framework_gives_the_same_spans(framework: str, checkpoints: dict[str, Path], ours: dict) -> None:
    token = pipeline("token-classification", model=checkpoints["token"], framework=framework)
    for strategy in ("none", "average"):
        assert_same(token(TEXTS, aggregation_strategy=strategy), ours["token"](TEXTS, aggregation_strategy=strategy))
    qa = pipeline("question-answering", model=checkpoints["qa"], framework=framework)
    params = QA_CASES["long_context_with_stride"]
    item = {"question": QUESTION, "context": CONTEXT}
    assert_same(qa(item, **params), ours["qa"](item, **params))


def test_bad_input_says_what_to_pass(checkpoints: dict[str, Path], ours: dict) -> None:
    token, qa = ours["token"], ours["qa"]
    with pytest.raises(ValueError, match="empty text; pass a non-empty string"):
        token("")
    with pytest.raises(ValueError, match="empty list"):
        token([])
    with pytest.raises(TypeError, match="expected a str"):
        token(["ok", 3])
    with pytest.raises(ValueError, match="unknown aggregation_strategy 'longest'; choose one of none, simple"):
        token(TEXTS[0], aggregation_strategy="longest")
    with pytest.raises(ValueError, match='stride merges .* pass aggregation_strategy="simple"'):
        token(TEXTS[0], stride=4)
    with pytest.raises(ValueError, match="pass a stride below 62"):
        token(TEXTS[0], aggregation_strategy="simple", stride=62)
    with pytest.raises(TypeError, match=r"ignore_labels must be a list of labels such as \['O'\]"):
        token(TEXTS[0], ignore_labels="O")

    with pytest.raises(ValueError, match='empty list; pass {"question": ..., "context": ...}'):
        qa([])
    with pytest.raises(ValueError, match="the question is empty; pass a non-empty string"):
        qa({"question": " ", "context": CONTEXT})
    with pytest.raises(ValueError, match="the context is empty"):
        qa({"question": QUESTION, "context": ""})
    with pytest.raises(ValueError, match='takes {"question": str, "context": str}'):
        qa(QUESTION)
    with pytest.raises(ValueError, match="the question is 67 tokens long.* pass a shorter question"):
        qa({"question": "中国" * 67, "context": CONTEXT})
    with pytest.raises(ValueError, match="max_seq_len=100 is longer than the model's 64 positions"):
        qa({"question": QUESTION, "context": CONTEXT}, max_seq_len=100)
    with pytest.raises(ValueError, match="doc_stride=8 must be smaller than the 8 context tokens"):
        qa({"question": QUESTION, "context": CONTEXT}, max_seq_len=24, doc_stride=8)
    with pytest.raises(ValueError, match="top_k must be an int >= 1, got 0"):
        qa({"question": QUESTION, "context": CONTEXT}, top_k=0)

    # a model of another head cannot run the task
    with pytest.raises(ValueError, match="needs a RoFormerForQuestionAnswering model"):
        pipeline("question-answering", model=token.runner.model, tokenizer=checkpoints["token"])
    with pytest.raises(ValueError, match="needs a RoFormerForTokenClassification model"):
        pipeline("token-classification", model=qa.runner.model, tokenizer=checkpoints["qa"])
    # a checkpoint directory of another head: its QA weights would be random, so it is refused
    with pytest.raises(ValueError, match="has no RoFormerForQuestionAnswering weights .*qa_outputs"):
        pipeline("question-answering", model=checkpoints["token"])
