"""Several processes (torchrun): ranks, gradient averaging, weight broadcast.

Gradients are averaged with all_reduce before each optimiser step, as NVIDIA's StyleGAN2-ADA
does; that works with the double backward of the regularisers, where DistributedDataParallel's
hooks do not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device, timeout_minutes: float | None = None) -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single process. `device` should be
    process_device()'s (NCCL pairs each process with the current GPU). timeout_minutes: how long a rank may
    wait for the others (None: torch's default, 10 min for NCCL) - longer where rank 0 fills caches first."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    import datetime

    # torch.distributed.nn.functional binds the default group as its functions' default argument
    # (group=group.WORLD) when it is imported. Imported after the group exists (torch._dynamo imports it, and the
    # first optimiser imports torch._dynamo), it keeps the group alive: destroy_process_group then cannot join
    # gloo's worker threads, which free the last collectives' tensors while the interpreter shuts down and
    # abort the process now and then ("terminate called without an active exception"). Imported first, it
    # binds nothing. A caller who creates the group itself must import it before, likewise.
    import torch.distributed.nn.functional  # noqa: F401
    import torch.distributed as dist
    if not dist.is_initialized():
        extra = {"timeout": datetime.timedelta(minutes=timeout_minutes)} if timeout_minutes else {}
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", **extra)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size())


def process_device(device: torch.device) -> torch.device:
    """This process's device: under torchrun on CUDA, cuda:LOCAL_RANK, made the current device (else every
    rank would use GPU 0 and NCCL refuses duplicate GPUs); otherwise `device` unchanged."""
    if device.type != "cuda" or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return device
    local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(local)
    return local


def close_distributed(d: Dist) -> None:
    """Leave the process group together (a rank that exits while another still talks to it makes gloo
    abort the other); destroying it joins gloo's threads, provided nothing else holds the group (see
    init_distributed)."""
    if d.world == 1:
        return
    import torch.distributed as dist
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def sync_gradients(module: torch.nn.Module, d: Dist) -> None:
    if d.world == 1:
        return
    import torch.distributed as dist
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= d.world
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(module: torch.nn.Module, d: Dist) -> None:
    if d.world == 1:
        return
    import torch.distributed as dist
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)
