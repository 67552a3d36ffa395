"""The pipeline machinery every task shares: loading a model in one framework, batching, and the task protocol.

A task (:class:`Task`) turns one input item into features (numpy, no padding) and the model's outputs for those
features back into the item's result; both steps are numpy only. :class:`Pipeline` sorts every feature of a call by
length, pads them per batch, runs the forward pass of the chosen framework (a :class:`Runner`: PyTorch, TensorFlow,
Flax or ONNX Runtime, imported only when asked), trims the padding off again and hands each item's outputs to the
task, returning the results in input order.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roformer_conversion.verify import FRAMEWORKS as PORTS
from roformer_core import HeadSpec, RoFormerConfig, RoFormerTokenizerFast, get_head, load_checkpoint
from roformer_core.schema import head_owned
from roformer_core.schema import resolve_checkpoint as resolve_weights

#: The frameworks a pipeline runs on: the three ports and ONNX Runtime (on a file from ``roformer export``).
FRAMEWORKS = (*PORTS, "onnx")
#: Inputs a model receives; every other key of a feature stays with the task.
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
#: Task name -> (module, class), imported on first use.
TASKS: dict[str, tuple[str, str]] = {
    "fill-mask": ("roformer_tasks.fill_mask", "FillMaskTask"),
    "feature-extraction": ("roformer_tasks.feature_extraction", "FeatureExtractionTask"),
    "sentence-similarity": ("roformer_tasks.similarity", "SentenceSimilarityTask"),
    "paraphrase": ("roformer_tasks.similarity", "ParaphraseTask"),
    "text-classification": ("roformer_tasks.text_classification", "TextClassificationTask"),
    "token-classification": ("roformer_tasks.token_classification", "TokenClassificationTask"),
    "question-answering": ("roformer_tasks.question_answering", "QuestionAnsweringTask"),
    "text-generation": ("roformer_tasks.text_generation", "TextGenerationTask"),
}
#: Heads whose ``logits`` are one row per sequence rather than one per token.
_SEQUENCE_LEVEL_LOGITS = frozenset({"sequence_classification", "multiple_choice"})
# Flax compiles one program per input shape: batches are padded to batch_size rows and to a multiple of this length.
_FLAX_LENGTH_BUCKET = 16
# lists at least this long show a progress bar unless progress=False
_PROGRESS_MIN_ITEMS = 64


class Task:
    """One task: numpy pre- and post-processing around a model's forward pass.

    A task is built once per pipeline as ``Task(config, **defaults)``; :meth:`params` merges a call's options
    into the defaults and is what :meth:`preprocess`, :meth:`run`, :meth:`postprocess` and :meth:`collect`
    receive. Subclasses set :attr:`name` and :attr:`head` and implement :meth:`preprocess` and
    :meth:`postprocess`; their keyword-only parameters (``top_k=5``, ...) are the task's options. The other
    methods are optional hooks: a task class written without this base only needs ``name``, ``head``,
    ``params``, ``preprocess`` and ``postprocess`` (:class:`Pipeline` falls back to these defaults).

    Args:
        config: the model's config.
        **params: the task's default options.
    """

    name: str
    head: str
    #: heads of a model object the task also accepts (besides :attr:`head`)
    also_accepts: tuple[str, ...] = ()

    def __init__(self, config: RoFormerConfig, **params: Any) -> None:
        self.config = config
        self.check_model(config)
        self.defaults = self._checked(params)

    @classmethod
    def options(cls) -> set[str]:
        """The options the task takes: the keyword-only parameters of its processing methods."""
        names = set()
        for method in (cls.preprocess, cls.run, cls.postprocess, cls.collect):
            for p in inspect.signature(method).parameters.values():
                if p.kind is p.KEYWORD_ONLY:
                    names.add(p.name)
        return names

    def _checked(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - self.options())
        if unknown:
            raise TypeError(
                f"{self.name} got unknown option(s) {', '.join(unknown)}; it takes: {', '.join(sorted(self.options()))}"
            )
        return params

    def params(self, **params: Any) -> dict[str, Any]:
        """The defaults overridden by a call's options (unknown names are a TypeError)."""
        return {**self.defaults, **self._checked(params)}

    def check_model(self, config: RoFormerConfig) -> None:
        """Raise ValueError when a model of this config cannot run the task (e.g. no pooler)."""

    def split_inputs(self, inputs: Any) -> tuple[list[Any], bool]:
        """The call's input -> its items and whether the result is a list (a str is one item, a list many)."""
        return split_inputs(self.name, inputs)

    def collect(self, inputs: Any, results: list[Any], is_list: bool, **params: Any) -> Any:
        """The call's return value from its input and the items' results."""
        return results if is_list else results[0]

    def preprocess(self, tokenizer: RoFormerTokenizerFast, item: Any, **params: Any) -> list[dict[str, np.ndarray]]:
        """One or more features for one input item: model inputs ``[L]`` (no padding) and task keys."""
        raise NotImplementedError

    def run(self, pipe: Pipeline, features: list[list[dict[str, np.ndarray]]], **params: Any) -> list[list[dict]]:
        """Model outputs for every item's features (default: one batched forward pass over all of them)."""
        return run_batched(pipe, features)

    def postprocess(
        self,
        tokenizer: RoFormerTokenizerFast,
        item: Any,
        features: list[dict[str, np.ndarray]],
        outputs: list[dict[str, np.ndarray]],
        **params: Any,
    ) -> Any:
        """The item's result from its features and their outputs (batch dim removed, padding trimmed)."""
        raise NotImplementedError


