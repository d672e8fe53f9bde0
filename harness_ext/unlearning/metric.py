"""The calibration metric of the controls: an lm-eval task on the in-memory model, and the target's cached value.

The target's value is cached on disk, keyed on everything that determines it (model content, task
config, code, data; see ``target_cache.py``), so it is computed once per target and never shared
between different models, code or data.

A metric that no generation feeds (e.g. ``es_retain``: per-token greedy matches from forward passes)
is measured without generating: the task's generation requests get empty strings, which only the
generation-based keys (ROUGE, model utility) read. Each measurement records its work (forward
batches, unique sequences scored, generations) for the trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from harness_ext.unlearning.config import UnlearnError
from harness_ext.unlearning.control import bar_for
from harness_ext.unlearning.target_cache import TargetCache, target_ingredients


@dataclass(frozen=True)
class MetricSpec:
    """Which lm-eval metric calibrates a control: ``results[task][f"{metric},none"]``."""

    metric: str = "es_retain"
    task: str = "unlearn_tofu_utility"
    limit: int | None = None
    metadata: dict = field(default_factory=dict)
    batch_size: int = 16

    def __post_init__(self):
        if self.limit is not None and self.limit < 1:
            raise UnlearnError(f"--calibrate-limit must be at least 1, got {self.limit}")

    def task_config(self) -> dict:
        """What the metric's value depends on besides the model, code and data (the batch size does not count)."""
        config = asdict(self)
        del config["batch_size"]
        return config


def read_metric(results: dict, spec: MetricSpec) -> float:
    """The metric's value from lm-eval's results dict; a clear error naming what is there instead."""
    task_results = results.get("results", {}).get(spec.task)
    if task_results is None:
        raise UnlearnError(f"task {spec.task!r} is not in the results; got {sorted(results.get('results', {}))}")
    key = f"{spec.metric},none"
    if key not in task_results:
        known = sorted(name.split(",")[0] for name in task_results if "_stderr" not in name and "," in name)
        raise UnlearnError(f"metric {spec.metric!r} is not reported by task {spec.task!r}; known: {', '.join(known)}")
    return float(task_results[key])


GENERATED_TOFU_KEYS = ("rougeL", "model_utility")  # the TOFU keys that read generated answers


def needs_generation(spec: MetricSpec) -> bool:
    """Whether ``spec``'s value reads generated text; True for any task not known to be otherwise."""
    if spec.task.startswith("unlearn_tofu_"):
        return spec.metric.startswith(GENERATED_TOFU_KEYS)
    return True


def work_of(lm) -> dict:
    """What one measurement ran: forward batches, unique sequences scored, generations."""
    stats = getattr(lm, "stats", Counter())
    return {key: int(stats.get(key, 0)) for key in ("forward_batches", "sequences_scored", "generations")}


def lm_eval_metric(spec: MetricSpec, work: list | None = None) -> Callable:
    """``metric_fn(model, tokenizer) -> float``: ``spec``'s task on the in-memory model through unlearn_hf.

    The evaluation runs where the model is, in its dtype. Each call appends its work to ``work``.
    """

    def measure(model, tokenizer) -> float:
        from harness_ext.evaluation import evaluate

        was_training = model.training
        model.eval()
        try:
            lm = calibration_lm(needs_generation(spec))(pretrained=model, tokenizer=tokenizer, batch_size=spec.batch_size)
            results = evaluate(lm, [spec.task], limit=spec.limit, metadata=spec.metadata or None, env_info=False)
        finally:
            model.train(was_training)
        if work is not None:
            work.append(work_of(lm))
        return read_metric(results, spec)

    return measure


def calibration_lm(generate: bool):
    """``unlearn_hf``, or (``generate=False``) a subclass whose generation requests get empty strings unrun."""
    from harness_ext.models import UnlearnHFLM

    if generate:
        return UnlearnHFLM

    class ForwardOnlyHFLM(UnlearnHFLM):
        def generate_until(self, requests, disable_tqdm: bool = False):
            self.stats["generation_requests_skipped"] += len(requests)
            return ["" for _ in requests]

    return ForwardOnlyHFLM


@dataclass
class Calibration:
    """A control's metric: ``spec`` measured by ``metric_fn`` (default: the lm-eval task, with the target cached).

    A custom ``metric_fn`` is measured every time: the cache only knows lm-eval task configs.
    """

    spec: MetricSpec
    metric_fn: Callable | None = None
    work: list = field(default_factory=list)

    def measure(self, model, tokenizer) -> float:
        """The metric of ``model`` now (its work is appended to ``self.work`` for the lm-eval metric)."""
        return float((self.metric_fn or lm_eval_metric(self.spec, self.work))(model, tokenizer))

    def target_value(self, model, tokenizer) -> tuple[float, bool]:
        """``(value, was_cached)`` for the target model."""
        if self.metric_fn is not None:
            return self.measure(model, tokenizer), False
        ingredients = target_ingredients(model, tokenizer, self.spec.task_config())
        return TargetCache().value(ingredients, lambda: self.measure(model, tokenizer))

    def state_dict(self) -> dict:
        """The measurements' work so far (for a resume state)."""
        return {"work": self.work}

    def load_state_dict(self, state: dict) -> None:
        self.work[:] = state["work"]  # in place: lm_eval_metric appends to this list

    def target_bar(self, model, tokenizer, tau: float) -> dict:
        """The calibration record of a control: the metric, the target's value and the bar τ × value."""
        before = len(self.work)
        value, cached = self.target_value(model, tokenizer)
        record = {
            "metric": self.spec.metric, "task": self.spec.task, "limit": self.spec.limit, "metadata": self.spec.metadata,
            "metric_fn": "lm-eval" if self.metric_fn is None else "custom",
            "target_value": value, "cached": cached, "bar": bar_for(value, tau),
            "generates": self.metric_fn is None and needs_generation(self.spec),
        }
        if len(self.work) > before:
            record["target_work"] = self.work[-1]
        return record

    def annotate(self, trace: list[dict]) -> list[dict]:
        """``trace`` with each measurement's work (the last ``len(trace)`` measurements, in order)."""
        if self.metric_fn is not None or not trace:
            return trace
        return [{**entry, **work} for entry, work in zip(trace, self.work[-len(trace):])]
