"""Scoring one member of the family, clean or attacked, through lm-eval; each result cached on disk.

Each (member, attack) evaluation is written atomically to ``<cache>/<member>/<attack>.json`` with the
SHA-256 of everything that determines it: the member's weights and tokenizer (content hash), the
attack and its parameters, the tasks, limits and batch size, the data files and the package version.
A rerun reuses every entry whose key still matches, so an interrupted study restarts where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from harness_ext.robustness.attacks import Attack

CLEAN = "clean"
SPLITS = ("forget", "retain")


@dataclass(frozen=True)
class Metric:
    """A study metric: per split, the task (``forget``, ``utility`` or ``mia``) and the key it reports."""

    name: str
    keys: dict[str, tuple[str, str]]


METRICS = (
    Metric("prob", {"forget": ("forget", "prob"), "retain": ("utility", "prob_retain")}),
    Metric("rougeL_recall", {"forget": ("forget", "rougeL_recall"), "retain": ("utility", "rougeL_recall_retain")}),
    Metric("truth_ratio", {"forget": ("forget", "truth_ratio"), "retain": ("utility", "truth_ratio_retain")}),
    Metric("es", {"forget": ("forget", "es"), "retain": ("utility", "es_retain")}),
    Metric("em", {"forget": ("forget", "em"), "retain": ("utility", "em_retain")}),
    Metric("es_para", {"forget": ("forget", "es_para")}),
    Metric("mia_auc_loss", {"forget": ("mia", "auc_loss")}),
)


@dataclass(frozen=True)
class ScoringSettings:
    """What the scores depend on besides the model and the attack."""

    forget: str = "forget10"
    limit: int | None = None  # first documents of the forget and utility tasks (MIA: all); None = all
    batch_size: int = 16
    device: str = "cpu"

    def tasks(self) -> dict[str, str]:
        return {"forget": f"unlearn_tofu_{self.forget}", "utility": "unlearn_tofu_utility",
                "mia": f"unlearn_tofu_mia_{self.forget}"}

    def calls(self) -> list[tuple[tuple[str, ...], int | None]]:
        """The lm-eval calls: (task kinds, limit). The forget and utility tasks are read up to ``limit`` and the
        utility task at most up to its last retain document (they come first; the others are not used); the MIA
        task (log-likelihoods only, no generation) is read whole, so its AUC compares every member."""
        from unlearn_tasks.tofu.data import load_tofu

        retain = len(load_tofu("retain_perturbed"))
        if self.limit is not None and self.limit <= retain:
            return [(("forget", "utility"), self.limit), (("mia",), None)]
        return [(("forget",), self.limit), (("utility",), retain), (("mia",), None)]


class Scorer:
    """Scores loaded members under attacks, reading and writing the on-disk cache."""

    def __init__(self, settings: ScoringSettings, cache: Path, log=print):
        from harness_ext.provenance import number_provenance

        self.settings, self.cache, self.log = settings, Path(cache), log
        tasks = settings.tasks()
        self.common = {"tasks": tasks, "calls": settings.calls(), "batch_size": settings.batch_size,
                       **number_provenance(list(tasks.values()))}

    def entry(self, member_name: str, attack_name: str) -> Path:
        return self.cache / member_name / f"{attack_name}.json"

    def key(self, member_hash: str, attack_name: str, params: dict) -> str:
        described = {"member": member_hash, "attack": attack_name, "params": params, **self.common}
        return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()

    def cached(self, member_name: str, attack_name: str, key: str) -> dict | None:
        path = self.entry(member_name, attack_name)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return stored["scores"] if isinstance(stored, dict) and stored.get("key") == key else None

    def scores(self, member_name: str, member_hash: str, model, tokenizer, attack: Attack | None, params: dict) -> dict:
        """``{split: {metric: value}}`` of the member (``model``) clean (``attack=None``) or attacked."""
        from harness_ext.io import atomic_write_json

        name = CLEAN if attack is None else attack.name
        key = self.key(member_hash, name, params)
        stored = self.cached(member_name, name, key)
        if stored is not None:
            return stored
        start = time.perf_counter()
        attacked = model if attack is None or attack.is_input else attack.transform(model, tokenizer, params)
        metadata = {} if attack is None else attack.metadata(params)
        scores = self._evaluate(attacked, tokenizer, metadata)
        seconds = time.perf_counter() - start
        atomic_write_json(self.entry(member_name, name), {"key": key, "member": member_name, "attack": name,
                                                         "params": params, "seconds": round(seconds, 2),
                                                         "scores": scores})
        self.log(f"[robustness] {member_name} / {name}: {seconds:.1f} s")
        return scores

    def _evaluate(self, model, tokenizer, metadata: dict) -> dict:
        from harness_ext.evaluation import evaluate
        from harness_ext.models import UnlearnHFLM

        lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=self.settings.batch_size)
        tasks, results = self.common["tasks"], {}
        for kinds, limit in self.common["calls"]:
            run = evaluate(lm, [tasks[kind] for kind in kinds], limit=limit, metadata=metadata, env_info=False)
            results |= {kind: run["results"][tasks[kind]] for kind in kinds}
        return {split: {metric.name: float(results[metric.keys[split][0]][f"{metric.keys[split][1]},none"])
                        for metric in METRICS if split in metric.keys}
                for split in SPLITS}
