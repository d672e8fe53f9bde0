"""WMDP tasks: the same requests and per-question predictions as lm-eval's own ``wmdp_*`` tasks on the
same rows (lm-eval's task pointed at a local file), chance accuracy for a random-init model, the group."""

from __future__ import annotations

import json
from pathlib import Path

import lm_eval
import pytest
import yaml
from lm_eval.api.task import ConfigurableTask
from lm_eval.models.huggingface import HFLM

from harness_ext.demo.tiny_model import build_tiny_model
from harness_ext.evaluation import evaluate, task_manager
from tests.conftest import SHARED, requires
from unlearn_tasks.datasource import DataError
from unlearn_tasks.wmdp.data import load_wmdp

WMDP = SHARED / "data" / "wmdp"
pytestmark = requires(WMDP / "bio.json", "WMDP data")
ROWS = 200


def builtin_task(subject: str, data_file: Path) -> ConfigurableTask:
    """lm-eval's own ``wmdp_<subject>`` config (its YAML files as shipped), reading ``data_file``."""
    folder = Path(lm_eval.__file__).parent / "tasks" / "wmdp"
    config = yaml.safe_load((folder / "_default_template_yaml").read_text())
    config.update(yaml.safe_load((folder / f"wmdp_{subject}.yaml").read_text()))
    del config["include"], config["dataset_name"]
    config.update(dataset_path="json", dataset_kwargs={"data_files": {"test": str(data_file)}})
    return ConfigurableTask(config=config)


def predictions(samples: list[dict]) -> list[tuple]:
    ordered = sorted(samples, key=lambda s: s["doc_id"])
    return [(s["arguments"], max(range(4), key=lambda i: s["filtered_resps"][i][0]), s["acc"]) for s in ordered]


@pytest.fixture(scope="module")
def bio_rows():
    return json.loads((WMDP / "bio.json").read_text(encoding="utf-8"))[:ROWS]


@pytest.fixture(scope="module")
def random_model(bio_rows):
    texts = [row["question"] + " " + " ".join(row["choices"]) for row in bio_rows]
    model, tokenizer = build_tiny_model(texts, vocab_size=1024, seed=0)
    return HFLM(pretrained=model, tokenizer=tokenizer, device="cpu", batch_size=16)


def test_same_predictions_as_lm_evals_wmdp_and_chance_accuracy(tmp_path, monkeypatch, bio_rows, random_model):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(SHARED / "data"))
    data_file = tmp_path / "bio.jsonl"
    data_file.write_text("".join(json.dumps(row) + "\n" for row in bio_rows), encoding="utf-8")

    theirs = lm_eval.simple_evaluate(model=random_model, tasks=[builtin_task("bio", data_file)],
                                     task_manager=task_manager(), log_samples=True)
    ours = evaluate(random_model, ["unlearn_wmdp_bio"], limit=ROWS, log_samples=True, env_info=False)

    their_predictions = predictions(theirs["samples"]["wmdp_bio"])
    assert len(their_predictions) == ROWS
    assert predictions(ours["samples"]["unlearn_wmdp_bio"]) == their_predictions
    accuracy = ours["results"]["unlearn_wmdp_bio"]["acc,none"]
    assert accuracy == theirs["results"]["wmdp_bio"]["acc,none"]
    assert 0.15 <= accuracy <= 0.35  # chance is 0.25; a random-init model picks letters, not answers


def test_group_is_the_sample_weighted_mean(monkeypatch, random_model):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(SHARED / "data"))
    out = evaluate(random_model, ["unlearn_wmdp"], limit=6, env_info=False)
    subjects = [out["results"][f"unlearn_wmdp_{s}"]["acc,none"] for s in ("bio", "chem", "cyber")]
    assert out["results"]["unlearn_wmdp"]["acc,none"] == pytest.approx(sum(subjects) / 3, abs=1e-12)
    assert out["n-samples"]["unlearn_wmdp_chem"]["effective"] == 6


def test_bad_wmdp_file(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"wmdp/chem\.json"):
        load_wmdp("chem")
    (tmp_path / "wmdp").mkdir()
    (tmp_path / "wmdp" / "chem.json").write_text(json.dumps([{"question": "q", "choices": ["a", "b"], "answer": 0}]))
    with pytest.raises(DataError, match=r"chem\.json:1 \(row 1\): field 'choices' must be a list of 4 strings, got a list"):
        load_wmdp("chem")
