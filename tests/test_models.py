"""``unlearn_hf`` answers lm-eval's loglikelihood requests exactly as HFLM does, with less work."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils_hf import stop_sequences_criteria
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from harness_ext.models import TokenScores, UnlearnHFLM
from harness_ext.models.greedy_generation import StopCheck, generate_greedy
from harness_ext.models.head_scoring import DEFAULT_CHUNK_BYTES
from harness_ext.demo.tiny_model import build_tiny_model, tiny_llama_config, train_tokenizer

CONTEXTS = ["Question: Who wrote it?\nAnswer:", "Question: Where was she born?\nAnswer:"]
CHOICES = [" A", " B", " C", " D", " Paris is lovely", " A"]  # the repeated " A" is scored once


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(CONTEXTS + [c.strip() for c in CHOICES] * 3, vocab_size=300, seed=1)


def _requests():
    pairs = [(context, choice) for context in CONTEXTS for choice in CHOICES]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


def test_same_answers_as_hflm_with_one_forward_per_input(tiny):
    model, tokenizer = tiny
    ours = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    reference = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    got, expected = ours.loglikelihood(_requests()), reference.loglikelihood(_requests())
    for (ll, greedy), (ll_ref, greedy_ref) in zip(got, expected):
        assert ll == pytest.approx(ll_ref, rel=1e-5)
        assert greedy == greedy_ref
    assert all(isinstance(answer, TokenScores) and len(answer.logprobs) >= 1 for answer in got)
    # one forward per distinct model input (all tokens but the last): choices that differ only in
    # their last token share one, like HFLM's one-token-continuation cache
    inputs = {tuple(sum(reference._encode_pair(*request.args), [])[:-1]) for request in _requests()}
    assert len(inputs) < len(set(CHOICES)) * len(CONTEXTS)
    assert ours.stats["sequences_scored"] == len(inputs)
    assert ours.stats["loglikelihood_requests"] == len(CONTEXTS) * len(CHOICES)


def test_token_details_add_up_to_the_loglikelihood(tiny):
    model, tokenizer = tiny
    answers = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(_requests())
    for answer in answers:
        ll, greedy = answer
        assert sum(answer.logprobs) == pytest.approx(ll)
        assert greedy == all(answer.greedy)
        assert all(v >= 0 for v in answer.variances)


def _direct(model, tokenizer, context: str, continuation: str):
    """Per-token float64 log-probs and full-vocabulary argmax matches of the continuation, by hand."""
    start = len(tokenizer(context).input_ids)
    ids = tokenizer(context + continuation).input_ids
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)[start - 1:len(ids) - 1]
    targets = torch.tensor(ids[start:])
    return logprobs.gather(1, targets[:, None])[:, 0].tolist(), (logprobs.argmax(-1) == targets).tolist(), logprobs


@pytest.fixture(scope="module")
def special_tokens():
    """A tiny Llama whose tokenizer adds EOS and another special token after its base vocabulary
    (``tokenizer.vocab_size``), as Llama-3 and Qwen do; EOS's output row is scaled up so greedy
    decoding picks it at some positions."""
    tokenizer = train_tokenizer(CONTEXTS + [c.strip() for c in CHOICES] * 3, vocab_size=300)
    tokenizer.add_special_tokens({"eos_token": "<|eot_id|>", "additional_special_tokens": ["<|start|>"]})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = LlamaForCausalLM(tiny_llama_config(tokenizer, hidden_size=64, layers=2, heads=4)).eval()
    with torch.no_grad():
        model.get_output_embeddings().weight[tokenizer.eos_token_id] *= 30
    return model, tokenizer


@pytest.mark.parametrize("convention", ["default", "open-unlearning"])
def test_scores_cover_special_tokens_beyond_vocab_size(special_tokens, convention):
    model, tokenizer = special_tokens
    eos = tokenizer.eos_token_id
    assert eos >= tokenizer.vocab_size and model.config.vocab_size == len(tokenizer) > tokenizer.vocab_size
    # the conventions' continuations: " answer" (default), "answer<eos>" scored (open-unlearning)
    suffix, space = (tokenizer.eos_token, "") if convention == "open-unlearning" else ("", " ")
    pairs = [(context, space + choice.strip() + suffix) for context in CONTEXTS for choice in CHOICES[:5]]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    got = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(requests)
    expected = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(requests)
    predicted_special = 0
    for answer, (ll_ref, greedy_ref), (context, continuation) in zip(got, expected, pairs):
        logprobs, greedy, rows = _direct(model, tokenizer, context, continuation)
        assert answer.logprobs == pytest.approx(logprobs, abs=1e-5)
        assert answer.greedy == greedy and answer[1] == greedy_ref
        assert answer[0] == pytest.approx(ll_ref, abs=1e-4)
        means = (rows.exp() * rows).sum(-1)
        assert answer.means == pytest.approx(means.tolist(), abs=1e-5)
        predicted_special += int((rows.argmax(-1) >= tokenizer.vocab_size).sum())
    assert predicted_special > 0  # the test can fail: truncating to vocab_size changes greedy matches
    if convention == "open-unlearning":
        assert all(tokenizer(c + s).input_ids[-1] == eos for c, s in pairs)


def _counting_head(model) -> list[int]:
    sizes = []
    model.get_output_embeddings().register_forward_hook(lambda _m, args, _out: sizes.append(args[0].shape[0]))
    return sizes


def test_the_head_sees_only_the_scored_positions(tiny):
    model, tokenizer = tiny
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    lm.scorer  # the split check forwards once before counting starts
    sizes = _counting_head(model)
    lm.loglikelihood(_requests())
    reference = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    longest = {}  # model input → its longest scored continuation; inputs share their positions
    for request in _requests():
        context, continuation = reference._encode_pair(*request.args)
        inputs = tuple(context + continuation)[:-1]
        longest[inputs] = max(longest.get(inputs, 0), len(continuation))
    # the position predicting an input's first scored token ends its context; inputs with one context
    # (the letters and " Paris is lovely" after the same question) share that position (one batch here)
    contexts = {inputs[: len(inputs) - length + 1] for inputs, length in longest.items()}
    assert len(contexts) == len(CONTEXTS) < len(longest)
    expected = len(contexts) + sum(length - 1 for length in longest.values())
    assert sum(sizes) == lm.scorer.head_positions == expected < sum(longest.values())
    assert (lm.scorer.context_passes, lm.scorer.suffix_passes) == (1, 1)


def test_models_with_sliding_window_caches_score_each_input_whole(tiny):
    _, tokenizer = tiny
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, sliding_window=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = MistralForCausalLM(config).eval()
    ours = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    reference = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    for (ll, greedy), (ll_ref, greedy_ref) in zip(ours.loglikelihood(_requests()), reference.loglikelihood(_requests())):
        assert (ll, greedy) == (pytest.approx(ll_ref, rel=1e-5), greedy_ref)
    # its cache layers keep a window, not every key: no context is shared, each input runs whole
    assert ours.scorer.context_passes == ours.scorer.suffix_passes == 0 < ours.scorer.head_positions


def test_requests_that_do_not_ask_for_moments_get_none(tiny):
    model, tokenizer = tiny
    requests = _requests()
    for request in requests:
        request.next_token_moments = request.args[0] == CONTEXTS[0]
    answers = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(requests)
    for request, answer in zip(requests, answers):
        if request.next_token_moments:
            assert len(answer.means) == len(answer.variances) == len(answer.logprobs)
        else:
            assert answer.means is None and answer.variances is None and len(answer.greedy) == len(answer.logprobs)


LARGE_VOCABULARY = 128_256  # Llama-3's


def _peak_cpu_bytes(work) -> int:
    """Peak bytes allocated by torch CPU ops during ``work()`` (torch profiler, allocations minus frees)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profiler:
        work()
    now = peak = 0
    for event in sorted(profiler.events(), key=lambda event: event.time_range.start):
        now += event.self_cpu_memory_usage
        peak = max(peak, now)
    return peak


