"""``unlearn-bench reference``: a retain model's run → its reference for forget quality and privleak.

Each entry records the settings it was computed under (convention, task version, chat template, system
instruction: the task that reads it refuses other ones) and where it came from (model, dtype, limit,
attack, results file), read from the lm-eval results file written beside the samples file (the chat
template and system instruction from the task's metadata ``prompt_settings``, where the task recorded
what it rendered its prompts with).
"""

from __future__ import annotations

import json
from pathlib import Path

from lm_eval.utils import sanitize_model_name

from harness_ext.io import atomic_write_json
from unlearn_tasks import prompts
from unlearn_tasks.tofu.reference import (
    MIA_KEYS,
    PROMPT_SETTINGS_KEY,
    RetainReferenceError,
    mia_reference_entry,
    reference_payload,
    truth_ratio_entry,
)

SAMPLES_GLOB = "samples_unlearn_tofu_forget*_*.jsonl"
MIA_SAMPLES_GLOB = "samples_unlearn_tofu_mia_forget*_*.jsonl"
# MUSE privleak tasks store the same four AUCs; their Min-K% (k = 40 %) key is auc_mink40.
MUSE_PRIVLEAK_GLOB = "samples_unlearn_muse_*_privleak_*.jsonl"
MUSE_SAMPLE_KEYS = {"auc_loss": "auc_loss", "auc_zlib": "auc_zlib", "auc_mink": "auc_mink40", "auc_minkpp": "auc_minkpp"}
GLOBS = (SAMPLES_GLOB, MIA_SAMPLES_GLOB, MUSE_PRIVLEAK_GLOB)
PLAIN_PROMPTS = {"chat_template": None, "system_instruction": None}  # MUSE: plain-text prompts only


def model_folder(run: Path, model_name: str | None = None) -> Path:
    """The folder of one model's samples under an lm-eval ``--output_path`` (lm-eval writes
    ``<output_path>/<sanitized model name>/samples_*.jsonl``): the one asked for, else the only one."""
    folders = sorted({path.parent for pattern in GLOBS for path in run.rglob(pattern)})
    if not folders:
        raise RetainReferenceError(
            f"no {' or '.join(GLOBS)} under {run}: evaluate the retain model with --output_path and --log_samples")
    names = ", ".join(str(folder.relative_to(run)) for folder in folders)
    if model_name is not None:
        chosen = [folder for folder in folders if folder.name in (model_name, sanitize_model_name(model_name))]
        if len(chosen) != 1:
            raise RetainReferenceError(f"--model-name {model_name!r} matches {len(chosen)} model folders under {run}; "
                                       f"the models found: {names}")
        return chosen[0]
    if len(folders) > 1:
        raise RetainReferenceError(f"{run} holds the samples of several models ({names}); "
                                   "say which is the retain model with --model-name")
    return folders[0]


