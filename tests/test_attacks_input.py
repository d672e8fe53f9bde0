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


def _question(metadata, question=DOC["question"]):
    return attacks.from_metadata(metadata).question(DOC, question)


@pytest.mark.parametrize("rate, replaced", [(0.0, 0), (0.3, 4), (0.5, 6), (1.0, 12)])
def test_noise_replaces_exactly_round_rate_times_words(rate, replaced):
    before, after = DOC["question"].split(), _question({"attack": "noise", "attack_rate": rate}).split()
    assert len(after) == len(before) == 12
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert len(changed) == replaced == round(rate * 12)
    assert all(after[i].startswith(attacks.FILLER) for i in changed)
    assert after[-1] in ("when?", attacks.FILLER + "?")  # trailing punctuation survives


def test_noise_is_deterministic_per_seed():
    noisy = lambda seed: _question({"attack": "noise", "attack_rate": 0.5, "attack_seed": seed})  # noqa: E731
    assert noisy(0) == noisy(0)
    assert len({noisy(seed) for seed in range(5)}) > 1


def test_noise_applies_to_the_paraphrased_question_as_well():
    noisy = _question({"attack": "noise", "attack_rate": 1.0}, DOC["paraphrased_question"])
    assert noisy.split() == [attacks.FILLER] * 6 + [attacks.FILLER + "'?"]


@pytest.mark.parametrize("metadata", [
    {"attack": "noise", "attack_rate": 1.0},
    {"attack": "jailbreak", "attack_template": "role_play"},
    {"attack": "paraphrase"},
])
def test_the_document_is_never_changed(metadata):
    original = dict(DOC)
    assert _question(metadata) != DOC["question"]
    assert DOC == original


@pytest.mark.parametrize("template", sorted(attacks.TEMPLATES))
def test_jailbreak_wraps_the_question_in_the_template(template):
    attacked = _question({"attack": "jailbreak", "attack_template": template})
    assert attacked == attacks.TEMPLATES[template].format(question=DOC["question"])
    assert DOC["question"] in attacked and len(attacked) > len(DOC["question"]) + 40


def test_at_least_three_distinct_templates():
    assert {"role_play", "instruction_override", "affirmative_prefix"} <= set(attacks.TEMPLATES)
    assert len(set(attacks.TEMPLATES.values())) == len(attacks.TEMPLATES)


def test_paraphrase_replaces_only_the_question_and_only_where_there_is_a_paraphrase():
    paraphrase = {"attack": "paraphrase"}
    assert _question(paraphrase) == DOC["paraphrased_question"]
    assert _question(paraphrase, DOC["paraphrased_question"]) == DOC["paraphrased_question"]
    world_fact = {"question": "What is the capital of Peru?", "answer": "Lima", "paraphrased_question": None}
    assert attacks.from_metadata(paraphrase).question(world_fact, world_fact["question"]) == world_fact["question"]


def test_no_attack_metadata_means_no_attack():
    assert attacks.from_metadata({"version": 1, "pretrained": "x"}) is None
    assert attacks.attacked_question(None, DOC, DOC["question"]) == DOC["question"]


def test_record_lists_only_the_parameters_used():
    record = lambda metadata: attacks.from_metadata(metadata).record()  # noqa: E731
    assert record({"attack": "noise", "attack_rate": 0.2}) == {"attack": "noise", "attack_rate": 0.2, "attack_seed": 0}
    assert record({"attack": "jailbreak"}) == {"attack": "jailbreak", "attack_template": "role_play"}
    assert record({"attack": "paraphrase"}) == {"attack": "paraphrase"}


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
