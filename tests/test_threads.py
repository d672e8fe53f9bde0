"""Torch's CPU threads fit the cores the process may use (affinity, cgroup quota), unless OMP_NUM_THREADS says."""

from __future__ import annotations

import os

import pytest
import torch

from harness_ext.threads import available_cores, fit_torch_threads

AFFINITY = len(os.sched_getaffinity(0))


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("cpu_max", "expected"), [
    ("max 100000\n", AFFINITY),              # no quota: the affinity mask
    ("150000 100000\n", min(AFFINITY, 1)),   # 1.5 cores of time: 1 thread
    ("50000 100000\n", 1),                   # under one core: still 1
    ("garbage\n", AFFINITY),                 # unreadable: the affinity mask
])
def test_available_cores_is_the_affinity_mask_capped_by_the_cgroup_quota(tmp_path, cpu_max, expected):
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert available_cores(path) == expected
    assert available_cores(tmp_path / "absent") == AFFINITY


def test_torch_threads_come_down_to_the_quota_unless_omp_num_threads_is_set(tmp_path, monkeypatch, restore_threads):
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")  # one core
    torch.set_num_threads(4)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert fit_torch_threads(quota) == 4  # the user's choice stands
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert fit_torch_threads(quota) == 1 == torch.get_num_threads()
    quota.write_text("max 100000\n")
    torch.set_num_threads(1)
    assert fit_torch_threads(quota) == 1  # never raised
