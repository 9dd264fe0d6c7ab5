"""Running training beside other runs and across processes: thread pools, and torchrun /
DistributedDataParallel.

One process is the default and every function here is a no-op for it, so `fit()` reads
the same either way. Under `torchrun` (which sets RANK, LOCAL_RANK, WORLD_SIZE), every rank
runs the same `fit()`: it orders each epoch with the same seeded generator, takes its own
shard of every batch, and DDP all-reduces the gradients; only rank 0 writes files.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fer import FerError


def rank() -> int:
    return int(os.environ.get("RANK", 0))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    """Whether this process writes the outputs (metrics, checkpoints, logs): rank 0, or the only one."""
    return rank() == 0


def cpu_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads(requested: int = 0) -> int:
    """Size torch's thread pools and return the size: `requested` when > 0; else
    OMP_NUM_THREADS when set (e.g. `OMP_NUM_THREADS=1 dvc queue start -j 2` gives each of two
    queued runs one core); else this process's share of the cores: all of them for a run
    alone, cores / processes under torchrun. Pools larger than the cores a process really
    gets make runs side by side many times slower than alone, not 2x."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    n = requested or (int(env) if env.isdigit() and int(env) > 0 else max(1, cpu_cores() // local))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # only settable before the first parallel work; the default is then kept
        pass
    return n


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun (gloo on CPU, NCCL on GPUs) and
    return this rank's device: its own GPU (LOCAL_RANK), or the CPU."""
    if world_size() == 1:
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        if local >= torch.cuda.device_count():
            raise FerError(
                f"{os.environ.get('LOCAL_WORLD_SIZE', world_size())} processes on this machine but "
                f"{torch.cuda.device_count()} GPU(s) visible: set train.devices to at most that, "
                "or train.device=cpu"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown() -> None:
    """Leave the process group, once every rank has finished."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module) -> nn.Module:
    """The module to train: DDP around `model` (gradients averaged over ranks after every
    backward) when distributed, else `model` itself. Both share the same weights."""
    return DistributedDataParallel(model) if dist.is_initialized() else model


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This rank's share of one global batch: every world_size-th index, from its rank."""
    return idx[rank() :: world_size()]


def reseed(seed: int, epoch: int) -> None:
    """Distributed: give each rank its own augmentation draws for `epoch`, a function of
    (seed, epoch, rank) only, so a resumed run draws the same as an uninterrupted one."""
    if dist.is_initialized():
        torch.manual_seed(seed * 1_000_003 + epoch * 1_009 + rank())


def epoch_means(loss: float, acc: float, seen: int) -> tuple[float, float]:
    """The epoch's loss and accuracy over all ranks' images (each rank saw only its shard)."""
    if not dist.is_initialized():
        return loss, acc
    t = torch.tensor([loss * seen, acc * seen, seen], dtype=torch.float64)
    dist.all_reduce(t)
    return (t[0] / t[2]).item(), (t[1] / t[2]).item()


def sync_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm running statistics, which each rank updated on its
    own shard) to every rank, so all ranks validate the same model and take the same
    decisions (best epoch, lr cut, early stop)."""
    if dist.is_initialized():
        for buf in model.buffers():
            dist.broadcast(buf, 0)


def relaunch(processes: int) -> int:
    """Run this very command again under torchrun on `processes` processes of this machine
    and return its exit status. Each process gets its share of the cores as threads."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(max(1, cpu_cores() // processes))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *sys.argv]
    return subprocess.run(cmd, env=env).returncode