def split_inputs(task: str, inputs: Any) -> tuple[list[Any], bool]:
    """A list or tuple is many items (a list of results), anything else one item."""
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise ValueError(f"{task}: got an empty list; pass a text or a non-empty list of texts")
        return list(inputs), True
    return [inputs], False


def run_batched(pipe: Pipeline, features: list[list[dict[str, np.ndarray]]]) -> list[list[dict[str, np.ndarray]]]:
    """Every item's features through :meth:`Pipeline.forward` at once, regrouped per item."""
    outputs = pipe.forward([f for item in features for f in item])
    grouped, start = [], 0
    for item in features:
        grouped.append(outputs[start : start + len(item)])
        start += len(item)
    return grouped


def as_feature(encoded: Any) -> dict[str, np.ndarray]:
    """One sequence's tokenizer output (``input_ids``, ``token_type_ids``, ``attention_mask``, ...: lists ``[L]``)
    as the int64 arrays a feature holds."""
    return {name: np.asarray(values, dtype=np.int64) for name, values in encoded.items()}


def check_text(task: str, text: Any) -> str:
    """``text`` when it is a non-empty str; else a ValueError/TypeError naming what to pass."""
    if not isinstance(text, str):
        raise TypeError(f"{task}: expected a str or a list of str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{task}: got an empty text; pass a non-empty string")
    return text


class Runner:
    """A model of one framework behind one numpy call.

    Attributes:
        framework: ``"pt"``, ``"tf"``, ``"flax"`` or ``"onnx"``.
        config: the model's config.
        head: the model class.
        static_shapes: the framework compiles per input shape (Flax): the pipeline pads batches to fixed sizes.
    """

    framework: str
    static_shapes = False

    def __init__(self, model: Any, config: RoFormerConfig, head: HeadSpec) -> None:
        self.model, self.config, self.head = model, config, head

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Inputs ``[B, L]`` int64 -> the head's prediction fields (and ``pooler_output``) as float32 numpy."""
        raise NotImplementedError

    def generate(self, inputs: dict[str, np.ndarray], seed: int | None, **settings: Any) -> np.ndarray:
        """The port's ``generate`` on prompts ``[B, L]`` -> int64 ``[B * num_return_sequences, L + n]``."""
        raise ValueError(f"framework {self.framework!r} cannot generate text; use pt, tf or flax")

    def _fields(self, out: Any) -> dict[str, np.ndarray]:
        names = [*self.head.main_outputs, "pooler_output"]
        return {name: np.asarray(out[name], dtype=np.float32) for name in names if name in out}


