"""Input attacks through the tasks: every TOFU task applies them from metadata, the scored tokens stay
the clean task's, paraphrase equals the *_para keys, and the results record the attack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from transformers import AutoTokenizer

from unlearn_tasks import attacks
from unlearn_tasks.scoring import LmEvalTokenization

TASK = "unlearn_tofu_forget01"
DOCS = [0, 1, 2]


@pytest.fixture(scope="module")
def run(memorised_model):
    """lm-eval output per attack metadata (None = clean) on the same model instance."""
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    lm = UnlearnHFLM(pretrained=str(memorised_model), batch_size=8, device="cpu")
    cache = {}

    def evaluated(metadata=None):
        key = json.dumps(metadata, sort_keys=True)
        if key not in cache:
            cache[key] = evaluate(lm, [TASK], samples={TASK: DOCS}, metadata=metadata, log_samples=True,
                                  env_info=False, bootstrap_iters=0)
        return cache[key]

    return evaluated


def _requests(output) -> list[tuple[str, str]]:
    """(context, continuation) of every loglikelihood request, document by document."""
    pairs = []
    for sample in output["samples"][TASK]:
        pairs += [tuple(arguments) for arguments in sample["arguments"] if isinstance(arguments[1], str)]
    return pairs


@pytest.mark.parametrize("template", sorted(attacks.TEMPLATES))
def test_jailbreak_changes_the_context_and_scores_the_same_tokens(run, memorised_model, template):
    clean, attacked = _requests(run()), _requests(run({"attack": "jailbreak", "attack_template": template}))
    assert len(clean) == len(attacked) > 0
    marker = attacks.TEMPLATES[template].split("{question}")[0][:40] or attacks.TEMPLATES[template][-40:]
    tokenization = LmEvalTokenization(AutoTokenizer.from_pretrained(memorised_model))
    for (clean_context, continuation), (context, attacked_continuation) in zip(clean, attacked):
        assert marker in context and marker not in clean_context
        assert attacked_continuation == continuation
        assert tokenization.split(context, continuation)[1] == tokenization.split(clean_context, continuation)[1]


def test_paraphrase_equals_the_clean_para_keys(run):
    clean = run()["results"][TASK]
    attacked = run({"attack": "paraphrase"})["results"][TASK]
    for key in ("prob", "es", "rougeL_recall"):
        # the same sequences, batched with different neighbours: equal up to float32 summation order
        assert attacked[f"{key},none"] == pytest.approx(clean[f"{key}_para,none"], rel=1e-5, abs=1e-6), key
    assert clean["es,none"] != clean["es_para,none"] or clean["prob,none"] != clean["prob_para,none"]


def test_noise_changes_the_scores_and_is_recorded(run):
    metadata = {"attack": "noise", "attack_rate": 0.5, "attack_seed": 0}
    output = run(metadata)
    assert output["results"][TASK]["prob,none"] != run()["results"][TASK]["prob,none"]
    recorded = output["configs"][TASK]["metadata"]
    assert {key: recorded[key] for key in metadata} == metadata
    assert "attack" not in run()["configs"][TASK]["metadata"]


def test_bad_attack_metadata_fails_the_run(run):
    with pytest.raises(ValueError, match="known: noise, jailbreak, paraphrase"):
        run({"attack": "gcg"})


def test_unlearn_bench_eval_applies_the_metadata(memorised_model, tmp_path, tofu_data_dir):
    """The command line: --metadata reaches the tasks and the results JSON."""
    metadata = {"attack": "jailbreak", "attack_template": "instruction_override"}
    command = [sys.executable, "-m", "harness_ext.cli", "eval", "--model", "hf",
               "--model_args", f"pretrained={memorised_model}", "--tasks", TASK, "--limit", "1",
               "--batch_size", "8", "--metadata", json.dumps(metadata), "--output_path", str(tmp_path), "--log_samples"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = tmp_path.rglob("results_*.json")
    recorded = json.loads(results.read_text())["configs"][TASK]["metadata"]
    assert recorded["attack"] == "jailbreak" and recorded["attack_template"] == "instruction_override"
    (samples,) = tmp_path.rglob(f"samples_{TASK}_*.jsonl")
    assert "Ignore all previous instructions" in samples.read_text()
