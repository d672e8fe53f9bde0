"""Shared fixtures: the shared data, a memorising tiny model trained once per run, and SmolLM2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TOFU_DIR = SHARED / "data" / "tofu"
ANCHORS = SHARED / "anchors" / "open-unlearning-smollm2-forget01"
CACHE = Path(os.environ.get("UNLEARN_TEST_CACHE", Path.home() / ".cache" / "unlearn-bench-tests"))

os.environ.setdefault("HF_HOME", str(CACHE / "hf_home"))  # datasets' Arrow cache stays out of ~
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def requires(path: Path, what: str):
    """Skip, saying why, when a file from ../shared is absent (CI has them all)."""
    return pytest.mark.skipif(not path.exists(), reason=f"{what} not found at {path} (../shared is absent)")


@pytest.fixture(scope="session")
def tofu_data_dir():
    """UNLEARN_DATA_DIR pointing at the real TOFU data in ../shared/data for the whole session."""
    if not TOFU_DIR.exists():
        pytest.skip(f"real TOFU data not found at {TOFU_DIR} (../shared is absent)")
    previous = os.environ.get("UNLEARN_DATA_DIR")
    os.environ["UNLEARN_DATA_DIR"] = str(SHARED / "data")
    yield SHARED / "data"
    if previous is None:
        os.environ.pop("UNLEARN_DATA_DIR")
    else:
        os.environ["UNLEARN_DATA_DIR"] = previous


@pytest.fixture(scope="session")
def memorised_model(tofu_data_dir):
    """A tiny Llama trained to memorise TOFU forget01 + 40 retain questions (cached on disk)."""
    from tests.memorised import VERSION, train_memorised_model

    return train_memorised_model(CACHE / f"memorised-forget01-v{VERSION}")


@pytest.fixture(scope="session")
def smollm2():
    """The real pretrained SmolLM2-135M-Instruct checkpoint, materialised offline by ../shared/tools."""
    tool = SHARED / "tools" / "get-smollm2"
    if not tool.exists():
        pytest.skip(f"{tool} not found (../shared is absent)")
    env = dict(os.environ, PATH=f"{Path(os.sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run([str(tool), str(CACHE / "smollm2")], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        pytest.fail(f"get-smollm2 failed: {done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: tiny models' small matrices gain nothing from more, and on shared
    cores OpenMP threads waiting for descheduled peers make generation many times slower. No assertion
    depends on it (use with ``pytest.mark.usefixtures``)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
