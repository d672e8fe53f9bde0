"""The work an evaluation needs, recorded while ``unlearn-bench eval`` runs, and the floor: that work done plainly.

:class:`RecordingLM` is ``unlearn_hf`` plus a :class:`WorkLog`. It records what the tasks *ask for*
(every token sequence handed to ``_loglikelihood_tokens``, every ``generate_until`` request) and what
the model *runs* (every row of every scoring forward pass, every row handed to ``model.generate``),
and times each part. Nothing it records changes what ``unlearn_hf`` does.

:func:`floor` then does the least work those requests need, with plain PyTorch/transformers on the
same model: one teacher-forced forward pass per unique sequence (length-sorted batches, log-probs of
the continuation tokens) and one greedy ``model.generate`` with a KV cache per unique prompt
(left-padded, length-sorted batches, same max new tokens, stopping at EOS or a stop string per row).
The floor's scoring applies the output head only at the scored positions; its generation counts the
row-steps ``generate`` ran and the new tokens each row needed, for the decode-needed floor.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from transformers import StoppingCriteriaList, StopStringCriteria

from harness_ext.models import UnlearnHFLM

RECORDING_MODEL = "unlearn_hf_recorded"


@dataclass
class WorkLog:
    """What was asked for, what ran, and where the time went (seconds, ``time.perf_counter``)."""

    load_started: float = 0.0
    load_s: float = 0.0
    sequences: dict[tuple, int] = field(default_factory=dict)  # unique context+continuation ids → longest continuation
    prompts: set = field(default_factory=set)  # unique (context text, generation kwargs)
    prompt_ids: dict[tuple, dict] = field(default_factory=dict)  # unique prompt token ids → generation settings
    counts: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)


@register_model(RECORDING_MODEL)
class RecordingLM(UnlearnHFLM):
    """``unlearn_hf`` that fills a :class:`WorkLog` (the benchmark reads the newest instance's log)."""

    newest: "RecordingLM | None" = None

    def __init__(self, *args, **kwargs):
        started = time.perf_counter()
        super().__init__(*args, **kwargs)
        self.log = WorkLog(load_started=started, load_s=time.perf_counter() - started)
        RecordingLM.newest = self

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        with _timed(self.log, "loglikelihood"):
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        for _, context, continuation in requests:
            tokens = tuple(context + continuation)
            self.log.sequences[tokens] = max(len(continuation), self.log.sequences.get(tokens, 0))
        self.log.counts["sequence_requests"] += len(requests)
        return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)

    def _score_batch(self, inputs):
        self.log.counts["rows_forwarded"] += len(inputs)
        self.log.counts["scoring_batches"] += 1
        with _timed(self.log, "scoring_model"):
            return super()._score_batch(inputs)

    def generate_until(self, requests, disable_tqdm: bool = False):
        for request in requests:
            self.log.prompts.add((request.args[0], json.dumps(request.args[1], sort_keys=True, default=str)))
        self.log.counts["generation_requests"] += len(requests)
        with _timed(self.log, "generate_until"):
            return super().generate_until(requests, disable_tqdm=disable_tqdm)

    def _model_generate(self, context, max_length, stop, **generation_kwargs):
        mask = generation_kwargs.get("attention_mask")
        settings = {"max_new_tokens": max_length - context.shape[1], "stop": tuple(stop)}
        for row in range(context.shape[0]):
            ids = context[row] if mask is None else context[row][mask[row].bool()]
            self.log.prompt_ids[tuple(ids.tolist())] = settings
        self.log.counts["rows_generated"] += context.shape[0]
        self.log.counts["generation_batches"] += 1
        with _timed(self.log, "generation_model"):
            output = super()._model_generate(context, max_length, stop, **generation_kwargs)
        self.log.counts["generation_steps"] += output.shape[1] - context.shape[1]
        return output


