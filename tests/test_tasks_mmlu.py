"""The unlearn_mmlu tasks (57 subjects, 5-shot) and the unlearn_mmlu_mini subset, run through lm-eval.

Expected values come from the raw CSV files read here with the csv module, not from unlearn_tasks.mmlu.data.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import lm_eval
import pytest
from lm_eval.tasks._yaml_loader import load_yaml
from lm_eval.utils import apply_template

from tests.test_tasks_probes import DATA_DIR, ScriptedLM, evaluate, tiny_hf_model
from unlearn_tasks.datasource import DataError
from unlearn_tasks.mmlu.data import MMLU_SUBJECTS

MMLU_DIR = DATA_DIR / "mmlu"
LETTERS = "ABCD"
LM_EVAL_MMLU = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
TASK_DIR = Path(str(files("unlearn_tasks"))) / "mmlu"


def raw_rows(subject: str, split: str) -> list[dict]:
    with open(MMLU_DIR / split / f"{subject}_{split}.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def hub_document(row: dict) -> dict:
    """A raw CSV row in the ``cais/mmlu`` schema that lm-eval's own mmlu template reads."""
    return {"question": row["question"], "choices": [row[f"choice{i}"] for i in range(4)], "answer": int(row["answer"])}


def letter_scorer(right: Callable) -> Callable:
    """Prefers the raw gold letter where ``right(request)``, the next letter elsewhere."""
    rows = {}

    def score(request):
        subject = request.task_name.removeprefix("unlearn_mmlu_mini_").removeprefix("unlearn_mmlu_")
        stride = 10 if request.task_name.startswith("unlearn_mmlu_mini_") else 1
        if subject not in rows:
            rows[subject] = raw_rows(subject, "test")
        row = rows[subject][request.doc_id * stride]
        assert request.doc["question"] == row["question"]
        preferred = int(row["answer"]) if right(request) else (int(row["answer"]) + 1) % 4
        return (0.0, True) if request.args[1] == " " + LETTERS[preferred] else (-5.0, False)

    return score


@pytest.fixture
def local_data(monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(DATA_DIR))


def test_mini_is_every_tenth_question_and_acc_is_micro_average(local_data):
    # Right on even doc_ids (test rows 0, 20, 40, ...), wrong on odd ones (rows 10, 30, ...).
    model = ScriptedLM(letter_scorer(lambda request: request.doc_id % 2 == 0))
    output = evaluate(model, ["unlearn_mmlu_mini"], None)
    right_total = kept_total = 0
    for subject in MMLU_SUBJECTS:
        kept = math.ceil(len(raw_rows(subject, "test")) / 10)
        right = math.ceil(kept / 2)
        task = f"unlearn_mmlu_mini_{subject}"
        assert output["n-samples"][task]["effective"] == kept
        assert output["results"][task]["acc,none"] == pytest.approx(right / kept)
        right_total, kept_total = right_total + right, kept_total + kept
    assert kept_total == 1430  # of 14,042 test questions
    micro = right_total / kept_total
    assert output["groups"]["unlearn_mmlu_mini"]["acc,none"] == pytest.approx(micro)
    macro = sum(output["results"][f"unlearn_mmlu_mini_{s}"]["acc,none"] for s in MMLU_SUBJECTS) / len(MMLU_SUBJECTS)
    assert abs(micro - macro) > 1e-4  # the check above tells the two apart


def test_full_mmlu_reports_every_subject_and_the_overall_acc(local_data):
    model = ScriptedLM(letter_scorer(lambda request: request.doc_id == 0))
    output = evaluate(model, ["unlearn_mmlu"], 2)
    for subject in MMLU_SUBJECTS:
        assert output["results"][f"unlearn_mmlu_{subject}"]["acc,none"] == 0.5
    assert output["groups"]["unlearn_mmlu"]["acc,none"] == pytest.approx(0.5)
    assert output["n-shot"]["unlearn_mmlu_anatomy"] == 5
    assert len(model.seen) == 57 * 2 * 4


def test_prompt_is_lm_eval_mmlu_five_shot(local_data):
    model = ScriptedLM(lambda request: (0.0, True))
    evaluate(model, ["unlearn_mmlu_high_school_physics"], 1)
    contexts = {request.args[0] for request in model.seen}
    assert [request.args[1] for request in model.seen] == [" A", " B", " C", " D"]
    # lm-eval's own template and description, rendered on the raw rows: 5 dev shots, then the question.
    template = load_yaml(LM_EVAL_MMLU / "_default_template_yaml", resolve_func=False)
    description = load_yaml(LM_EVAL_MMLU / "mmlu_high_school_physics.yaml", resolve_func=False)["description"]
    shots = [hub_document(row) for row in raw_rows("high_school_physics", "dev")]
    question = hub_document(raw_rows("high_school_physics", "test")[0])
    blocks = [apply_template(template["doc_to_text"], doc) + " " + LETTERS[doc["answer"]] for doc in shots]
    expected = description + "\n\n".join(blocks) + "\n\n" + apply_template(template["doc_to_text"], question)
    assert contexts == {expected}


def test_generated_yamls_match_the_generator(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_configs", TASK_DIR / "generate_configs.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    written = generator.write_configs(tmp_path)
    assert len(written) == 2 * (57 + 1)
    for path in written:
        assert path.read_text(encoding="utf-8") == (TASK_DIR / path.name).read_text(encoding="utf-8"), path.name


def test_missing_subject_file_names_file_and_variable(tmp_path, monkeypatch):
    (tmp_path / "mmlu" / "dev").mkdir(parents=True)
    (tmp_path / "mmlu" / "dev" / "anatomy_dev.csv").write_bytes((MMLU_DIR / "dev" / "anatomy_dev.csv").read_bytes())
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"test/anatomy_test\.csv.*UNLEARN_DATA_DIR"):
        evaluate(ScriptedLM(score=None), ["unlearn_mmlu_anatomy"], 2)


def test_tiny_hf_model_runs_every_subject(local_data):
    texts = [row["question"] for row in raw_rows("anatomy", "test")]
    output = evaluate(tiny_hf_model(texts), ["unlearn_mmlu"], 5)
    for subject in MMLU_SUBJECTS:
        assert output["n-samples"][f"unlearn_mmlu_{subject}"]["effective"] == 5
        assert output["results"][f"unlearn_mmlu_{subject}"]["acc,none"] in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    mean = sum(output["results"][f"unlearn_mmlu_{s}"]["acc,none"] for s in MMLU_SUBJECTS) / len(MMLU_SUBJECTS)
    assert output["groups"]["unlearn_mmlu"]["acc,none"] == pytest.approx(mean)  # equal sizes: micro = macro
