"""Training across processes: DistributedDataParallel or FSDP2, launched by ``torchrun`` (docs/distributed-pytorch.md).

* :func:`init_distributed`: the process group from ``torchrun``'s environment (gloo on CPU, nccl on GPU), or a
  single process when the script was started without ``torchrun``.
* :func:`create_optimizer`: AdamW, weight decay off biases and norms (``roformer_core.optim.no_decay``), and a
  linear warmup then linear decay of the learning rate (``roformer_core.optim.linear_warmup_decay``).
* :class:`ResumableSampler`: a ``DistributedSampler`` that can start inside an epoch, so a resumed run reads the
  batches it would have read.
* :func:`train`: the loop. Gradient accumulation, bf16/fp16 autocast, gradient checkpointing, gradient clipping, a
  progress bar on rank 0, and checkpoints (``checkpoint-N/``) holding the model, the optimizer, the scheduler, the
  gradient scaler, every rank's random generators and the sampler's place.

Every step's loss is the mean over the targets of the whole global batch (all ranks, all micro-batches), weighted
by ``roformer_core.losses.target_count``: 2 processes x 4 examples give the loss and the update of 1 process x 8
examples, or of 1 process x 4 examples x 2 accumulation steps, whatever the number of masked tokens per shard.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from roformer_core import losses
from roformer_core.io import atomic_write_text
from roformer_core.optim import linear_warmup_decay, no_decay

from .layers import RoFormerLayer
from .modeling import RoFormerPreTrainedModel

__all__ = [
    "DistributedContext",
    "ResumableSampler",
    "TrainResult",
    "TrainingArguments",
    "checkpoints",
    "create_optimizer",
    "init_distributed",
    "parameter_groups",
    "train",
]

#: ``mixed_precision`` values and the autocast dtype of each.
MIXED_PRECISION: dict[str, torch.dtype | None] = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: ``sharding`` values: replicate the model on every rank (DDP) or shard parameters, gradients and optimizer state.
SHARDING = ("ddp", "fsdp")

CHECKPOINT_PREFIX = "checkpoint-"
TRAINING_STATE_NAME = "training_state.pt"  # optimizer, scheduler, scaler, step, sampler place (written by rank 0)
RNG_STATE_NAME = "rng_state_{rank}.pt"  # one per rank: each rank draws its own dropout masks
TRAINER_STATE_NAME = "trainer_state.json"  # the step and the loss of every step, for people and plots


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: its rank among ``world_size`` processes and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes shared files and shows the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def init_distributed(backend: str | None = None) -> DistributedContext:
    """Join the process group ``torchrun`` set up (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...).

    Args:
        backend: ``"gloo"``, ``"nccl"``...; None picks nccl when CUDA is available, else gloo.

    Returns:
        the context; without ``torchrun``'s variables, a single process (rank 0 of 1) and no process group.
    """
    cuda = torch.cuda.is_available()
    if "RANK" not in os.environ:
        return DistributedContext(0, 1, 0, torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if cuda else "gloo"), device_id=device if cuda else None)
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, device)


@dataclass
class TrainingArguments:
    """What :func:`train` does.

    Attributes:
        output_dir: where checkpoints (``checkpoint-N/``) and the final model (``config.json``,
            ``model.safetensors``) go.
        num_train_steps: optimizer steps in all (a resumed run continues up to it).
        per_device_batch_size: examples per process per micro-batch; the global batch is this x world size x
            ``gradient_accumulation_steps``.
        gradient_accumulation_steps: micro-batches per optimizer step.
        learning_rate: peak learning rate of AdamW.
        weight_decay: decoupled weight decay of every parameter but biases and norms.
        warmup_steps: steps of linear warmup (then linear decay to 0 at ``num_train_steps``).
        max_grad_norm: clip the global gradient norm to this; None: no clipping.
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 adds a gradient scaler). Parameters and
            optimizer state stay float32.
        gradient_checkpointing: recompute each layer's activations in the backward pass.
        sharding: ``"ddp"`` (a full copy per process) or ``"fsdp"`` (``fully_shard`` per encoder layer and the
            whole model: parameters, gradients and optimizer state split across processes).
        save_steps: write a checkpoint every this many steps (and always at the end); None: only at the end.
        seed: seeds the sampler's shuffling and, plus the rank, the dropout masks.
        resume_from_checkpoint: a ``checkpoint-N`` directory to continue from.
        progress_bar: show a tqdm bar (on rank 0 only).
    """

    output_dir: str | os.PathLike
    num_train_steps: int
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    sharding: str = "ddp"
    save_steps: int | None = None
    seed: int = 0
    resume_from_checkpoint: str | os.PathLike | None = None
    progress_bar: bool = True

    def __post_init__(self) -> None:
        for name in ("num_train_steps", "per_device_batch_size", "gradient_accumulation_steps"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("warmup_steps", self.warmup_steps, minimum=0)
        if self.save_steps is not None:
            _check_int("save_steps", self.save_steps, minimum=1)
        if self.warmup_steps > self.num_train_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) is more than num_train_steps ({self.num_train_steps}); "
                "pass at most num_train_steps"
            )
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {list(MIXED_PRECISION)}, got {self.mixed_precision!r}")
        if self.sharding not in SHARDING:
            raise ValueError(f"sharding must be one of {list(SHARDING)}, got {self.sharding!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay for the trainable parameters ``no_decay`` keeps it for, 0 for the rest.

    Args:
        model: the model (bare, or already sharded by ``fully_shard``, whose names are unchanged).
        weight_decay: the decay of the first group.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for name, p in named if not no_decay(name)], "weight_decay": weight_decay},
        {"params": [p for name, p in named if no_decay(name)], "weight_decay": 0.0},
    ]


def create_optimizer(
    model: nn.Module, args: TrainingArguments
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over :func:`parameter_groups` and its warmup-then-linear-decay scheduler (one ``step()`` per update)."""
    optimizer = torch.optim.AdamW(parameter_groups(model, args.weight_decay), lr=args.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: linear_warmup_decay(step, args.num_train_steps, args.warmup_steps)
    )
    return optimizer, scheduler


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` whose first epoch can start after ``skip`` of this rank's examples.

    Rank ``r`` of ``R`` reads examples ``r, r + R, ...`` of each epoch's permutation (seeded by ``seed`` and the
    epoch), so R processes x B examples read exactly the examples 1 process x R·B reads.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())[self.skip :]
        self.skip = 0  # only the epoch a run resumes in starts late
        return iter(indices)


def _stack(examples: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    return {key: np.stack([np.asarray(example[key]) for example in examples]) for key in examples[0]}


class _Batches:
    """Micro-batches of this rank, epoch after epoch, counting where it is (the sampler state a checkpoint keeps)."""

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, batch_size: int, epoch: int, consumed: int):
        self.loader = DataLoader(dataset, batch_size, sampler=sampler, collate_fn=_stack, drop_last=True)
        if len(self.loader) == 0:
            raise ValueError(
                f"each process gets {len(sampler)} examples per epoch, fewer than per_device_batch_size "
                f"({batch_size}); pass a smaller batch size or more data"
            )
        self.sampler, self.batch_size = sampler, batch_size
        self.epoch, self.consumed = epoch, consumed  # consumed: micro-batches of this epoch already read
        self._start_epoch()

    def _start_epoch(self) -> None:
        self.sampler.set_epoch(self.epoch)
        self.sampler.skip = self.consumed * self.batch_size
        self._iterator = iter(self.loader)

    def __next__(self) -> dict[str, np.ndarray]:
        if self.consumed == len(self.loader):
            self.epoch, self.consumed = self.epoch + 1, 0
            self._start_epoch()
        self.consumed += 1
        return next(self._iterator)


@dataclass
class TrainResult:
    """What :func:`train` returns: the last step and the loss of every step (those before a resume included)."""

    step: int
    losses: list[float] = field(default_factory=list)


def _wrap(model: RoFormerPreTrainedModel, args: TrainingArguments, ctx: DistributedContext) -> nn.Module:
    if not ctx.distributed:
        return model
    if args.sharding == "fsdp":
        from torch.distributed.fsdp import fully_shard

        # one unit per layer: only one layer's full parameters exist at a time; the embeddings and heads (the
        # tied LM decoder among them) share the root unit, so the tie holds
        for module in model.modules():
            if isinstance(module, RoFormerLayer):
                fully_shard(module)
        return fully_shard(model)
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _gradient_sync(wrapped: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """A context whose backward passes all-reduce the gradients (``sync``) or only accumulate them on this rank
    (the accumulation micro-batches before the last)."""
    if isinstance(wrapped, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext() if sync else wrapped.no_sync()
    if hasattr(wrapped, "set_requires_gradient_sync"):  # a fully_shard (FSDP2) module
        wrapped.set_requires_gradient_sync(sync)
    return contextlib.nullcontext()


def _state_dict_options(ctx: DistributedContext, load: bool):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    if load:  # rank 0 reads the files and sends each rank its part
        return StateDictOptions(full_state_dict=True, broadcast_from_rank0=ctx.distributed)
    return StateDictOptions(full_state_dict=True, cpu_offload=True)  # gathered whole on rank 0's CPU


def _rng_state(device: torch.device) -> dict[str, Any]:
    np_kind, np_key, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_kind, torch.from_numpy(np_key.astype(np.int64)), np_pos, np_has_gauss, np_gauss),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    np_kind, np_key, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_kind, np_key.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _barrier(ctx: DistributedContext) -> None:
    if ctx.distributed:
        dist.barrier()


def checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The complete ``checkpoint-N`` directories in ``output_dir``, by step."""
    found = [p for p in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*") if p.name[len(CHECKPOINT_PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]))


def _save_checkpoint(
    directory: str | os.PathLike,
    model: RoFormerPreTrainedModel,
    wrapped: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    batches: _Batches,
    result: TrainResult,
    ctx: DistributedContext,
) -> Path:
    """Write a checkpoint every rank must call together: ``config.json`` + ``model.safetensors`` (loadable with
    ``from_pretrained``), ``training_state.pt``, ``trainer_state.json`` and each rank's ``rng_state_{rank}.pt``.

    The directory appears complete or not at all: it is written under a temporary name and renamed at the end.
    """
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    directory = Path(directory)
    partial = directory.with_name(directory.name + ".partial")
    options = _state_dict_options(ctx, load=False)
    model_state = get_model_state_dict(wrapped, options=options)
    optimizer_state = get_optimizer_state_dict(wrapped, optimizer, options=options)
    if ctx.is_main:
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial, state_dict=model_state)
        training_state = {
            "optimizer": optimizer_state,
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "step": result.step,
            "sampler": {"epoch": batches.epoch, "consumed": batches.consumed},
            # the sampler's place is counted in micro-batches of this many examples on this many ranks
            "layout": {"world_size": ctx.world_size, "per_device_batch_size": batches.batch_size},
        }
        torch.save(training_state, partial / TRAINING_STATE_NAME)
        atomic_write_text(partial / TRAINER_STATE_NAME, json.dumps(asdict(result), indent=1))
    _barrier(ctx)
    torch.save(_rng_state(ctx.device), partial / RNG_STATE_NAME.format(rank=ctx.rank))
    _barrier(ctx)
    if ctx.is_main:
        shutil.rmtree(directory, ignore_errors=True)
        partial.rename(directory)
    _barrier(ctx)
    return directory


def _load_training_checkpoint(
    directory: Path,
    wrapped: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    per_device_batch_size: int,
    ctx: DistributedContext,
) -> tuple[dict[str, Any], list[float]]:
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    if not (directory / TRAINING_STATE_NAME).is_file():
        raise ValueError(
            f"{directory} is not a training checkpoint (it has no {TRAINING_STATE_NAME}); pass a "
            f"{CHECKPOINT_PREFIX}N directory written by train()"
        )
    # memory-mapped: ranks other than 0 read only the small entries (rank 0 sends them the optimizer state)
    state = torch.load(directory / TRAINING_STATE_NAME, weights_only=True, mmap=True)
    layout = {"world_size": ctx.world_size, "per_device_batch_size": per_device_batch_size}
    if state["layout"] != layout:
        raise ValueError(
            f"{directory} was written by a run with {state['layout']}, this one has {layout}: resume with the "
            "same number of processes and per_device_batch_size"
        )
    optimizer_state = state["optimizer"] if ctx.is_main or not ctx.distributed else {}
    set_optimizer_state_dict(wrapped, optimizer, optimizer_state, options=_state_dict_options(ctx, load=True))
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    _set_rng_state(torch.load(directory / RNG_STATE_NAME.format(rank=ctx.rank), weights_only=True), ctx.device)
    history = json.loads((directory / TRAINER_STATE_NAME).read_text())
    return state, history["losses"]


def _to_device(batch: Mapping[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(value).to(device) for key, value in batch.items()}


def train(
    model: RoFormerPreTrainedModel,
    dataset: Dataset,
    args: TrainingArguments,
    ctx: DistributedContext | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` in every process of the group (or alone), as ``args`` says.

    Call it in every process with the same model (same seed, or loaded from the same checkpoint) and dataset.
    Resuming (``args.resume_from_checkpoint``) loads the checkpoint's weights into ``model`` and continues the
    same run: the same batches, learning rates, dropout masks and losses as a run never interrupted.

    Args:
        model: one of our model classes (on any device; it is moved to the process's device).
        dataset: map-style; item ``i`` a dict of the forward arguments (``input_ids [L]``, ``attention_mask [L]``,
            ``labels [L]`` or ``[]``...) as numpy arrays or numbers; every item of the same shapes.
        args: the recipe.
        ctx: from :func:`init_distributed` (called here when None).

    Returns:
        the last step and the loss of every step (the mean over all targets of the global batch).
    """
    if not isinstance(model, RoFormerPreTrainedModel):
        raise TypeError(f"model must be one of roformer_pt's model classes, got {type(model).__name__}")
    ctx = ctx or init_distributed()
    resume = Path(args.resume_from_checkpoint) if args.resume_from_checkpoint is not None else None
    if resume is not None:
        if not resume.is_dir():
            raise ValueError(f"resume_from_checkpoint {str(resume)!r} is not a directory; pass a checkpoint-N folder")
        model.load_state_dict(type(model).from_pretrained(resume).state_dict())
    model.to(ctx.device).train()
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    wrapped = _wrap(model, args, ctx)
    optimizer, scheduler = create_optimizer(model, args)
    autocast_dtype = MIXED_PRECISION[args.mixed_precision]
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=autocast_dtype == torch.float16)
    sampler = ResumableSampler(dataset, ctx.world_size, ctx.rank, seed=args.seed)
    result, epoch, consumed = TrainResult(step=0), 0, 0
    if resume is not None:
        state, result.losses = _load_training_checkpoint(
            resume, wrapped, optimizer, scheduler, scaler, args.per_device_batch_size, ctx
        )
        result.step, epoch, consumed = state["step"], state["sampler"]["epoch"], state["sampler"]["consumed"]
    else:
        torch.manual_seed(args.seed + ctx.rank)  # each rank its own dropout masks
    batches = _Batches(dataset, sampler, args.per_device_batch_size, epoch, consumed)
    output_dir = Path(args.output_dir)
    head, prediction = model.head.name, model.head.main_outputs[0]
    progress = tqdm(total=args.num_train_steps, initial=result.step, disable=not (ctx.is_main and args.progress_bar))
    while result.step < args.num_train_steps:
        micro_batches = [next(batches) for _ in range(args.gradient_accumulation_steps)]
        counts = [int(losses.target_count(head, batch, model.config)) for batch in micro_batches]
        global_count = torch.tensor(float(sum(counts)), dtype=torch.float64, device=ctx.device)
        loss_total = torch.zeros((), dtype=torch.float64, device=ctx.device)
        if ctx.distributed:
            dist.all_reduce(global_count)
        # gradients are averaged over ranks by DDP / FSDP: the world size makes them the global batch's mean
        loss_scale = ctx.world_size / max(global_count.item(), 1.0)
        for index, (batch, count) in enumerate(zip(micro_batches, counts)):
            sync = _gradient_sync(wrapped, index == len(micro_batches) - 1)
            with sync, torch.autocast(ctx.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                output = wrapped(**_to_device(batch, ctx.device))
                # a mean over no targets is NaN: such a shard still runs backward (the all-reduce needs every
                # rank) but adds nothing
                loss_sum = output.loss.float() * count if count else getattr(output, prediction).sum() * 0.0
                scaler.scale(loss_sum * loss_scale).backward()
            loss_total += loss_sum.detach().double()
        if ctx.distributed:
            dist.all_reduce(loss_total)
        if args.max_grad_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        result.step += 1
        result.losses.append(loss_total.item() / max(global_count.item(), 1.0))
        progress.update(1)
        progress.set_postfix(loss=f"{result.losses[-1]:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if result.step == args.num_train_steps or (args.save_steps and result.step % args.save_steps == 0):
            directory = output_dir / f"{CHECKPOINT_PREFIX}{result.step}"
            _save_checkpoint(directory, model, wrapped, optimizer, scheduler, scaler, batches, result, ctx)
    progress.close()
    return result
