"""text-generation: continue a prompt with a causal LM through the port's ``generate``, as transformers'
``TextGenerationPipeline`` does."""

from __future__ import annotations

from typing import Any

import numpy as np

from roformer_core.generation import GenerationConfig

from .base import Task, as_feature, check_text

#: transformers' text-generation defaults, used where neither the call nor the model's generation config sets a value
PIPELINE_DEFAULTS = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}


class TextGenerationTask(Task):
    """``pipe("prompt", max_new_tokens=20, do_sample=False)`` -> ``[{"generated_text": ...}]``, one dict per
    returned sequence (``num_return_sequences``). The prompt is encoded as transformers encodes it
    (``[CLS] prompt [SEP]``); ``seed`` makes sampling reproducible within a framework (each framework draws from its
    own generator)."""

    name = "text-generation"
    head = "causal_lm"

    def check_model(self, config) -> None:
        if not config.is_decoder:
            raise ValueError(
                "text-generation needs a decoder checkpoint (config.is_decoder true, e.g. RoFormer GPT-char or "
                "RoFormer-Sim); this one is an encoder: use fill-mask or feature-extraction"
            )

    def preprocess(self, tokenizer, item, *, prefix: str = "", add_special_tokens: bool = True, **_: Any):
        encoded = tokenizer(prefix + check_text(self.name, item), add_special_tokens=add_special_tokens)
        return [as_feature(encoded)]

    def run(
        self,
        pipe,
        features,
        *,
        max_new_tokens: int | None = None,
        max_length: int | None = None,
        do_sample: bool | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        num_return_sequences: int | None = None,
        num_beams: int | None = None,
        repetition_penalty: float | None = None,
        no_repeat_ngram_size: int | None = None,
        min_new_tokens: int | None = None,
        eos_token_id: int | list[int] | None = None,
        seed: int | None = None,
        **_: Any,
    ):
        """One ``generate`` call per prompt; ``seed`` seeds each call's generator (``seed + i`` for prompt i)."""
        given = {
            "max_new_tokens": max_new_tokens,
            "max_length": max_length,
            "do_sample": do_sample,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "num_return_sequences": num_return_sequences,
            "num_beams": num_beams,
            "repetition_penalty": repetition_penalty,
            "no_repeat_ngram_size": no_repeat_ngram_size,
            "min_new_tokens": min_new_tokens,
            "eos_token_id": eos_token_id,
        }
        settings = {**self._defaults(pipe, given), **{k: v for k, v in given.items() if v is not None}}
        outputs = []
        for index, (feature,) in enumerate(features):
            inputs = {k: feature[k][None] for k in ("input_ids", "attention_mask") if k in feature}
            sequences = pipe.runner.generate(inputs, None if seed is None else seed + index, **settings)
            outputs.append([{"sequences": np.asarray(sequences)}])
        return outputs

    @staticmethod
    def _defaults(pipe, given: dict[str, Any]) -> dict[str, Any]:
        """transformers' priority: the call, then the model's ``generation_config.json``, then
        :data:`PIPELINE_DEFAULTS` (max_new_tokens only when the model sets no ``max_length`` of its own)."""
        model_config = getattr(pipe.runner.model, "generation_config", None)
        stock = GenerationConfig()
        defaults = {}
        for name, value in PIPELINE_DEFAULTS.items():
            if model_config is not None and getattr(model_config, name) != getattr(stock, name):
                continue
            defaults[name] = value
        if model_config is not None and model_config.max_length != stock.max_length and given["max_length"] is None:
            defaults.pop("max_new_tokens", None)
        if given["max_length"] is not None and given["max_new_tokens"] is None:
            defaults.pop("max_new_tokens", None)
        return defaults

    def postprocess(
        self,
        tokenizer,
        item,
        features,
        outputs,
        *,
        return_full_text: bool = True,
        clean_up_tokenization_spaces: bool = True,
        **_: Any,
    ):
        """``[{"generated_text": prompt + continuation}]`` (the continuation alone with return_full_text=False)."""
        prompt_ids = features[0]["input_ids"]
        sequences = outputs[0]["sequences"]
        # the ports return right-padded prompts left-aligned; one unpadded prompt per call keeps its place
        prompt_length = len(tokenizer.decode(prompt_ids, True, clean_up_tokenization_spaces))
        records = []
        for sequence in sequences:
            text = tokenizer.decode(sequence, True, clean_up_tokenization_spaces)[prompt_length:]
            records.append({"generated_text": item + text if return_full_text else text})
        return records
