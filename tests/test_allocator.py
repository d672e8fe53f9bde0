"""``keep_freed_memory``: a freed large tensor's memory is reused by the next one, not page-faulted in afresh.

Counted in a child process (the setting is process-wide): minor page faults while a second 64 MiB
tensor is allocated and written after the first was freed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import resource, sys, torch
from harness_ext.models.allocator import keep_freed_memory
changed = keep_freed_memory() if sys.argv[1] == "keep" else False
torch.ones(16 * 2**20).sum()  # 64 MiB, freed at once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.ones(16 * 2**20).sum()
print(changed, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = 64 * 2**20 // 4096


def page_faults(mode: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    changed, faults = done.stdout.split()
    return changed, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_a_freed_tensor_is_reused_instead_of_faulted_in_again():
    assert page_faults("default") == ("False", pytest.approx(PAGES, rel=0.1))  # glibc as shipped: every page anew
    changed, faults = page_faults("keep")
    assert changed == "True" and faults < PAGES // 20
