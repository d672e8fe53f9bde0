"""Input attacks (unlearn_tasks.attacks): the rewritten question, the untouched answer, the errors."""

from __future__ import annotations

import pytest

from unlearn_tasks import attacks

DOC = {
    "split": "forget", "index": 3,
    "question": "Who wrote the novel 'Silent Rivers' set in Lima, Peru, and when?",
    "paraphrased_question": "Which author penned the book 'Silent Rivers'?",
    "answer": "Jaime Vasquez wrote it in 1998.",
    "paraphrased_answer": "It was written by Jaime Vasquez.",
    "perturbed_answer": ["Maria Lopez wrote it.", "It was Tom Reed."],
}


def _attack(**metadata):
    return attacks.from_metadata(metadata)


@pytest.mark.parametrize("rate, replaced", [(0.0, 0), (0.3, 4), (0.5, 6), (1.0, 12)])
def test_noise_replaces_exactly_round_rate_times_words(rate, replaced):
    attacked = _attack(attack="noise", attack_rate=rate).apply(DOC)["question"]
    before, after = DOC["question"].split(), attacked.split()
    assert len(after) == len(before) == 12
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert len(changed) == replaced == round(rate * 12)
    assert all(after[i].startswith(attacks.FILLER) for i in changed)
    assert after[-1] in ("when?", attacks.FILLER + "?")  # trailing punctuation survives


def test_noise_is_deterministic_per_seed():
    noisy = lambda seed: _attack(attack="noise", attack_rate=0.5, attack_seed=seed).apply(DOC)  # noqa: E731
    assert noisy(0) == noisy(0)
    assert {noisy(seed)["question"] for seed in range(5)} != {noisy(0)["question"]}


@pytest.mark.parametrize("metadata", [
    {"attack": "noise", "attack_rate": 1.0},
    {"attack": "jailbreak", "attack_template": "role_play"},
    {"attack": "paraphrase"},
])
def test_answers_and_identity_are_never_changed(metadata):
    attacked = _attack(**metadata).apply(DOC)
    for field in ("split", "index", "answer", "paraphrased_answer", "perturbed_answer"):
        assert attacked[field] == DOC[field]
    assert attacked["question"] != DOC["question"]
    assert DOC["question"].startswith("Who wrote")  # the original document is not modified


def test_noise_reaches_the_paraphrased_question_too():
    attacked = _attack(attack="noise", attack_rate=1.0).apply(DOC)
    assert set(attacked["paraphrased_question"].split()) <= {attacks.FILLER, attacks.FILLER + "?", attacks.FILLER + "'?"}


@pytest.mark.parametrize("template", sorted(attacks.TEMPLATES))
def test_jailbreak_wraps_the_question_in_the_template(template):
    attacked = _attack(attack="jailbreak", attack_template=template).apply(DOC)
    assert attacked["question"] == attacks.TEMPLATES[template].format(question=DOC["question"])
    assert DOC["question"] in attacked["question"] and len(attacked["question"]) > len(DOC["question"]) + 40


def test_at_least_three_distinct_templates():
    assert {"role_play", "instruction_override", "affirmative_prefix"} <= set(attacks.TEMPLATES)
    assert len(set(attacks.TEMPLATES.values())) == len(attacks.TEMPLATES)


def test_paraphrase_uses_the_paraphrased_question_where_there_is_one():
    assert _attack(attack="paraphrase").apply(DOC)["question"] == DOC["paraphrased_question"]
    world_fact = {"question": "What is the capital of Peru?", "answer": "Lima", "paraphrased_question": None}
    assert _attack(attack="paraphrase").apply(world_fact) == world_fact


def test_no_attack_metadata_means_no_attack():
    assert attacks.from_metadata({"version": 1, "pretrained": "x"}) is None
    assert attacks.applied(None, DOC) is DOC


def test_record_lists_only_the_parameters_used():
    assert _attack(attack="noise", attack_rate=0.2).record() == {"attack": "noise", "attack_rate": 0.2, "attack_seed": 0}
    assert _attack(attack="jailbreak").record() == {"attack": "jailbreak", "attack_template": "role_play"}
    assert _attack(attack="paraphrase").record() == {"attack": "paraphrase"}


@pytest.mark.parametrize("metadata, message", [
    ({"attack": "nosie"}, "known: noise, jailbreak, paraphrase"),
    ({"attack": "relearn"}, "model attacks"),
    ({"attack": "noise", "attack_rate": 1.5}, r"attack_rate must be a number in \[0, 1\]"),
    ({"attack": "noise", "attack_rate": "0.3"}, r"attack_rate must be a number in \[0, 1\]"),
    ({"attack": "noise", "attack_seed": -1}, "attack_seed must be an integer"),
    ({"attack": "noise", "attack_template": "role_play"}, "it takes: attack_rate, attack_seed"),
    ({"attack": "jailbreak", "attack_template": "dan"}, "known: role_play, instruction_override, affirmative_prefix"),
    ({"attack": "paraphrase", "attack_rate": 0.1}, "it takes: nothing"),
    ({"attack_rate": 0.1}, "given without attack"),
])
def test_bad_metadata_is_one_clear_error(metadata, message):
    with pytest.raises(ValueError, match=message):
        attacks.from_metadata(metadata)
