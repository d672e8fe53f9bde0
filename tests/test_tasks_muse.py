"""MUSE tasks end to end on tiny models: a model trained here to memorise forget passages against an
untrained one, an independent transformers computation of every score (tests/muse_fixtures.py), the
Books layout on files the test writes, the first rows of the real MUSE-News data, and bad input."""

from __future__ import annotations

import json
import logging
import math

import pytest

from harness_ext.demo.tiny_model import build_tiny_model
from harness_ext.evaluation import evaluate
from harness_ext.models import UnlearnHFLM
from tests import muse_fixtures as fx
from tests.conftest import SHARED, requires
from unlearn_metrics import muse
from unlearn_tasks.datasource import DataError
from unlearn_tasks.muse.context import ContextLimit
from unlearn_tasks.muse.data import load_muse_split

NEWS = SHARED / "data" / "muse" / "news"


def corpus_texts(data: dict) -> list[str]:
    texts = []
    for rows in data.values():
        for row in rows:
            texts.extend(row.values() if isinstance(row, dict) else [row])
    return texts


def run(folder, tasks, metadata=None, limit=None, batch_size=4):
    lm = UnlearnHFLM(pretrained=str(folder), device="cpu", batch_size=batch_size, dtype="float32")
    out = evaluate(lm, tasks, limit=limit, metadata=metadata, log_samples=True, env_info=False)
    return lm, out


def per_doc(samples: list[dict], key: str) -> dict:
    return {(s["doc"]["split"], s["doc"]["index"]): s[key] for s in samples}


