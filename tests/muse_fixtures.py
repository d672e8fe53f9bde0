"""Small MUSE file sets written by the tests, a tiny model that memorises some of them, and an
independent transformers computation of the MUSE metrics (written apart from the task code)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from rouge_score import rouge_scorer
from sklearn.metrics import roc_auc_score

WORDS = ("river stone apple cloud seven lantern orbit velvet harbour crimson meadow signal copper "
         "whisper glacier pepper falcon quartz tunnel ember violet canyon thunder marble").split()


def sentence(rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(length)) + "."


def write_corpus(root: Path, corpus: str, seed: int = 0, rows: int = 4) -> dict:
    """``root/muse/<corpus>/{verbmem,knowmem,privleak}/<split>.json`` in the hub's layout; returns the rows."""
    rng = random.Random(seed)
    data = {
        ("verbmem", "forget"): [{"prompt": sentence(rng, 12), "gt": " " + sentence(rng, 24)} for _ in range(rows)],
        ("privleak", "forget"): [sentence(rng, 40) for _ in range(rows)],
        ("privleak", "holdout"): [sentence(rng, 40) for _ in range(rows)],
        ("privleak", "retain"): [sentence(rng, 40) for _ in range(rows)],
    }
    for split in ("forget", "retain"):
        data[("knowmem", f"{split}_qa")] = [{"question": sentence(rng, 6), "answer": rng.choice(WORDS)} for _ in range(rows)]
        data[("knowmem", f"{split}_qa_icl")] = [{"question": sentence(rng, 6), "answer": rng.choice(WORDS)} for _ in range(3)]
    for (config, split), content in data.items():
        path = root / "muse" / corpus / config / f"{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content), encoding="utf-8")
    return data


def memorise(model, tokenizer, texts: list[str], steps: int = 150, seed: int = 0) -> None:
    """Train ``model`` on ``texts`` (all tokens) until it reproduces them."""
    torch.manual_seed(seed)
    encoded = [tokenizer(text)["input_ids"] + [tokenizer.eos_token_id] for text in texts]
    width = max(map(len, encoded))
    ids = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in encoded])
    labels = torch.tensor([row + [-100] * (width - len(row)) for row in encoded])
    mask = (labels != -100).long()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()


# --- the independent computation -------------------------------------------------------------------

_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


@torch.no_grad()
def greedy_text(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def verbmem_f1(model, tokenizer, row: dict) -> tuple[str, float]:
    output = greedy_text(model, tokenizer, row["prompt"], 128)
    reference = tokenizer.decode(tokenizer(row["gt"])["input_ids"][:128], skip_special_tokens=True)
    return output, _ROUGE.score(reference, output)["rougeL"].fmeasure


def knowmem_f1(model, tokenizer, icl: list[dict], row: dict) -> tuple[str, float]:
    prompt = "".join(f"Question: {e['question']}\nAnswer: {e['answer']}\n\n" for e in icl)
    output = greedy_text(model, tokenizer, prompt + f"Question: {row['question']}\nAnswer: ", 32)
    for stop in ("\n\n", "\nQuestion", "Question:"):
        output = output.split(stop)[0]
    return output, _ROUGE.score(row["answer"], output)["rougeL"].fmeasure


@torch.no_grad()
def text_logprobs(model, tokenizer, text: str, max_length: int) -> np.ndarray:
    """Log-probs of the text's first ``max_length`` tokens, each after the prefix token (BOS)."""
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"][:max_length]
    inputs = torch.tensor([[tokenizer.bos_token_id] + tokens[:-1]])
    logprobs = torch.log_softmax(model(inputs).logits[0].float(), dim=-1)
    return logprobs[torch.arange(len(tokens)), torch.tensor(tokens)].numpy()


def min_k40(logprobs: np.ndarray) -> float:
    count = max(1, int(0.4 * len(logprobs)))
    return float(np.sort(logprobs)[:count].mean())


def membership_auc(member_scores: list[float], nonmember_scores: list[float]) -> float:
    labels = [1] * len(member_scores) + [0] * len(nonmember_scores)
    return float(roc_auc_score(labels, member_scores + nonmember_scores))
