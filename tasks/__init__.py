"""Task pipelines over every RoFormer port: ``pipeline("fill-mask", model=...)`` like transformers' pipelines, with
numpy pre- and post-processing and one forward pass per framework (PyTorch, TensorFlow, Flax or ONNX Runtime),
imported only when asked. Imported as ``roformer_tasks``."""

from .base import FRAMEWORKS, TASKS, Pipeline, Runner, Task, onnx_cache_dir, pipeline, task_class

__all__ = ["FRAMEWORKS", "TASKS", "Pipeline", "Runner", "Task", "onnx_cache_dir", "pipeline", "task_class"]