class _TorchRunner(Runner):
    framework = "pt"

    def __init__(self, model, config, head, device=None) -> None:
        import torch

        super().__init__(model, config, head)
        self._torch = torch
        if device is not None:
            model.to(device)
        model.eval()
        self.device = next(model.parameters()).device

    def __call__(self, inputs):
        torch = self._torch
        with torch.no_grad():
            out = self.model(**{k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()}, return_dict=True)
        return self._fields({k: v.float().cpu() for k, v in out.items() if isinstance(v, torch.Tensor)})

    def generate(self, inputs, seed, **settings):
        torch = self._torch
        generator = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        tensors = {k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()}
        return self.model.generate(**tensors, generator=generator, **settings).cpu().numpy()


class _TFRunner(Runner):
    framework = "tf"

    def __init__(self, model, config, head, device=None) -> None:
        import tensorflow as tf

        super().__init__(model, config, head)
        self._tf, self.device = tf, device

    def _place(self):
        return self._tf.device(self.device) if self.device is not None else contextlib.nullcontext()

    def __call__(self, inputs):
        with self._place():
            out = self.model(**inputs, training=False)
        return self._fields(out)

    def generate(self, inputs, seed, **settings):
        tf = self._tf
        generator = None if seed is None else tf.random.Generator.from_seed(seed)
        with self._place():
            return np.asarray(self.model.generate(**inputs, generator=generator, **settings))


class _FlaxRunner(Runner):
    framework = "flax"
    static_shapes = True

    def __init__(self, model, config, head, device=None) -> None:
        import jax

        super().__init__(model, config, head)
        self._jax = jax
        self.device = jax.devices(device)[0] if isinstance(device, str) else device

    def _place(self):
        return self._jax.default_device(self.device) if self.device is not None else contextlib.nullcontext()

    def __call__(self, inputs):
        with self._place():
            return self._fields(self.model(**inputs))

    def generate(self, inputs, seed, **settings):
        with self._place():
            return np.asarray(self.model.generate(**inputs, generator=seed, **settings))


class _OnnxRunner(Runner):
    framework = "onnx"

    def __init__(self, path: Path, config, head, device=None) -> None:
        try:
            import onnxruntime
        except ImportError as err:
            raise ValueError("framework='onnx' needs onnxruntime: pip install 'roformer-tri[onnx]'") from err
        providers = ["CUDAExecutionProvider"] if device is not None and "cuda" in str(device) else None
        session = onnxruntime.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        super().__init__(session, config, head)
        self._inputs = [i.name for i in session.get_inputs()]
        self._outputs = [o.name for o in session.get_outputs()]

    def __call__(self, inputs):
        feed = {name: inputs[name].astype(np.int64) for name in self._inputs if name in inputs}
        return self._fields(dict(zip(self._outputs, self.model.run(self._outputs, feed))))


_RUNNERS: dict[str, Callable[..., Runner]] = {"pt": _TorchRunner, "tf": _TFRunner, "flax": _FlaxRunner}


