"""The model classes every port provides: their names, inputs that carry labels, and output fields."""

from __future__ import annotations

from dataclasses import dataclass

#: State-dict prefix of the encoder inside every head model (the bare model has none).
BASE_PREFIX = "roformer."


@dataclass(frozen=True)
class HeadSpec:
    """One model class.

    Attributes:
        name: short name used by tests and the CLI (``"masked_lm"``).
        class_suffix: class name after ``RoFormer`` (``"ForMaskedLM"``); ports add ``TF`` / ``Flax`` in front.
        output_class: name of the output class in :mod:`roformer_core.outputs`.
        output_fields: output field names in the reference's order (the tuple order with ``return_dict=False``);
            ``pooler_output`` (models with a pooler: RoFormer-Sim) sits where JunnYu's ``roformer`` package puts
            it, and is absent, like every None field, from the outputs of models without one.
        label_args: forward arguments that carry training targets.
        num_labels: the label count the class forces on its config (question answering: start and end), or None.
    """

    name: str
    class_suffix: str
    output_class: str
    output_fields: tuple[str, ...]
    label_args: tuple[str, ...]
    num_labels: int | None = None

    def adapt_config(self, config) -> None:
        """Apply this class's fixed label count to ``config`` in place (the reference's QA constructor sets
        ``num_labels = 2`` on the config it is given; every port, the converter and verify do the same here)."""
        if self.num_labels is not None:
            config.num_labels = self.num_labels

    @property
    def main_outputs(self) -> tuple[str, ...]:
        """The prediction fields (``logits``; ``start_logits, end_logits``; ``last_hidden_state``): what
        ``predict``, serving and verification return, without the loss, cache, hidden states or attentions."""
        return tuple(f for f in self.output_fields if f not in _AUXILIARY_OUTPUTS)

    @property
    def class_name(self) -> str:
        return f"RoFormer{self.class_suffix}"

    @property
    def prefix(self) -> str:
        """State-dict prefix of the encoder in this class."""
        return "" if self.name == "model" else BASE_PREFIX


_CLASSIFIER_FIELDS = ("loss", "logits", "pooler_output", "hidden_states", "attentions")
# pooler_output counts as auxiliary: only models with a pooler have it
_AUXILIARY_OUTPUTS = frozenset(
    {"loss", "pooler_output", "past_key_values", "hidden_states", "attentions", "cross_attentions"}
)

MODEL = HeadSpec(
    "model",
    "Model",
    "BaseModelOutputWithPastAndCrossAttentions",
    ("last_hidden_state", "pooler_output", "past_key_values", "hidden_states", "attentions", "cross_attentions"),
    (),
)
MASKED_LM = HeadSpec("masked_lm", "ForMaskedLM", "MaskedLMOutput", _CLASSIFIER_FIELDS, ("labels",))
CAUSAL_LM = HeadSpec(
    "causal_lm",
    "ForCausalLM",
    "CausalLMOutputWithCrossAttentions",
    ("loss", "logits", "pooler_output", "past_key_values", "hidden_states", "attentions", "cross_attentions"),
    ("labels",),
)
SEQUENCE_CLASSIFICATION = HeadSpec(
    "sequence_classification",
    "ForSequenceClassification",
    "SequenceClassifierOutput",
    _CLASSIFIER_FIELDS,
    ("labels",),
)
MULTIPLE_CHOICE = HeadSpec(
    "multiple_choice", "ForMultipleChoice", "MultipleChoiceModelOutput", _CLASSIFIER_FIELDS, ("labels",)
)
TOKEN_CLASSIFICATION = HeadSpec(
    "token_classification", "ForTokenClassification", "TokenClassifierOutput", _CLASSIFIER_FIELDS, ("labels",)
)
QUESTION_ANSWERING = HeadSpec(
    "question_answering",
    "ForQuestionAnswering",
    "QuestionAnsweringModelOutput",
    ("loss", "start_logits", "end_logits", "pooler_output", "hidden_states", "attentions"),
    ("start_positions", "end_positions"),
    num_labels=2,
)

#: Every model class, in the reference's order. Shared tests are parametrized over this tuple.
HEADS: tuple[HeadSpec, ...] = (
    MODEL,
    MASKED_LM,
    CAUSAL_LM,
    SEQUENCE_CLASSIFICATION,
    MULTIPLE_CHOICE,
    TOKEN_CLASSIFICATION,
    QUESTION_ANSWERING,
)
HEADS_BY_NAME: dict[str, HeadSpec] = {head.name: head for head in HEADS}
HEADS_BY_CLASS: dict[str, HeadSpec] = {head.class_name: head for head in HEADS}


def get_head(name: str) -> HeadSpec:
    """Look a head up by short name (``"masked_lm"``) or class name (``"RoFormerForMaskedLM"``)."""
    for prefix in ("TF", "Flax"):
        if name.startswith(prefix + "RoFormer"):
            name = name[len(prefix) :]
    head = HEADS_BY_NAME.get(name) or HEADS_BY_CLASS.get(name)
    if head is None:
        raise ValueError(f"unknown head {name!r}; known: {', '.join(HEADS_BY_NAME)}")
    return head
