"""Each method's loss does what its paper says, on a tiny memorised Llama (a few steps each)."""

from __future__ import annotations

import math

import pytest
import torch

from harness_ext.unlearning.api import unlearn
from harness_ext.unlearning.batches import unlearn_loader
from harness_ext.unlearning.config import UnlearnConfig, UnlearnError, resolve
from harness_ext.unlearning.logprobs import Reference, kl_divergence, layer_output, logits_of, mean_nll
from harness_ext.unlearning.losses import LossContext, get_method, steering_vector
from tests.unlearning_fixtures import answer_nll, forget_rows, load, refusal_rows, retain_rows, same_weights

STEPS = {"max_steps": 5, "lr": 1e-3}


@pytest.fixture
def run(memorised_model, tmp_path):
    """``run(method, **hyperparameters)`` → the unlearned (model, tokenizer), no control."""

    def run_method(method: str, **hyperparameters):
        out = tmp_path / method
        unlearn(str(memorised_model), method, forget_rows(), retain_rows(), out, **{**STEPS, **hyperparameters})
        return load(out)

    return run_method


def first_step(memorised_model, method: str, **hyperparameters):
    """(model, step batch, loss context) for the first step of ``method`` on the memorised model."""
    model, tokenizer = load(memorised_model)
    chosen = get_method(method)
    config = resolve(UnlearnConfig(**hyperparameters), chosen.defaults)
    refusals = ["I have no idea."] if chosen.refusals else None
    loader = unlearn_loader(tokenizer, forget_rows(), retain_rows(), 8, 0, 512, refusals)
    return model, next(iter(loader)), LossContext(config, Reference(model))


def test_ga_raises_forget_nll(memorised_model, run):
    target, tokenizer = load(memorised_model)
    model, _ = run("ga")
    assert answer_nll(target, tokenizer, forget_rows()) < 0.05  # memorised: per-token p > 0.95
    assert answer_nll(model, tokenizer, forget_rows()) > 0.5


def test_graddiff_raises_forget_nll_and_keeps_retain_nll_within_0_1_nats(memorised_model, run):
    target, tokenizer = load(memorised_model)
    model, _ = run("graddiff")
    assert answer_nll(model, tokenizer, forget_rows()) > answer_nll(target, tokenizer, forget_rows()) + 0.25
    assert answer_nll(model, tokenizer, retain_rows()) < answer_nll(target, tokenizer, retain_rows()) + 0.1


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_npo_loss_at_step_zero_is_2_over_beta_log_2(memorised_model, beta):
    model, step, context = first_step(memorised_model, "npo", beta=beta)
    loss = get_method("npo").loss(model, step, context)
    assert loss.item() == pytest.approx(2 / beta * math.log(2), rel=1e-6)


def test_kl_divergence_is_zero_at_step_zero(memorised_model):
    model, step, context = first_step(memorised_model, "kl")
    divergence = kl_divergence(context.reference.logits(step.retain), logits_of(model, step.retain), step.retain)
    assert divergence.item() == pytest.approx(0.0, abs=1e-6)
    loss = get_method("kl").loss(model, step, context)
    assert loss.item() == pytest.approx(-mean_nll(logits_of(model, step.forget), step.forget).item(), rel=1e-5)


def test_simnpo_loss_matches_its_formula(memorised_model):
    model, step, context = first_step(memorised_model, "simnpo", beta=2.0, gamma=0.5, retain_weight=0.0, forget_weight=0.3)
    logprobs = torch.log_softmax(logits_of(model, step.forget)[:, :-1].float(), -1)
    labels = step.forget.labels[:, 1:]
    mask = labels != -100
    chosen = logprobs.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1) * mask
    expected = -0.3 * (2 / 2.0) * torch.nn.functional.logsigmoid(-2.0 * chosen.sum(-1) / mask.sum(-1) - 0.5).mean()
    assert get_method("simnpo").loss(model, step, context).item() == pytest.approx(expected.item(), rel=1e-5)


def test_idkpo_raises_refusal_likelihood(memorised_model, run):
    target, tokenizer = load(memorised_model)
    model, _ = run("idkpo")
    assert answer_nll(model, tokenizer, refusal_rows()) < answer_nll(target, tokenizer, refusal_rows()) - 1.0


def test_rmu_moves_forget_activations_toward_target_and_trains_only_its_down_projections(memorised_model, run):
    target, tokenizer = load(memorised_model)
    # only three small matrices train (WMDP's param_ids): the toy model needs a larger step than STEPS' lr
    model, _ = run("rmu", layer=1, steering=6.5, retain_weight=1.0, max_steps=10, lr=1e-2)
    _, step, _ = first_step(memorised_model, "rmu", layer=1)
    goal = 6.5 * steering_vector(target.config.hidden_size, seed=0)

    def distance(network) -> float:
        with torch.no_grad():
            activations = layer_output(network, step.forget, 1)
        return (activations - goal)[step.forget.attention_mask.bool()].norm(dim=-1).mean().item()

    assert distance(model) < 0.8 * distance(target)
    changed = {name for name, value in model.state_dict().items() if not torch.equal(value, target.state_dict()[name])}
    assert changed == {f"model.layers.{index}.mlp.down_proj.weight" for index in (0, 1)}  # WMDP's param_ids=6


def test_ga_bound_gives_no_gradient_to_sequences_above_the_bound(memorised_model):
    model, step, _ = first_step(memorised_model, "ga")
    logits = logits_of(model, step.forget).detach().requires_grad_(True)
    per_sequence = -torch.log_softmax(logits[:, :-1].float(), -1).gather(
        -1, step.forget.labels[:, 1:].clamp_min(0).unsqueeze(-1)
    ).squeeze(-1)
    mask = step.forget.labels[:, 1:] != -100
    nll = (per_sequence * mask).sum(-1) / mask.sum(-1)
    bound = nll.median().item()
    (-mean_nll(logits, step.forget, bound)).backward()
    gradient_norms = logits.grad.flatten(1).norm(dim=-1)
    assert torch.all(gradient_norms[nll > bound] == 0)
    assert torch.all(gradient_norms[nll <= bound] > 0)


def test_same_seed_same_weights(memorised_model, run, tmp_path):
    first, _ = run("npo", max_steps=3)
    unlearn(str(memorised_model), "npo", forget_rows(), retain_rows(), tmp_path / "again", max_steps=3, lr=1e-3)
    second, _ = load(tmp_path / "again")
    assert same_weights(first, second)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(UnlearnError, match=r"unknown unlearning method 'nop' \(did you mean 'npo'\?\); known: ga, "):
        get_method("nop")


@pytest.mark.parametrize(
    ("method", "hyperparameters", "message"),
    [
        ("npo", {"ga_bound": 2.0}, "--ga-bound applies to methods with a −CE_f term"),
        ("rmu", {"lora": 4}, "cannot be combined with --lora"),
        ("npo", {"betta": 0.2}, "unknown hyper-parameter 'betta' \\(did you mean 'beta'"),
        ("ga", {"lr": -1.0}, "--lr must be positive"),
    ],
)
def test_unsupported_hyperparameters_are_rejected_before_training(memorised_model, tmp_path, method, hyperparameters, message):
    with pytest.raises(UnlearnError, match=message):
        unlearn(str(memorised_model), method, forget_rows(), retain_rows(), tmp_path / "out", **hyperparameters)
    assert not (tmp_path / "out").exists()