def task_class(name: str) -> type[Task]:
    """The class of a task name (``"fill-mask"``).

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(sorted(TASKS))}")
    module, cls = TASKS[name]
    return getattr(importlib.import_module(module), cls)


def framework_of(model: Any) -> str | None:
    """``"pt"`` / ``"tf"`` / ``"flax"`` for a model object of one of our ports; None for anything else."""
    package = type(model).__module__.split(".")[0]
    return next((name for name, (module, _) in PORTS.items() if module == package), None)


def onnx_cache_dir() -> Path:
    """Where exported ONNX files are kept: ``$ROFORMER_CACHE/onnx`` (default ``~/.cache/roformer_tri/onnx``)."""
    root = os.environ.get("ROFORMER_CACHE") or Path.home() / ".cache" / "roformer_tri"
    return Path(root) / "onnx"


def _export_onnx(directory: Path, head: HeadSpec) -> Path:
    """The ONNX file of ``head`` exported from ``directory``, cached by the weights' path, size and time."""
    from roformer_conversion.export import TASKS as EXPORT_TASKS
    from roformer_conversion.export import export_onnx
    from roformer_core.checkpoint import find_weights

    export_task = next((task for task, spec in EXPORT_TASKS.items() if spec.name == head.name), None)
    if export_task is None:
        raise ValueError(f"framework='onnx' has no export of the {head.name} head; use framework='pt', 'tf' or 'flax'")
    weights = find_weights(directory).resolve()
    stat = weights.stat()
    key = hashlib.sha256(f"{weights}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    path = onnx_cache_dir() / key / f"{export_task}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(directory, path, export_task)  # written beside itself and renamed: never half a file
    return path


def _resolve_directory(model: str | os.PathLike, framework: str | None) -> Path:
    """A local checkpoint directory (or ``.onnx`` file), or a hub id downloaded (weights and tokenizer files)."""
    from roformer_core.hub import is_hub_id, resolve_checkpoint

    if not is_hub_id(model):
        path = Path(model)
        if not path.exists():
            raise ValueError(f"model {str(model)!r} does not exist; pass a checkpoint directory, a hub id or a model")
        return path
    weights_framework = framework if framework in PORTS else None
    resolve_checkpoint(model, files="tokenizer")
    return resolve_checkpoint(model, framework=weights_framework, files="model")


def load_runner(
    model: Any,
    head: HeadSpec,
    framework: str | None = None,
    device: Any = None,
    accepted: Sequence[str] = (),
    model_kwargs: dict[str, Any] | None = None,
) -> tuple[Runner, Path | None]:
    """A :class:`Runner` for ``model`` (a directory, hub id, ``.onnx`` file, or a model object of any port).

    Args:
        head: the model class to load from a directory.
        framework: ``"pt"``, ``"tf"``, ``"flax"`` or ``"onnx"``; None: the model object's, else ``"pt"``.
        accepted: other heads a model object may have.
        model_kwargs: config fields to override when loading a directory (e.g. ``{"unilm": True}``).

    Returns:
        the runner and the directory it was loaded from (None for a model object).
    """
    if framework is not None and framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of: {', '.join(FRAMEWORKS)}")
    owner = framework_of(model)
    if owner is not None:
        if framework not in (None, owner):
            raise ValueError(f"the model is a {owner} model but framework={framework!r}; drop framework or match it")
        given = get_head(type(model).__name__)
        if given.name not in (head.name, *accepted):
            names = " or ".join(get_head(h).class_name for h in (head.name, *accepted))
            raise ValueError(f"this task needs a {names} model; got {type(model).__name__}")
        return _RUNNERS[owner](model, model.config, given, device), None
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            "model must be a checkpoint directory, a hub id or a RoFormer model of any port; "
            f"got {type(model).__name__}"
        )
    path = _resolve_directory(model, framework)
    framework = framework or ("onnx" if path.suffix == ".onnx" else "pt")
    directory = path.parent if path.suffix == ".onnx" else path
    if framework == "onnx":
        config = RoFormerConfig.from_pretrained(directory, **(model_kwargs or {}))
        head.adapt_config(config)
        onnx_file = path if path.suffix == ".onnx" else _export_onnx(directory, head)
        return _OnnxRunner(onnx_file, config, head, device), directory
    if path.suffix == ".onnx":
        raise ValueError(f"{path} is an ONNX file: pass framework='onnx' (or the checkpoint directory)")
    module, prefix = PORTS[framework]
    try:
        port = importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"framework={framework!r} needs {module}'s framework installed ({err})") from err
    config, state = load_checkpoint(directory, framework=framework, **(model_kwargs or {}))
    head.adapt_config(config)
    plan = resolve_weights(config, head, state, source=str(directory))
    missing = [name for name in plan.newly_initialized if head_owned(name)]
    if missing:  # a freshly initialized head would answer with random numbers
        raise ValueError(
            f"{directory} has no {head.class_name} weights ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''} are not in the checkpoint): this task needs a checkpoint "
            "trained with that head; pass one, or fine-tune the model yourself and pass the model object"
        )
    loaded = getattr(port, prefix + head.class_name).from_state_dict(config, state, source=str(directory))
    return _RUNNERS[framework](loaded, loaded.config, head, device), directory


def _load_tokenizer(tokenizer: Any, directory: Path | None) -> RoFormerTokenizerFast:
    if tokenizer is None:
        if directory is None:
            raise ValueError("a model object has no tokenizer files: pass tokenizer= (a tokenizer or its directory)")
        return RoFormerTokenizerFast.from_pretrained(directory)
    if isinstance(tokenizer, (str, os.PathLike)):
        return RoFormerTokenizerFast.from_pretrained(tokenizer)
    return tokenizer