@contextlib.contextmanager
def _timed(log: WorkLog, key: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        log.seconds[key] += time.perf_counter() - started


def floor(model, tokenizer, log: WorkLog, batch_size: int) -> dict[str, float]:
    """Score ``log.sequences`` and generate from ``log.prompt_ids`` the plain way.

    Returns the seconds of each (``scoring``, ``generation``), the decoding steps the generation
    batches ran (``generation_steps``: comparable with the suite's, batch by batch the same), the
    row-steps they forwarded (``row_steps``: rows × steps) and the new tokens each row needed up to its
    own end (``needed_tokens``: EOS or stop string), whose ratio gives the decode-needed floor.
    """
    started = time.perf_counter()
    score_sequences(model, tokenizer, log.sequences, batch_size)
    scored = time.perf_counter()
    generation, rows = generate_prompts(model, tokenizer, log.prompt_ids, batch_size)
    generated = time.perf_counter()
    generation["needed_tokens"] = sum(needed_tokens(tokenizer, new, stops) for new, stops in rows)
    return {"scoring": scored - started, "generation": generated - scored, **generation}


@torch.inference_mode()
def score_sequences(model, tokenizer, sequences: dict[tuple, int], batch_size: int) -> list[list[float]]:
    """Per-token log-probs of each sequence's last ``sequences[ids]`` tokens: one body forward pass per
    batch, the output head only at the scored positions."""
    body, head = model.base_model, model.get_output_embeddings()
    order = sorted(sequences, key=len, reverse=True)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        width = len(batch[0]) - 1
        inputs = torch.full((len(batch), width), pad, dtype=torch.long)
        for row, ids in enumerate(batch):
            inputs[row, : len(ids) - 1] = torch.tensor(ids[:-1])
        hidden = body(input_ids=inputs.to(model.device)).last_hidden_state
        for row, ids in enumerate(batch):
            length, end = sequences[ids], len(ids) - 1
            logprobs = F.log_softmax(head(hidden[row, end - length:end]).float(), dim=-1)
            targets = torch.tensor(ids[-length:], device=logprobs.device)
            out.append(logprobs.gather(1, targets.unsqueeze(1)).squeeze(1).tolist())
    return out


@torch.inference_mode()
def generate_prompts(model, tokenizer, prompts: dict[tuple, dict], batch_size: int) -> tuple[Counter, list]:
    """Greedy generations (KV cache) from each prompt, in left-padded batches of prompts with the same
    settings, decoded to text; returns the decoding steps and row-steps the batches ran, and each row's
    new tokens with its stop strings."""
    counts, rows = Counter(), []
    groups: dict[tuple, list[tuple]] = {}
    for ids, settings in prompts.items():
        groups.setdefault((settings["max_new_tokens"], settings["stop"]), []).append(ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for (max_new_tokens, stop), members in groups.items():
        stops = [text for text in stop if text != tokenizer.eos_token]
        criteria = StoppingCriteriaList([StopStringCriteria(tokenizer, stops)] if stops else [])
        order = sorted(members, key=lambda ids: (-len(ids), ids))
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = len(batch[0])
            inputs = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                inputs[row, width - len(ids):] = torch.tensor(ids)
                mask[row, width - len(ids):] = 1
            output = model.generate(
                input_ids=inputs.to(model.device), attention_mask=mask.to(model.device), do_sample=False,
                max_new_tokens=max_new_tokens, stopping_criteria=criteria, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=pad,
            )
            tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
            counts["generation_steps"] += output.shape[1] - width
            counts["row_steps"] += (output.shape[1] - width) * len(batch)
            rows += [(new, stops) for new in output[:, width:].tolist()]
    return counts, rows


def needed_tokens(tokenizer, new_tokens: list[int], stops: list[str]) -> int:
    """How many of a row's new tokens greedy decoding needed: up to and including EOS or the token that
    completes the first stop string (all of them when neither occurs)."""
    for count in range(1, len(new_tokens) + 1):
        if new_tokens[count - 1] == tokenizer.eos_token_id:
            return count
        if stops and any(stop in tokenizer.decode(new_tokens[:count]) for stop in stops):
            return count
    return len(new_tokens)