@pytest.fixture
def news_files(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    return fx.write_corpus(tmp_path, "news")


def test_memorised_passages_score_high_and_match_an_independent_computation(news_files, tmp_path, caplog):
    model, tokenizer = build_tiny_model(corpus_texts(news_files), vocab_size=512, seed=0, out_dir=tmp_path / "untrained")
    passages = [row["prompt"] + row["gt"] for row in news_files[("verbmem", "forget")]]
    fx.memorise(model, tokenizer, passages + news_files[("privleak", "forget")])
    model.save_pretrained(tmp_path / "memorised")
    tokenizer.save_pretrained(tmp_path / "memorised")
    tasks = ["unlearn_muse_news_verbmem", "unlearn_muse_news_privleak"]

    with caplog.at_level(logging.WARNING):
        _, memorised = run(tmp_path / "memorised", tasks)
    _, untrained = run(tmp_path / "untrained", ["unlearn_muse_news_verbmem"])

    verbmem, privleak = (memorised["results"][task] for task in tasks)
    assert verbmem["rougeL_f1,none"] >= 0.6
    assert untrained["results"]["unlearn_muse_news_verbmem"]["rougeL_f1,none"] < 0.2
    assert privleak["auc_mink40,none"] >= 0.9  # members detected: far from 0.5
    assert math.isnan(privleak["privleak,none"])
    assert sum("privleak is NaN" in record.message for record in caplog.records) == 1

    # The independent computation: same generations, identical ROUGE, AUCs within 1e-6.
    samples = memorised["samples"]["unlearn_muse_news_verbmem"]
    outputs, f1s = per_doc(samples, "resps"), per_doc(samples, "rougeL_f1")
    for index, row in enumerate(news_files[("verbmem", "forget")]):
        output, f1 = fx.verbmem_f1(model, tokenizer, row)
        assert outputs[("forget", index)] == [[output]]
        assert f1s[("forget", index)] == f1
    scores = {split: [fx.text_logprobs(model, tokenizer, text, 512) for text in news_files[("privleak", split)]]
              for split in ("forget", "holdout")}
    expected_mink = fx.membership_auc(*[[fx.min_k40(lp) for lp in scores[s]] for s in ("forget", "holdout")])
    expected_loss = fx.membership_auc(*[[float(lp.mean()) for lp in scores[s]] for s in ("forget", "holdout")])
    assert privleak["auc_mink40,none"] == pytest.approx(expected_mink, abs=1e-6)
    assert privleak["auc_loss,none"] == pytest.approx(expected_loss, abs=1e-6)


def test_books_group_on_written_files_one_generation_per_prompt(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    files = fx.write_corpus(tmp_path, "books", seed=1)
    model, tokenizer = build_tiny_model(corpus_texts(files), vocab_size=512, seed=1, out_dir=tmp_path / "model")
    lm, out = run(tmp_path / "model", ["unlearn_muse_books"], metadata={"privleak_auc_retrain": 0.5393}, batch_size=1)

    results = out["results"]
    for task, keys in {
        "unlearn_muse_books_verbmem": ("rougeL_f1", "rougeL_recall"),
        "unlearn_muse_books_knowmem_forget": ("rougeL_f1",),
        "unlearn_muse_books_knowmem_retain": ("rougeL_f1",),
        "unlearn_muse_books_privleak": ("auc_mink40", "auc_loss", "auc_zlib", "auc_minkpp", "privleak"),
    }.items():
        assert all(math.isfinite(results[task][f"{key},none"]) for key in keys), task
    privleak = results["unlearn_muse_books_privleak"]
    assert privleak["privleak,none"] == pytest.approx(muse.privleak(privleak["auc_mink40,none"], 0.5393), abs=1e-9)

    for split in ("forget", "retain"):
        samples = out["samples"][f"unlearn_muse_books_knowmem_{split}"]
        f1s = per_doc(samples, "rougeL_f1")
        for index, row in enumerate(files[("knowmem", f"{split}_qa")]):
            _, f1 = fx.knowmem_f1(model, tokenizer, files[("knowmem", f"{split}_qa_icl")], row)
            assert f1s[(split, index)] == f1
    # the results record the settings the tasks generate with (MUSE's), not lm-eval's defaults
    configs = out["configs"]
    assert configs["unlearn_muse_books_verbmem"]["generation_kwargs"] == {
        "until": [], "max_gen_toks": 128, "do_sample": False, "temperature": 0.0}
    assert configs["unlearn_muse_books_knowmem_forget"]["generation_kwargs"] == {
        "until": ["\n\n", "\nQuestion", "Question:"], "max_gen_toks": 32, "do_sample": False, "temperature": 0.0}
    # one generation per unique prompt, one forward pass per unique text
    assert lm.stats["generations"] == 4 + 4 + 4
    assert lm.stats["sequences_scored"] == 8


def split_values(corpus: str, config: str, split: str) -> list:
    """A MUSE split's rows as read (objects or texts), without where they are."""
    return [row.value for row in load_muse_split(corpus, config, split)]


@pytest.mark.slow
@requires(NEWS, "MUSE-News data")
def test_real_news_first_rows_agree_with_an_independent_computation(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(SHARED / "data"))
    rows = {(c, s): split_values("news", c, s)[:2] for c, s in
            [("verbmem", "forget"), ("privleak", "forget"), ("privleak", "holdout"), ("knowmem", "retain_qa"),
             ("knowmem", "retain_qa_icl")]}
    model, tokenizer = build_tiny_model(corpus_texts(rows), vocab_size=2048, seed=0)
    model.config.max_position_embeddings = tokenizer.model_max_length = 4096
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    tasks = ["unlearn_muse_news_verbmem", "unlearn_muse_news_knowmem_retain", "unlearn_muse_news_privleak"]
    with caplog.at_level(logging.WARNING):
        _, out = run(tmp_path / "model", tasks, metadata={"max_length": 300}, limit=4, batch_size=1)

    samples = out["samples"]
    for index, row in enumerate(rows[("verbmem", "forget")]):
        output, f1 = fx.verbmem_f1(model, tokenizer, row)
        assert per_doc(samples[tasks[0]], "resps")[("forget", index)] == [[output]]
        assert per_doc(samples[tasks[0]], "rougeL_f1")[("forget", index)] == f1
    icl = split_values("news", "knowmem", "retain_qa_icl")
    for index, row in enumerate(split_values("news", "knowmem", "retain_qa")[:4]):
        _, f1 = fx.knowmem_f1(model, tokenizer, icl, row)
        assert per_doc(samples[tasks[1]], "rougeL_f1")[("retain", index)] == f1
    minks = {split: [fx.min_k40(fx.text_logprobs(model, tokenizer, text, 300)) for text in rows[("privleak", split)]]
             for split in ("forget", "holdout")}
    assert out["results"][tasks[2]]["auc_mink40,none"] == pytest.approx(fx.membership_auc(minks["forget"], minks["holdout"]), abs=1e-6)
    assert sum("longer than the model's context" in record.message for record in caplog.records) == 1


def test_a_long_text_is_cut_to_the_context_with_one_warning(caplog):
    _, tokenizer = build_tiny_model(["alpha beta gamma delta " * 5], vocab_size=300)
    limit = ContextLimit(tokenizer, {"max_length": 8})
    text = "alpha beta gamma delta " * 6
    with caplog.at_level(logging.WARNING):
        cut = limit.fit(text)
        assert limit.fit(text + "epsilon") != text + "epsilon"
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer(cut, add_special_tokens=False)["input_ids"] == tokens[:8]
    assert limit.fit("alpha beta") == "alpha beta"
    assert sum("longer than the model's context" in record.message for record in caplog.records) == 1


def test_missing_split_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"muse/books/verbmem/forget\.json"):
        load_muse_split("books", "verbmem", "forget")
    bad = tmp_path / "muse" / "news" / "knowmem" / "forget_qa.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('[{"question": "q"}\n,,]', encoding="utf-8")
    with pytest.raises(DataError, match=r"forget_qa\.json:2"):
        load_muse_split("news", "knowmem", "forget_qa")
    bad.write_text(json.dumps({"question": "q"}), encoding="utf-8")
    with pytest.raises(DataError, match="one JSON list"):
        load_muse_split("news", "knowmem", "forget_qa")


def test_retain_ref_from_a_retain_models_privleak_samples(tmp_path):
    from harness_ext.reference import build_reference
    from tests.reference_fixtures import write_samples
    from unlearn_tasks.muse.aggregations import retrain_auc

    # a retain model's samples: member scores 1, 3; non-member scores 2, 4 → P(member > non-member) = 1/4
    lines = []
    for index, (member_score, nonmember_score) in enumerate([(1.0, 2.0), (3.0, 4.0)]):
        for split, score in (("forget", member_score), ("holdout", nonmember_score)):
            keys = ("auc_mink40", "auc_loss", "auc_zlib", "auc_minkpp")
            lines.append({"doc": {"split": split, "index": index}} | {key: [split == "forget", score] for key in keys})
    write_samples(tmp_path / "run" / "model", "unlearn_muse_news_privleak", lines)
    build_reference(tmp_path / "run", tmp_path / "ref.json")

    documents = [line["doc"] | {"member": line["doc"]["split"] == "forget"} for line in lines]
    metadata = {"retain_ref": str(tmp_path / "ref.json")}
    task, settings = "unlearn_muse_news_privleak", {"convention": "default", "task_version": 1}
    assert retrain_auc(metadata, task, documents, settings) == pytest.approx(0.75)  # MUSE's: 1 − 1/4
    assert retrain_auc({"privleak_auc_retrain": 0.4772, **metadata}, task, documents, settings) == 0.4772
    assert retrain_auc({}, task, documents, settings) is None
    with pytest.raises(ValueError, match="different split, data or a --limit run"):
        retrain_auc(metadata, task, documents[:2], settings)
    with pytest.raises(ValueError, match="task_version: reference 1, this run 2"):
        retrain_auc(metadata, task, documents, {**settings, "task_version": 2})
