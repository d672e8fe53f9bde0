"""``unlearn-bench reference``: a retain model's run → per-item truth ratios for forget quality."""

from __future__ import annotations

import json
from pathlib import Path

from harness_ext.io import atomic_write_json
from unlearn_tasks.tofu.reference import ReferenceError, reference_payload

SAMPLES_GLOB = "samples_unlearn_tofu_forget*_*.jsonl"


def latest_samples(run: Path, pattern: str = SAMPLES_GLOB) -> dict[str, Path]:
    """The newest ``--log_samples`` file of each task matching ``pattern`` under an lm-eval ``--output_path``."""
    found: dict[str, Path] = {}
    for path in sorted(Path(run).rglob(pattern), key=lambda p: p.name):
        found[path.name[len("samples_"):].rsplit("_", 1)[0]] = path
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


# --- Membership inference AUCs (privleak's reference) -------------------------------------------------

MIA_SAMPLES_GLOB = "samples_unlearn_tofu_mia_forget*_*.jsonl"
# MUSE privleak tasks store the same four AUCs; their Min-K% (k = 40 %) key is auc_mink40.
MUSE_PRIVLEAK_GLOB = "samples_unlearn_muse_*_privleak_*.jsonl"
MUSE_SAMPLE_KEYS = {"auc_loss": "auc_loss", "auc_zlib": "auc_zlib", "auc_mink": "auc_mink40", "auc_minkpp": "auc_minkpp"}


def mia_aucs(samples: Path, sample_keys: dict[str, str] | None = None) -> dict:
    """One MIA task's reference entry (its four AUCs and document counts) from one samples file;
    ``sample_keys`` maps each reference key to the samples' key when they differ (MUSE privleak)."""
    from unlearn_metrics.mia import roc_auc
    from unlearn_tasks.tofu.reference import MIA_KEYS, mia_reference_entry

    sample_keys = sample_keys or {key: key for key in MIA_KEYS}
    scores = {key: ([], []) for key in MIA_KEYS}
    indices = {"forget": [], "holdout": []}
    for number, line in enumerate(samples.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            sample = json.loads(line)
            indices[sample["doc"]["split"]].append(sample["doc"]["index"])
            for key in MIA_KEYS:
                member, score = sample[sample_keys[key]]
                scores[key][0 if member else 1].append(score)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ReferenceError(f"{samples}:{number}: not a TOFU MIA sample ({error})") from None
    for split, seen in indices.items():
        if sorted(seen) != list(range(len(seen))) or not seen:
            raise ReferenceError(f"{samples}: {split} documents are missing")
    aucs = {key: None if None in members + nonmembers else roc_auc(members, nonmembers)
            for key, (members, nonmembers) in scores.items()}
    return mia_reference_entry(aucs, len(indices["forget"]), len(indices["holdout"]))


def build_reference(run: str | Path, out: str | Path) -> dict:
    """A retain model's reference from its run: per-question truth ratios of each TOFU forget task and
    the AUCs of each MIA task whose ``--log_samples`` files are in the run."""
    forget_samples = latest_samples(Path(run))
    mia_samples = latest_samples(Path(run), MIA_SAMPLES_GLOB)
    muse_samples = latest_samples(Path(run), MUSE_PRIVLEAK_GLOB)
    if not forget_samples and not mia_samples and not muse_samples:
        raise ReferenceError(
            f"no {SAMPLES_GLOB} or {MIA_SAMPLES_GLOB} under {run}: evaluate the retain model with "
            "--output_path and --log_samples"
        )
    payload = reference_payload({task: truth_ratios(path) for task, path in forget_samples.items()})
    payload["tasks"].update({task: mia_aucs(path) for task, path in mia_samples.items()})
    payload["tasks"].update({task: mia_aucs(path, MUSE_SAMPLE_KEYS) for task, path in muse_samples.items()})
    atomic_write_json(out, payload)
    return payload


def describe_entry(entry: dict) -> str:
    """One line about a reference entry, for the ``reference`` command's output."""
    if "truth_ratio" in entry:
        return f"{len(entry['truth_ratio'])} truth ratios"
    aucs = ", ".join(f"{key}={entry[key]:.4f}" for key in ("auc_mink", "auc_minkpp") if entry.get(key) is not None)
    return f"MIA AUCs on {entry['members']} members / {entry['nonmembers']} non-members ({aucs})"