def test_peak_memory_stays_bounded_with_a_128k_vocabulary(tiny):
    _, tokenizer = tiny
    config = LlamaConfig(vocab_size=LARGE_VOCABULARY, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).eval()
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    lm.scorer
    requests = [((None, None), [1], list(range(3 + row, 3 + row + 120))) for row in range(8)]
    peak = _peak_cpu_bytes(lambda: lm._loglikelihood_tokens(requests, disable_tqdm=True))
    all_logits = 8 * 121 * LARGE_VOCABULARY * 4  # one float32 logits tensor for every position: 497 MB
    assert lm.scorer.head_positions == 1 + 8 * 119  # the shared context's last position once, then each row's
    assert peak < 1.25 * DEFAULT_CHUNK_BYTES < all_logits  # measured: 255 MiB (before this change: 939 MiB)


def _left_padded(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    tokenizer.padding_side = "left"
    encoded = tokenizer(prompts, return_tensors="pt", padding=True)
    return encoded.input_ids, encoded.attention_mask


@pytest.mark.parametrize("rows", [None, 3])
def test_greedy_generation_is_token_identical_to_hf_generate(special_tokens, rows):
    """Each row equals ``model.generate``'s greedy row up to its own end (EOS, or the token that completes
    a stop string), then padding; fewer row-steps are forwarded than ``generate``'s — also when only 3 rows
    decode at once and finished rows are replaced by the next prompts."""
    model, tokenizer = special_tokens
    inputs, mask = _left_padded(tokenizer, [context + choice for context in CONTEXTS for choice in CHOICES[:4]])
    pad, eos, width = tokenizer.pad_token_id, tokenizer.eos_token_id, inputs.shape[1]
    expected = model.generate(input_ids=inputs, attention_mask=mask, max_new_tokens=24, do_sample=False,
                              pad_token_id=pad, eos_token_id=eos)[:, width:]
    # a stop string: the text of a token some rows generate (not first) and others do not
    counts = Counter(token for row in expected.tolist() for token in set(row[1:]) if token not in (pad, eos))
    stop = tokenizer.decode([next(token for token, count in counts.most_common() if count < len(expected))])
    done = []
    got, row_steps = generate_greedy(model, inputs, mask, 24, StopCheck(tokenizer, [stop], {eos}), pad,
                                     rows=rows, on_done=done.append)
    ends = []
    for row, new in zip(expected.tolist(), got[:, width:].tolist()):
        end = next((i + 1 for i in range(len(row)) if row[i] == eos or stop in tokenizer.decode(row[: i + 1])), len(row))
        assert new[:end] == row[:end] and set(new[end:]) <= {pad}
        ends.append(end)
    assert len(set(ends)) > 1 and sum(ends) <= row_steps < len(ends) * 24
    assert sum(done) == len(ends) and got.shape[1] == width + max(ends)


def test_generate_until_answers_as_hflm(special_tokens):
    model, tokenizer = special_tokens
    requests = [Instance("generate_until", {}, (context + choice, {"until": ["Paris"], "max_gen_toks": 16}), i)
                for i, (context, choice) in enumerate((c, x) for c in CONTEXTS for x in CHOICES[:4])]
    ours = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    assert ours.generate_until(requests) == HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4,
                                                 device="cpu").generate_until(requests)
    assert 0 < ours.stats["decode_row_steps"] < len(requests) * 16