def _items_from_fields(task: str, values: dict[str, Any]) -> Any:
    """Keyword inputs (``question=..., context=...``) -> one dict item, or a list of them when any is a list."""
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ValueError(f"{task}: missing {', '.join(missing)}=; pass {', '.join(f'{n}=' for n in values)} together")
    sizes = {len(v) for v in values.values() if isinstance(v, (list, tuple))}
    if not sizes:
        return dict(values)
    if len(sizes) > 1:
        raise ValueError(f"{task}: the lists passed as {', '.join(values)} differ in length; pass lists of one length")
    (size,) = sizes
    return [
        {name: (value[i] if isinstance(value, (list, tuple)) else value) for name, value in values.items()}
        for i in range(size)
    ]


class Pipeline:
    """A task bound to a model and its tokenizer; call it on a text, an item or a list of them.

    Attributes:
        task: the :class:`Task`.
        runner: the model's forward pass in one framework.
        tokenizer: the tokenizer.
        batch_size: features per forward pass.
        config: the model's config.
    """

    def __init__(
        self,
        task: Task,
        runner: Runner,
        tokenizer: RoFormerTokenizerFast,
        batch_size: int = 8,
        progress: bool | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.task, self.runner, self.tokenizer = task, runner, tokenizer
        self.batch_size, self.progress = batch_size, progress
        self.config = runner.config

    @property
    def framework(self) -> str:
        return self.runner.framework

    def __call__(self, inputs: Any = None, **params: Any) -> Any:
        """Run the task on one input (-> one result) or a list of them (-> a list of results, in input order).

        A task whose items are dicts also takes their fields as keywords, as transformers' pipelines do:
        ``qa(question="...", context="...")`` (lists zip into several items; a str pairs with every entry of a list).
        """
        task = self.task
        fields = getattr(task, "input_fields", ())
        if any(name in params for name in fields):
            if inputs is not None:
                raise ValueError(
                    f"{task.name}: pass the input either positionally or as {', '.join(fields)}=, not both"
                )
            inputs = _items_from_fields(task.name, {name: params.pop(name, None) for name in fields})
        if inputs is None:
            raise TypeError(f"{task.name}: missing the input; pass a text, an item or a list of them")
        params = task.params(**params)
        if hasattr(task, "split_inputs"):
            items, is_list = task.split_inputs(inputs)
        else:
            items, is_list = split_inputs(task.name, inputs)
        features = [task.preprocess(self.tokenizer, item, **params) for item in items]
        show = self.progress if self.progress is not None else len(items) >= _PROGRESS_MIN_ITEMS
        with self._progress_bar(sum(map(len, features)), show):
            outputs = task.run(self, features, **params) if hasattr(task, "run") else run_batched(self, features)
        results = [
            task.postprocess(self.tokenizer, item, f, o, **params) for item, f, o in zip(items, features, outputs)
        ]
        if hasattr(task, "collect"):
            return task.collect(inputs, results, is_list, **params)
        return results if is_list else results[0]

    @contextlib.contextmanager
    def _progress_bar(self, total: int, show: bool):
        if not show:
            self._bar = None
            yield
            return
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=self.task.name, unit="text") as bar:
            self._bar = bar
            try:
                yield
            finally:
                self._bar = None

    def forward(self, features: Sequence[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Outputs for features ``[L]`` each: sorted by length, padded per batch, trimmed back, in input order.

        Returns:
            per feature, the model's fields without the batch dim; per-token fields ``[L, ...]`` cut to the
            feature's length, per-sequence fields (``pooler_output [E]``, classifier ``logits [C]``) as they are.
        """
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]), reverse=True)
        results: list[dict[str, np.ndarray]] = [{} for _ in features]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            lengths = [len(features[i]["input_ids"]) for i in chunk]
            out = self.forward_padded(self._pad([features[i] for i in chunk]))
            for row, (index, length) in enumerate(zip(chunk, lengths)):
                results[index] = {name: self._trim(name, value[row], length) for name, value in out.items()}
            if getattr(self, "_bar", None) is not None:
                self._bar.update(len(chunk))
        return results

    def forward_padded(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The runner on one padded batch ``[B, L]``; a Flax batch is first padded to ``batch_size`` rows and to a
        multiple of 16 positions (one compiled program for many calls), and cut back after."""
        rows, length = batch["input_ids"].shape
        if not self.runner.static_shapes:
            return self.runner(batch)
        target_rows = max(rows, self.batch_size)
        target_length = -(-length // _FLAX_LENGTH_BUCKET) * _FLAX_LENGTH_BUCKET
        padded = {}
        for name, value in batch.items():
            fill = self.tokenizer.pad_token_id if name == "input_ids" else 0
            grown = np.full((rows, target_length), fill, dtype=value.dtype)
            grown[:, :length] = value
            # extra rows repeat the first one, so that no row attends to nothing
            padded[name] = np.concatenate([grown, np.repeat(grown[:1], target_rows - rows, axis=0)])
        out = self.runner(padded)
        return {name: self._cut(name, value[:rows], length) for name, value in out.items()}

    def _pad(self, features: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        length = max(len(f["input_ids"]) for f in features)
        batch = {}
        for name in MODEL_INPUTS:
            if name not in features[0] and name != "attention_mask":
                continue
            fill = self.tokenizer.pad_token_id if name == "input_ids" else 0
            rows = np.full((len(features), length), fill, dtype=np.int64)
            for row, f in enumerate(features):
                n = len(f["input_ids"])
                rows[row, :n] = f.get(name, 1)  # a feature without a mask attends to all its tokens
            batch[name] = rows
        return batch

    def _per_token(self, name: str) -> bool:
        return name != "pooler_output" and not (name == "logits" and self.runner.head.name in _SEQUENCE_LEVEL_LOGITS)

    def _trim(self, name: str, value: np.ndarray, length: int) -> np.ndarray:
        return value[:length] if self._per_token(name) else value

    def _cut(self, name: str, value: np.ndarray, length: int) -> np.ndarray:
        return value[:, :length] if self._per_token(name) else value


def pipeline(
    task: str,
    model: Any,
    tokenizer: Any = None,
    framework: str | None = None,
    device: Any = None,
    batch_size: int = 8,
    progress: bool | None = None,
    model_kwargs: dict[str, Any] | None = None,
    **task_params: Any,
) -> Pipeline:
    """A ready-to-call pipeline, like ``transformers.pipeline``.

    Args:
        task: ``"fill-mask"``, ``"feature-extraction"``, ``"sentence-similarity"``, ``"paraphrase"``,
            ``"text-classification"``, ``"token-classification"``, ``"question-answering"`` or
            ``"text-generation"``.
        model: a checkpoint directory, a hub id, an exported ``.onnx`` file (with ``config.json`` and the
            tokenizer files beside it), or a model object of any port (its framework is used).
        tokenizer: a tokenizer or its directory; default: the checkpoint directory's.
        framework: ``"pt"`` (default), ``"tf"``, ``"flax"`` or ``"onnx"`` (exported on first use and cached, see
            :func:`onnx_cache_dir`).
        device: where the model runs: a torch device (``"cuda:0"``), a TensorFlow device (``"/GPU:0"``), a JAX
            platform (``"gpu"``), or ``"cuda"`` for ONNX Runtime; default: the framework's default.
        batch_size: texts per forward pass (inputs are sorted by length and padded per batch).
        progress: show a progress bar; default: for lists of 64 texts or more.
        model_kwargs: config fields to override when loading a directory (``{"unilm": True}`` for JunnYu's Sim
            checkpoints, whose ``config.json`` lacks the key).
        **task_params: the task's default options (``top_k=3``, ``pooling="mean"``, ...); a call can override them.

    Raises:
        ValueError: an unknown task or framework, a model without the head the task needs, ...
    """
    spec = task_class(task)
    head = get_head(spec.head)
    accepted = getattr(spec, "also_accepts", ())
    runner, directory = load_runner(model, head, framework, device, accepted, model_kwargs)
    instance = spec(runner.config, **task_params)
    return Pipeline(instance, runner, _load_tokenizer(tokenizer, directory), batch_size=batch_size, progress=progress)
