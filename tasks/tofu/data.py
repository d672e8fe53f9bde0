"""TOFU data: ``$UNLEARN_DATA_DIR/tofu/<config>.jsonl`` (one JSON object per line, TOFU's HF config names)
and ``$UNLEARN_DATA_DIR/tofu/idontknow.jsonl`` (one refusal string per line, plain text) when that
variable is set, else the hub's ``locuslab/TOFU``. Every row of a config is checked against the fields its
shape documents (:func:`tofu_schema`); a config keeps those fields only."""

from __future__ import annotations

from pathlib import Path

import datasets

from unlearn_tasks.datasource import (
    TEXT, DataError, Schema, checked_rows, hub_rows, local_data_dir, local_file, read_jsonl, read_text, strings,
)

TOFU_HUB_PATH = "locuslab/TOFU"
TOFU_CONFIGS = (
    "full",
    "forget01", "forget05", "forget10",
    "forget01_perturbed", "forget05_perturbed", "forget10_perturbed",
    "retain90", "retain95", "retain99", "retain_perturbed",
    "real_authors", "real_authors_perturbed",
    "world_facts", "world_facts_perturbed",
    "holdout01", "holdout05", "holdout10",
)
QA = {"question": TEXT, "answer": TEXT}
PERTURBED = {**QA, "perturbed_answer": strings()}  # real_authors_perturbed, world_facts_perturbed
PARAPHRASED = {**QA, "paraphrased_answer": TEXT, "perturbed_answer": strings(), "paraphrased_question": TEXT}
MULTIPLE_CHOICE = {"question": TEXT, **{f"option{index}": TEXT for index in range(1, 5)}, "answer": TEXT}


def tofu_schema(config: str) -> Schema:
    """The fields (and their types) every row of ``config`` has."""
    if config in ("real_authors", "world_facts"):
        return MULTIPLE_CHOICE
    if config in ("real_authors_perturbed", "world_facts_perturbed"):
        return PERTURBED
    return PARAPHRASED if config.endswith("_perturbed") else QA


def tofu_hub_arguments(config: str) -> dict:
    """The exact arguments given to ``datasets.load_dataset`` for a TOFU config from the hub."""
    return {"path": TOFU_HUB_PATH, "name": config, "split": "train"}


def load_tofu(config: str) -> datasets.Dataset:
    """One TOFU config as a Dataset: ``$UNLEARN_DATA_DIR/tofu/<config>.jsonl`` if set, else the hub."""
    if config not in TOFU_CONFIGS:
        raise DataError(f"unknown TOFU config {config!r}; known: {', '.join(TOFU_CONFIGS)}")
    if local_data_dir() is None:
        source = f"{TOFU_HUB_PATH} {config}"
        rows = hub_rows(datasets.load_dataset(**tofu_hub_arguments(config)), source)
    else:
        source = local_file("tofu", f"{config}.jsonl")
        rows = read_jsonl(source)
    return datasets.Dataset.from_list(checked_rows(rows, tofu_schema(config), str(source)))


def load_refusals() -> list[str]:
    """TOFU's refusal strings (``idontknow.jsonl``: plain text, one per line)."""
    if local_data_dir() is None:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(TOFU_HUB_PATH, "idontknow.jsonl", repo_type="dataset"))
    else:
        path = local_file("tofu", "idontknow.jsonl")
    lines = [line.strip() for line in read_text(path).splitlines()]
    refusals = [line for line in lines if line]
    if not refusals:
        raise DataError(f"{path}: no refusal strings")
    return refusals


def parse_data_spec(spec: str) -> tuple[str, str]:
    """``"tofu:forget10"`` → ``("tofu", "forget10")``, checked against the known configs."""
    family, _, config = spec.partition(":")
    if family != "tofu" or not config:
        raise DataError(f"data spec {spec!r} must look like 'tofu:<config>' (e.g. tofu:forget10)")
    if config not in TOFU_CONFIGS:
        raise DataError(f"unknown TOFU config {config!r} in {spec!r}; known: {', '.join(TOFU_CONFIGS)}")
    return family, config


def load_spec(spec: str) -> datasets.Dataset:
    """The dataset a ``tofu:<config>`` spec names."""
    _, config = parse_data_spec(spec)
    return load_tofu(config)
