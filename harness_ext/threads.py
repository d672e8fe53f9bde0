"""Torch's CPU thread count from the cores this process may really use.

torch starts as many OpenMP threads as the machine has cores (or as its affinity mask allows), not as
many as a container's CPU quota grants: under ``docker --cpus 2`` on a 64-core host it runs 64 threads
on two cores' worth of time, and every barrier waits for threads the scheduler has taken off. On a CPU
device ``unlearn-bench eval`` lowers torch's count to :func:`available_cores` (and says so), unless
``OMP_NUM_THREADS`` sets it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import torch

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

logger = logging.getLogger(__name__)


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup v2 CPU quota (rounded down, at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = cpu_max.read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    return cores


def fit_torch_threads(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Lower torch's intra-op threads to :func:`available_cores` unless ``OMP_NUM_THREADS`` is set; the count used."""
    cores = available_cores(cpu_max)
    if not os.environ.get("OMP_NUM_THREADS") and torch.get_num_threads() > cores:
        logger.info("torch threads %d -> %d: the cores this process may use (affinity, cgroup quota); set "
                    "OMP_NUM_THREADS to choose", torch.get_num_threads(), cores)
        torch.set_num_threads(cores)
    return torch.get_num_threads()
