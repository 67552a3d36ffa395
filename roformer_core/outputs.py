"""Model output containers shared by the ports: attribute access, dict access, and the reference's tuples."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .heads import HEADS, HeadSpec


class ModelOutput(OrderedDict):
    """Ordered outputs of a model call.

    Fields left as ``None`` are not stored, exactly like the reference: ``out.hidden_states`` is ``None`` when not
    requested, ``out.keys()`` lists the present fields, ``out[0]`` / ``out.to_tuple()`` index the present fields in
    order, and ``out["logits"]`` reads by name.
    """

    fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            raise TypeError(f"{type(self).__name__} takes keyword arguments only")
        unknown = set(kwargs) - set(self.fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        super().__init__((name, kwargs[name]) for name in self.fields if kwargs.get(name) is not None)

    def __getattr__(self, name: str) -> Any:
        if name in type(self).fields:
            return self.get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in type(self).fields:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        if value is None:
            self.pop(name, None)
        else:
            # keep the declared order
            items = {**self, name: value}
            self.clear()
            super().update((k, items[k]) for k in type(self).fields if k in items)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(key)
        return self.to_tuple()[key]

    def to_tuple(self) -> tuple[Any, ...]:
        """The present fields in declared order (the reference's ``return_dict=False`` tuple)."""
        return tuple(self.values())

    def __reduce__(self):  # pickling keeps the class
        return (_rebuild_output, (type(self).__name__, dict(self)))


def _make_output_class(head: HeadSpec) -> type[ModelOutput]:
    doc = f"Outputs of ``{head.class_name}``: {', '.join(head.output_fields)}."
    return type(head.output_class, (ModelOutput,), {"fields": head.output_fields, "__doc__": doc})


OUTPUT_CLASSES: dict[str, type[ModelOutput]] = {head.output_class: _make_output_class(head) for head in HEADS}


def output_class_for(head: HeadSpec) -> type[ModelOutput]:
    """The output class of a head."""
    return OUTPUT_CLASSES[head.output_class]


def _rebuild_output(class_name: str, values: dict[str, Any]) -> ModelOutput:
    return OUTPUT_CLASSES[class_name](**values)


BaseModelOutputWithPastAndCrossAttentions = OUTPUT_CLASSES["BaseModelOutputWithPastAndCrossAttentions"]
MaskedLMOutput = OUTPUT_CLASSES["MaskedLMOutput"]
CausalLMOutputWithCrossAttentions = OUTPUT_CLASSES["CausalLMOutputWithCrossAttentions"]
SequenceClassifierOutput = OUTPUT_CLASSES["SequenceClassifierOutput"]
MultipleChoiceModelOutput = OUTPUT_CLASSES["MultipleChoiceModelOutput"]
TokenClassifierOutput = OUTPUT_CLASSES["TokenClassifierOutput"]
QuestionAnsweringModelOutput = OUTPUT_CLASSES["QuestionAnsweringModelOutput"]
