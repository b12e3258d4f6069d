"""Data-parallel training inside one cell with ``torchrun`` and ``torch.distributed`` (gloo on CPU, nccl on CUDA).

    torchrun --nproc_per_node 2 -m bench run --grid smoke          # two processes share every cell

Every rank draws the same batch from (seed, iteration) and trains on its slice ``rank::world``; DDP
averages the gradients, which equals the full-batch gradient of a mean loss. Rank 0 alone takes the
cell's lock, writes checkpoints, evaluates and writes the result; the others follow its decisions.
Objectives with their own state (D2SM queues, the GAN's discriminator) keep it per rank.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env(device: str) -> str:
    """Join the process group torchrun describes (no-op without WORLD_SIZE > 1); returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    cuda = device.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def broadcast(obj):
    """Rank 0's ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()