def test_sampled_generation_goes_to_hf_generate_a_batch_at_a_time(special_tokens, monkeypatch):
    """Settings that are not plain greedy use HFLM's ``model.generate``, at most batch-size prompts per call."""
    model, tokenizer = special_tokens
    requests = [Instance("generate_until", {}, (context + choice, {"until": ["Paris"], "max_gen_toks": 8,
                                                                  "do_sample": True, "temperature": 1.0}), i)
                for i, (context, choice) in enumerate((c, x) for c in CONTEXTS for x in CHOICES[:4])]
    ours, calls = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=3, device="cpu"), []
    original = HFLM._model_generate
    monkeypatch.setattr(HFLM, "_model_generate", lambda lm, context, *args, **kwargs: calls.append(len(context))
                        or original(lm, context, *args, **kwargs))
    answers = ours.generate_until(requests)
    assert len(answers) == len(requests) and all(isinstance(answer, str) for answer in answers)
    assert max(calls) == 3 and sum(calls) == len({request.args[0] for request in requests})
    assert ours.stats["decode_row_steps"] == 0


def test_bf16_model_gives_float32_es_em_and_prob(memorised_model):
    """Log-softmax and statistics run in float32 whatever the weights' dtype: a bf16 copy of the
    memorising model scores the same ES/EM and its answers' probability within 1e-4."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness_ext.evaluation import evaluate

    task = "unlearn_tofu_forget01"
    tokenizer = AutoTokenizer.from_pretrained(memorised_model)
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = AutoModelForCausalLM.from_pretrained(memorised_model, dtype=dtype).eval()
        lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
        output = evaluate(lm, [task], limit=3, metadata={"token_details": True, "tokenizer": str(memorised_model)},
                          bootstrap_iters=0)
        results[dtype] = output["results"][task]
    full, half = results[torch.float32], results[torch.bfloat16]
    assert full["es,none"] > 0.5  # memorised: the greedy matches are not trivially all False
    for key in ("es", "em", "es_para"):
        assert half[f"{key},none"] == full[f"{key},none"], key
    # memorised answers: measured 1.3e-5 apart (a bf16 log-softmax gave 7.7e-4); the paraphrased
    # questions' lower probabilities move ~2e-3 with the bf16 body itself, whatever the softmax's dtype
    assert half["prob,none"] == pytest.approx(full["prob,none"], abs=1e-4)
    assert half["prob_para,none"] == pytest.approx(full["prob_para,none"], abs=5e-3)


def test_a_continuation_beyond_the_context_is_one_of_our_errors(special_tokens):
    from harness_ext.models.hf import ModelInputError
    from unlearn_tasks.errors import UnlearnBenchError

    model, tokenizer = special_tokens
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=2, device="cpu", max_length=8)
    with pytest.raises(ModelInputError, match="9 tokens cannot be scored.*max_length = 8") as error:
        lm._loglikelihood_tokens([(None, [1], list(range(1, 10)))])
    assert isinstance(error.value, UnlearnBenchError)
