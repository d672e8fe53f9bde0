"""``unlearn-bench reference``: a retain model's run → per-item truth ratios for forget quality."""

from __future__ import annotations

import json
from pathlib import Path

from harness_ext.io import atomic_write_json
from unlearn_tasks.tofu.reference import ReferenceError, reference_payload

SAMPLES_GLOB = "samples_unlearn_tofu_forget*_*.jsonl"


def latest_samples(run: Path) -> dict[str, Path]:
    """The newest ``--log_samples`` file of each TOFU forget task under an lm-eval ``--output_path``."""
    found: dict[str, Path] = {}
    for path in sorted(Path(run).rglob(SAMPLES_GLOB), key=lambda p: p.name):
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        found[task] = path
    if not found:
        raise ReferenceError(
            f"no {SAMPLES_GLOB} under {run}: evaluate the retain model with --output_path and --log_samples"
        )
    return found


def truth_ratios(samples: Path) -> list[tuple[str, float]]:
    """(question, R) per document, in document order, from one samples file."""
    items = []
    for number, line in enumerate(samples.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            sample = json.loads(line)
            value = sample["forget_quality"]
            items.append((value["index"], sample["doc"]["question"], float(value["truth_ratio"])))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ReferenceError(f"{samples}:{number}: not a TOFU forget sample ({error})") from None
    items.sort()
    if [index for index, _, _ in items] != list(range(len(items))):
        raise ReferenceError(f"{samples}: documents are missing (was the run made with --limit?)")
    return [(question, ratio) for _, question, ratio in items]


def build_reference(run: str | Path, out: str | Path) -> dict:
    payload = reference_payload({task: truth_ratios(path) for task, path in latest_samples(Path(run)).items()})
    atomic_write_json(out, payload)
    return payload
