"""benchmarks/open_unlearning_evaluator.py: open-unlearning's evaluator command, its local data, its
results, the ratio, and (slow, with ``.venv-ou`` and a checkout) a real run on two rows per dataset."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import ANCHORS, ROOT, TOFU_DIR

OU_PYTHON = ROOT / ".venv-ou" / "bin" / "python"
OU_CHECKOUT = Path(os.environ.get("OPEN_UNLEARNING_CHECKOUT", ROOT.parent / "open-unlearning"))


def _benchmark_module(name: str):
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def oue():
    return _benchmark_module("open_unlearning_evaluator")


def _hf(name: str, path: str = "locuslab/TOFU") -> dict:
    return {"hf_args": {"name": name, "split": "train", "path": path}, "question_key": "question"}


#: the shape of open-unlearning's composed TOFU configuration: datasets under metrics and nested pre_compute
COMPOSED = {
    "model": {"model_args": {"pretrained_model_name_or_path": "/m"}},
    "eval": {"tofu": {"batch_size": 32, "metrics": {
        "forget_Q_A_Prob": {"datasets": {"TOFU_QA_forget": {"args": _hf("forget01_perturbed")}}},
        "model_utility": {"pre_compute": {"ra_Truth_Ratio": {"pre_compute": {"ra_Q_A_Prob": {
            "datasets": {"TOFU_QA_ra": {"args": _hf("real_authors_perturbed")}}}}}}},
        "privleak": {"pre_compute": {"mia_min_k": {"datasets": {
            "TOFU_QA_forget": {"args": _hf("forget01_perturbed")},
            "TOFU_QA_holdout": {"args": _hf("holdout01")}}}}},
        "other": {"datasets": {"MUSE": {"args": _hf("news", path="muse-bench/MUSE-News")}}},
    }}},
}


def test_workload_overrides_name_the_default_tofu_evaluation_and_the_model(oue, tmp_path):
    overrides = oue.base_overrides("/models/smollm2", tmp_path / "out")
    for expected in ("experiment=eval/tofu/default", "forget_split=forget01", "holdout_split=holdout01",
                     "+eval/tofu_metrics=exact_memorization", "eval.tofu.batch_size=32",
                     "model.model_args.pretrained_model_name_or_path=/models/smollm2",
                     "model.tokenizer_args.pretrained_model_name_or_path=/models/smollm2",
                     "model.model_args.torch_dtype=float32", "model.model_args.device_map=cpu",
                     "~model.model_args.attn_implementation", "model.template_args.apply_chat_template=false",
                     "model.template_args.system_prompt_with_special_tokens=null",
                     "model.template_args.user_start_tag='Question: '", "model.template_args.user_end_tag='\n'",
                     "model.template_args.asst_start_tag='Answer: '", f"paths.output_dir={tmp_path / 'out'}"):
        assert expected in overrides
    assert "eval.tofu.batch_size=8" in oue.base_overrides("/m", tmp_path, batch_size=8)


def test_every_tofu_dataset_is_read_from_the_local_jsonl_files(oue, tmp_path):
    found = oue.hub_datasets(COMPOSED)
    assert found == [
        ("eval.tofu.metrics.forget_Q_A_Prob.datasets.TOFU_QA_forget.args.hf_args", "forget01_perturbed"),
        ("eval.tofu.metrics.model_utility.pre_compute.ra_Truth_Ratio.pre_compute.ra_Q_A_Prob.datasets.TOFU_QA_ra"
         ".args.hf_args", "real_authors_perturbed"),
        ("eval.tofu.metrics.privleak.pre_compute.mia_min_k.datasets.TOFU_QA_forget.args.hf_args", "forget01_perturbed"),
        ("eval.tofu.metrics.privleak.pre_compute.mia_min_k.datasets.TOFU_QA_holdout.args.hf_args", "holdout01"),
    ]
    overrides = oue.data_overrides(COMPOSED, tmp_path / "tofu")
    assert len(overrides) == 3 * len(found)
    node = "eval.tofu.metrics.privleak.pre_compute.mia_min_k.datasets.TOFU_QA_holdout.args.hf_args"
    assert f"{node}.path=json" in overrides
    assert f"+{node}.data_files={tmp_path / 'tofu' / 'holdout01.jsonl'}" in overrides
    assert f"~{node}.name" in overrides
    assert not [item for item in overrides if "MUSE" in item or "locuslab" in item]


def test_command_environment_and_composed_config_output(oue, tmp_path):
    argv = oue.command("/venv/bin/python", Path("/ou"), ["a=1", "b=2"])
    assert argv == ["/venv/bin/python", "/ou/src/eval.py", "a=1", "b=2"]
    assert oue.command(".venv-ou/bin/python", Path("ou"), [])[:2] == [str(Path.cwd() / ".venv-ou/bin/python"),
                                                                   str(Path.cwd() / "ou/src/eval.py")]
    env = oue.environment(2, tmp_path)
    assert (env["HF_HUB_OFFLINE"], env["HF_DATASETS_OFFLINE"], env["OMP_NUM_THREADS"]) == ("1", "1", "2")
    assert env["HF_DATASETS_CACHE"].startswith(str(tmp_path))
    printed = "[2025-01-01 10:00:00,000] [WARNING] [real_accelerator.py:162:get_accelerator] Setting ...\nmodel:\n  a: 1\n"
    assert oue.config_text(printed) == "model:\n  a: 1"


def test_a_failed_run_names_the_command_and_its_stderr(oue, tmp_path):
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('hydra said no'); sys.exit(3)"]
    with pytest.raises(oue.OpenUnlearningError) as failed:
        oue.run(argv, dict(os.environ), tmp_path)
    message = str(failed.value)
    assert "exit 3" in message and "hydra said no" in message and "sys.exit(3)" in message
    with pytest.raises(oue.OpenUnlearningError, match="could not start"):
        oue.run([str(tmp_path / "no-python"), "src/eval.py"], dict(os.environ), tmp_path)


def _write_results(folder: Path, summary: dict, logs: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "TOFU_SUMMARY.json").write_text(json.dumps(summary))
    (folder / "TOFU_EVAL.json").write_text(json.dumps(logs))


def test_headline_values_time_and_ratio(oue, tmp_path):
    summary = {"forget_Q_A_Prob": 0.14, "forget_truth_ratio": 0.79, "extraction_strength": 0.04,
               "model_utility": 0.21, "privleak": 4.4}
    _write_results(tmp_path / "out", summary, {"mia_min_k": {"agg_value": 0.478, "auc": 0.478}})
    values = oue.read_results(tmp_path / "out")
    assert values == {"forget_Q_A_Prob": 0.14, "forget_truth_ratio": 0.79, "extraction_strength": 0.04,
                      "model_utility": 0.21, "mia_min_k": 0.478}
    result = {"seconds": 1000.0, "values": values, "datasets": 24,
              "workload": ["/venv/bin/python", "/ou/src/eval.py", "model.template_args.user_end_tag='\n'"]}
    assert oue.ratio(600.0, result) == pytest.approx(0.6)
    lines = oue.report_lines(600.0, result)
    text = "\n".join(lines)
    assert "| mia_min_k | 0.478000 |" in text and "| wall time, subprocess (s) | 1000.0 |" in text
    assert "**ours/open-unlearning = 0.60**" in text and "measured in this run" in text
    assert "24 TOFU dataset nodes" in lines[2] and "user_end_tag" in lines[2]
    assert "\\n" in lines[2] and "\n" not in lines[2]  # the newline tag shown on the command's one line


def test_a_transformers5_checkpoint_is_handed_over_translated(oue, tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    (new / "config.json").write_text(json.dumps({"model_type": "llama", "dtype": "float32",
                                                 "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}}))
    (new / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "TokenizersBackend", "eos_token": "e"}))
    (new / "model.safetensors").write_bytes(b"weights")
    folder = Path(oue.readable_checkpoint(str(new), tmp_path / "scratch"))
    assert folder != new and (folder / "model.safetensors").resolve() == (new / "model.safetensors").resolve()
    config = json.loads((folder / "config.json").read_text())
    assert (config["rope_theta"], config["rope_scaling"], config["torch_dtype"]) == (100000.0, None, "float32")
    assert "rope_parameters" not in config
    assert json.loads((folder / "tokenizer_config.json").read_text()) == {
        "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "e"}
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"model_type": "llama", "rope_theta": 10000.0, "torch_dtype": "float32"}))
    (old / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}))
    assert oue.readable_checkpoint(str(old), tmp_path / "scratch2") == str(old)
    scaled = oue.transformers4_model_config({"rope_parameters": {"rope_theta": 5e5, "rope_type": "llama3", "factor": 8.0}})
    assert scaled["rope_theta"] == 5e5 and scaled["rope_scaling"] == {"rope_type": "llama3", "factor": 8.0}


def test_eval_speed_options(oue):
    eval_speed = _benchmark_module("eval_speed")
    args = eval_speed.parse_args(["--workload", "open-unlearning", "--open-unlearning", "/ou"])
    assert (args.open_unlearning, args.open_unlearning_python) == ("/ou", sys.executable)
    args = eval_speed.parse_args(["--workload", "open-unlearning", "--open-unlearning", "/ou",
                                  "--open-unlearning-python", "/venv/bin/python"])
    assert args.open_unlearning_python == "/venv/bin/python"
    assert eval_speed.parse_args(["--workload", "open-unlearning"]).open_unlearning is None
    with pytest.raises(SystemExit):
        eval_speed.parse_args(["--open-unlearning", "/ou"])  # only its workload is comparable


SUBSET = ("forget01_perturbed", "holdout01", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")


@pytest.mark.slow
@pytest.mark.skipif(not OU_PYTHON.exists(), reason=f"{OU_PYTHON} absent (make setup-open-unlearning OU=PATH)")
@pytest.mark.skipif(not (OU_CHECKOUT / "src" / "eval.py").exists(),
                    reason=f"no open-unlearning checkout at {OU_CHECKOUT} (set OPEN_UNLEARNING_CHECKOUT)")
def test_open_unlearning_runs_on_two_rows_and_agrees_with_the_anchor_per_item(oue, smollm2, tmp_path):
    """Its evaluator on the first two rows of each TOFU file (one thread, about a minute): the time and
    the headline values come back, and per-item probabilities and truth ratios equal the anchor's
    (open-unlearning on all rows, same model) for those rows."""
    if not TOFU_DIR.exists():
        pytest.skip(f"real TOFU data not found at {TOFU_DIR}")
    (tmp_path / "data" / "tofu").mkdir(parents=True)
    for name in SUBSET:
        rows = (TOFU_DIR / f"{name}.jsonl").read_text().splitlines()[:2]
        (tmp_path / "data" / "tofu" / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
    result = oue.evaluate(OU_CHECKOUT, str(OU_PYTHON), str(smollm2), tmp_path / "data", 1, tmp_path / "run")
    assert result["seconds"] > 0 and set(result["values"]) == set(oue.HEADLINE)
    assert result["datasets"] >= len(SUBSET)
    ours = json.loads((tmp_path / "run" / "open-unlearning-eval" / "TOFU_EVAL.json").read_text())
    anchor = json.loads((ANCHORS / "TOFU_EVAL.json").read_text())
    for metric, key in (("forget_Q_A_Prob", "avg_loss"), ("forget_truth_ratio", "score")):
        for index in ("0", "1"):
            assert ours[metric]["value_by_index"][index][key] == pytest.approx(
                anchor[metric]["value_by_index"][index][key], rel=1e-3), (metric, index)
