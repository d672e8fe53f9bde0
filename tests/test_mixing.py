"""Model mixing θ(α) = (1−α)·θ_target + α·θ_unlearned: exact endpoints, clear errors, ``unlearn_mix``."""

from __future__ import annotations

import json

import pytest
import torch

from harness_ext.evaluation import evaluate
from harness_ext.mixing import AdapterScaler, MixedHFLM, MixingError, WeightMixer, mix_state_dicts, state_dict_copy
from harness_ext.models import UnlearnHFLM
from harness_ext.demo.tiny_model import build_tiny_model
from harness_ext.unlearning.api import unlearn
from harness_ext.unlearning.commands import add_mix_arguments, run_mix
from tests.unlearning_fixtures import forget_rows, load, parsed, retain_rows, same_weights

TASK, LIMIT = "unlearn_tofu_utility", 4


@pytest.fixture(scope="module")
def unlearned(memorised_model, tmp_path_factory):
    """A GA-unlearned full checkpoint and a GA-unlearned LoRA adapter of the memorised model."""
    folder = tmp_path_factory.mktemp("mixing")
    for name, extra in (("full", {}), ("adapter", {"lora": 4})):
        unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), folder / name, max_steps=3, lr=1e-2, **extra)
    return folder


def test_alpha_zero_and_one_return_the_endpoint_tensors_themselves(memorised_model, unlearned):
    target, _ = load(memorised_model)
    other, _ = load(unlearned / "full")
    t, u = target.state_dict(), other.state_dict()
    assert all(mix_state_dicts(t, u, 0)[name] is t[name] for name in t)
    assert all(mix_state_dicts(t, u, 1)[name] is u[name] for name in t)


def test_mixing_in_place_at_alpha_zero_is_bit_identical_to_the_target(memorised_model, unlearned):
    model, _ = load(memorised_model)
    target, _ = load(memorised_model)
    other, _ = load(unlearned / "full")
    mixer = WeightMixer(model, state_dict_copy(model), other.state_dict())
    mixer(0.7)
    assert not same_weights(model, target)
    mixer(0.0)
    assert same_weights(model, target)
    mixer(1.0)
    assert same_weights(model, other)


def test_intermediate_alpha_is_the_weighted_sum():
    target = {"w": torch.tensor([1.0, 2.0, -4.0]), "steps": torch.tensor([3])}
    unlearned = {"w": torch.tensor([3.0, 2.0, 0.0]), "steps": torch.tensor([7])}
    mixed = mix_state_dicts(target, unlearned, 0.25)
    assert torch.equal(mixed["w"], torch.tensor([1.5, 2.0, -3.0]))
    assert torch.equal(mixed["steps"], torch.tensor([3]))  # integer buffers come from the target


def test_different_shapes_keys_and_alphas_raise_clear_errors():
    target = {"a": torch.zeros(2, 3), "b": torch.zeros(1)}
    with pytest.raises(MixingError, match=r"different shapes .*a: \(2, 3\) vs \(3, 2\)"):
        mix_state_dicts(target, {"a": torch.zeros(3, 2), "b": torch.zeros(1)}, 0.5)
    with pytest.raises(MixingError, match=r"only in target: \['b'\]; only in unlearned: \['c'\]"):
        mix_state_dicts(target, {"a": torch.zeros(2, 3), "c": torch.zeros(1)}, 0.5)
    with pytest.raises(MixingError, match=r"alpha must be in \[0, 1\], got 1.5"):
        mix_state_dicts(target, target, 1.5)


def test_scaling_a_lora_adapter_is_mixing_its_merged_weights(memorised_model, unlearned):
    from peft import PeftModel

    target, _ = load(memorised_model)
    full = PeftModel.from_pretrained(load(memorised_model)[0], str(unlearned / "adapter")).merge_and_unload()
    half = PeftModel.from_pretrained(load(memorised_model)[0], str(unlearned / "adapter"))
    AdapterScaler(half)(0.5)
    expected = mix_state_dicts(target.state_dict(), full.state_dict(), 0.5)
    for name, value in half.merge_and_unload().state_dict().items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=1e-5)


COMMON = {"batch_size": 4, "device": "cpu"}


def scores(lm) -> dict:
    results = evaluate(lm, [TASK], limit=LIMIT)["results"][TASK]
    return {key: value for key, value in results.items() if key != "alias"}


@pytest.fixture(scope="module")
def target_scores(memorised_model):
    return scores(UnlearnHFLM(pretrained=str(memorised_model), **COMMON))


@pytest.mark.parametrize("kind", ["full", "adapter"])
def test_unlearn_mix_at_alpha_0_and_1_reproduces_both_models_scores_exactly(memorised_model, unlearned, target_scores, kind):
    common = COMMON
    base, other = str(memorised_model), str(unlearned / kind)
    as_unlearned = {"pretrained": other} if kind == "full" else {"pretrained": base, "peft": other}
    unlearned_scores = scores(UnlearnHFLM(**as_unlearned, **common))
    assert target_scores != unlearned_scores
    assert scores(MixedHFLM(base=base, pretrained=other, alpha=0, **common)) == target_scores
    assert scores(MixedHFLM(base=base, pretrained=other, alpha=1, **common)) == unlearned_scores


def test_mix_command_writes_the_mixture_and_refuses_different_shapes(memorised_model, unlearned, tmp_path):
    out = tmp_path / "mixed"
    assert run_mix(parsed(add_mix_arguments, ["--target", str(memorised_model), "--unlearned", str(unlearned / "full"),
                                              "--out", str(out), "--alpha", "0.5"])) == 0
    target, _ = load(memorised_model)
    other, _ = load(unlearned / "full")
    mixed, _ = load(out)
    expected = mix_state_dicts(target.state_dict(), other.state_dict(), 0.5)
    assert all(torch.equal(value, expected[name]) for name, value in mixed.state_dict().items())
    record = json.loads((out / "control.json").read_text())
    assert (record["method"], record["control"], record["alpha"]) == ("ga", "mix", 0.5)

    smaller = tmp_path / "smaller"
    build_tiny_model(["Question: who?\nAnswer: me"], out_dir=smaller, hidden_size=32)
    bad = tmp_path / "bad"
    args = parsed(add_mix_arguments, ["--target", str(memorised_model), "--unlearned", str(smaller),
                                      "--out", str(bad), "--alpha", "0.5"])
    with pytest.raises(MixingError, match="different shapes"):
        from harness_ext.unlearning.api import mix

        mix(args.target, args.unlearned, args.out, alpha=0.5)
    assert run_mix(args) == 2
    assert not bad.exists()