def latest_samples(folder: Path, pattern: str = SAMPLES_GLOB) -> dict[str, Path]:
    """The newest ``--log_samples`` file of each task matching ``pattern`` in one model's folder."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob(pattern), key=lambda p: p.name):
        found[path.name[len("samples_"):].rsplit("_", 1)[0]] = path
    return found


def run_settings(samples: Path, task: str, plain_prompts: bool = False) -> tuple[dict, dict]:
    """(settings, provenance) of the run that wrote ``samples``, from the results file of the same time
    stamp; ``plain_prompts``: the task never applies a chat template or system instruction (MUSE)."""
    results_path = samples.with_name(f"results_{samples.stem.rsplit('_', 1)[1]}.json")
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RetainReferenceError(
            f"{samples}: its run's results file {results_path.name} is missing or unreadable ({error}); the reference "
            "records the run's settings from it: pass the whole lm-eval --output_path folder") from None
    metadata = results.get("configs", {}).get(task, {}).get("metadata") or {}
    prompt_settings = PLAIN_PROMPTS if plain_prompts else metadata.get(PROMPT_SETTINGS_KEY)
    if prompt_settings is None or task not in results.get("versions", {}):
        raise RetainReferenceError(
            f"{results_path} does not record {task}'s version and {PROMPT_SETTINGS_KEY} (the chat template and "
            "system instruction its prompts were rendered with): evaluate the retain model again with this version")
    settings = {"convention": metadata.get("convention", prompts.DEFAULT), "task_version": results["versions"][task],
                **{key: prompt_settings.get(key) for key in ("chat_template", "system_instruction")}}
    config = results.get("config", {})
    model_args = config.get("model_args")
    arguments = model_args if isinstance(model_args, dict) else {}
    attack = {key: value for key, value in metadata.items() if key == "attack" or key.startswith("attack_")}
    provenance = {"model": results.get("model_name") or arguments.get("pretrained") or config.get("model"),
                  "dtype": config.get("model_dtype") or arguments.get("dtype"), "limit": config.get("limit"),
                  "attack": attack or None, "results_file": results_path.name}
    return settings, provenance


def truth_ratios(samples: Path) -> list[tuple[str, float]]:
    """(question, R) per document, in document order, from one samples file."""
    items = []
    for number, line in enumerate(samples.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            sample = json.loads(line)
            value = sample["forget_quality"]
            items.append((value["index"], sample["doc"]["question"], float(value["truth_ratio"])))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise RetainReferenceError(f"{samples}:{number}: not a TOFU forget sample ({error})") from None
    items.sort()
    if [index for index, _, _ in items] != list(range(len(items))):
        raise RetainReferenceError(f"{samples}: documents are missing (was the run made with --limit?)")
    return [(question, ratio) for _, question, ratio in items]


def mia_aucs(samples: Path, sample_keys: dict[str, str] | None = None) -> tuple[dict, int, int]:
    """(the four AUCs, members, non-members) of one MIA task's samples file; ``sample_keys`` maps each
    reference key to the samples' key when they differ (MUSE privleak)."""
    from unlearn_metrics.mia import roc_auc

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
            raise RetainReferenceError(f"{samples}:{number}: not a TOFU MIA sample ({error})") from None
    for split, seen in indices.items():
        if sorted(seen) != list(range(len(seen))) or not seen:
            raise RetainReferenceError(f"{samples}: {split} documents are missing")
    aucs = {key: None if None in members + nonmembers else roc_auc(members, nonmembers)
            for key, (members, nonmembers) in scores.items()}
    return aucs, len(indices["forget"]), len(indices["holdout"])


def build_reference(run: str | Path, out: str | Path, model_name: str | None = None) -> dict:
    """A retain model's reference from its run: per-question truth ratios of each TOFU forget task and
    the AUCs of each MIA task whose ``--log_samples`` files are in the run (of ``model_name`` when the
    run holds several models), each with the settings and provenance of the run that wrote it."""
    folder = model_folder(Path(run), model_name)
    entries = {}
    for task, path in latest_samples(folder, SAMPLES_GLOB).items():
        entries[task] = truth_ratio_entry(truth_ratios(path), *run_settings(path, task))
    for pattern, keys in ((MIA_SAMPLES_GLOB, None), (MUSE_PRIVLEAK_GLOB, MUSE_SAMPLE_KEYS)):
        for task, path in latest_samples(folder, pattern).items():
            entries[task] = mia_reference_entry(*mia_aucs(path, keys), *run_settings(path, task, keys is not None))
    payload = reference_payload(entries)
    atomic_write_json(out, payload)
    return payload


def describe_entry(entry: dict) -> str:
    """One line about a reference entry, for the ``reference`` command's output."""
    made = f"{entry['provenance']['model']}, convention {entry['settings']['convention']}"
    if "truth_ratio" in entry:
        return f"{len(entry['truth_ratio'])} truth ratios ({made})"
    aucs = ", ".join(f"{key}={entry[key]:.4f}" for key in ("auc_mink", "auc_minkpp") if entry.get(key) is not None)
    return f"MIA AUCs on {entry['members']} members / {entry['nonmembers']} non-members ({aucs}; {made})"
