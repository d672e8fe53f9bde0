"""open-unlearning's own TOFU evaluator, run on the benchmark's workload as a subprocess and timed
(``eval_speed.py --workload open-unlearning --open-unlearning PATH``).

The run: ``PY PATH/src/eval.py`` with Hydra overrides for open-unlearning's default TOFU evaluation
(``experiment=eval/tofu/default``) on forget01 / holdout01, exact memorization added, batch size 32, the
benchmark's model (a local Hugging Face folder) in float32 on the CPU without a chat template (prompt
``Question: {q}\\nAnswer: ``, answer + EOS), and every TOFU dataset read from the local JSON Lines files
``$UNLEARN_DATA_DIR/tofu/<config>.jsonl`` (``hf_args: {path: json, data_files: ...}``) instead of the
hub's ``locuslab/TOFU``. Which config nodes load TOFU is read from the composed configuration
(``--cfg job --resolve``, a cheap run outside the timing), so metrics open-unlearning adds are covered.

open-unlearning pins transformers 4.45, which misreads a checkpoint saved by transformers >= 5 (its
``rope_parameters``, its tokenizer class): such a checkpoint is handed over as links to its files with
those two configs translated (:func:`readable_checkpoint`).

PY is an interpreter with open-unlearning's dependencies (``make setup-open-unlearning OU=PATH``
builds ``.venv-ou``). Nothing of open-unlearning is imported here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

TOFU_HUB = "locuslab/TOFU"
FORGET_SPLIT = "forget01"
HOLDOUT_SPLIT = "holdout01"
BATCH_SIZE = 32
#: open-unlearning's values printed beside its time: the first four from TOFU_SUMMARY.json, Min-K%
#: (privleak's pre-computed attack, not a top-level metric) from TOFU_EVAL.json.
HEADLINE = ("forget_Q_A_Prob", "forget_truth_ratio", "extraction_strength", "model_utility", "mia_min_k")
STDERR_TAIL = 3000


class OpenUnlearningError(RuntimeError):
    """open-unlearning's evaluator failed: the message holds the command and the tail of its stderr."""


def model_overrides(model: str) -> list[str]:
    """A local checkpoint in float32 on the CPU, default attention, no chat template: the prompt is
    ``Question: {q}\\nAnswer: `` (open-unlearning appends the answer and EOS)."""
    args, template = "model.model_args", "model.template_args"
    return [
        f"{args}.pretrained_model_name_or_path={model}",
        f"model.tokenizer_args.pretrained_model_name_or_path={model}",
        f"{args}.torch_dtype=float32",
        f"{args}.device_map=cpu",
        f"~{args}.attn_implementation",  # the experiment's model config asks for flash_attention_2
        f"{template}.apply_chat_template=false",
        f"{template}.system_prompt_with_special_tokens=null",
        f"{template}.user_start_tag='Question: '",
        f"{template}.user_end_tag='\n'",
        f"{template}.asst_start_tag='Answer: '",
    ]


def base_overrides(model: str, output_dir: Path, batch_size: int = BATCH_SIZE) -> list[str]:
    """The workload's overrides, TOFU still on the hub: default TOFU evaluation, splits, exact
    memorization added, batch size, model, output folder."""
    return [
        "experiment=eval/tofu/default",
        f"forget_split={FORGET_SPLIT}",
        f"holdout_split={HOLDOUT_SPLIT}",
        "task_name=unlearn-bench",
        "+eval/tofu_metrics=exact_memorization",
        f"eval.tofu.batch_size={batch_size}",
        *model_overrides(model),
        f"paths.output_dir={output_dir}",
    ]


def hub_datasets(config: dict, key: str = "") -> list[tuple[str, str]]:
    """``(dotted key of an hf_args node, TOFU config name)`` for every node of a composed configuration
    that loads ``locuslab/TOFU``."""
    found = []
    for name, value in config.items():
        here = f"{key}.{name}" if key else str(name)
        if name == "hf_args" and isinstance(value, dict) and value.get("path") == TOFU_HUB:
            found.append((here, value["name"]))
        elif isinstance(value, dict):
            found += hub_datasets(value, here)
    return found


def data_overrides(config: dict, tofu_dir: Path) -> list[str]:
    """Overrides that make each hub TOFU dataset of ``config`` the local ``tofu_dir/<config>.jsonl``."""
    overrides = []
    for key, name in hub_datasets(config):
        overrides += [f"{key}.path=json", f"+{key}.data_files={Path(tofu_dir) / f'{name}.jsonl'}", f"~{key}.name"]
    return overrides


def command(python: str, checkout: Path, overrides: list[str]) -> list[str]:
    """``python CHECKOUT/src/eval.py OVERRIDES...`` (paths absolute: it runs in a scratch folder)."""
    python = str(Path(python).absolute()) if os.sep in str(python) else str(python)
    return [python, str(Path(checkout).absolute() / "src" / "eval.py"), *overrides]


def environment(threads: int, scratch: Path) -> dict:
    """This process's environment, offline, with ``threads`` torch threads and a datasets cache in
    ``scratch``."""
    count = str(threads)
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS=count,
                MKL_NUM_THREADS=count, TOKENIZERS_PARALLELISM="false",
                HF_DATASETS_CACHE=str(Path(scratch) / "datasets-cache"))


def run(argv: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``argv``; raise :class:`OpenUnlearningError` with the command and stderr's tail on failure."""
    try:
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    except OSError as error:
        raise OpenUnlearningError(f"open-unlearning's evaluator could not start: {error}\n{shlex.join(argv)}") from None
    if done.returncode != 0:
        raise OpenUnlearningError(f"open-unlearning's evaluator failed (exit {done.returncode}):\n"
                                  f"{shlex.join(argv)}\n--- stderr (tail) ---\n{done.stderr[-STDERR_TAIL:]}")
    return done


def compose(python: str, checkout: Path, overrides: list[str], env: dict, cwd: Path) -> dict:
    """open-unlearning's composed configuration for ``overrides`` (``--cfg job --resolve``)."""
    import yaml

    done = run(command(python, checkout, [*overrides, "--cfg", "job", "--resolve"]), env, cwd)
    return yaml.safe_load(config_text(done.stdout))


def config_text(stdout: str) -> str:
    """The YAML document in ``--cfg job`` output, without the lines its imports print before it
    (DeepSpeed's accelerator warning, for one)."""
    lines = stdout.splitlines()
    first = next((i for i, line in enumerate(lines) if re.match(r"[A-Za-z_]\w*:(\s|$)", line)), len(lines))
    return "\n".join(lines[first:])


def local_data_overrides(python: str, checkout: Path, workload: list[str], data_dir: Path, env: dict,
                         cwd: Path) -> list[str]:
    """Overrides that read every TOFU dataset of the ``workload`` overrides' configuration from
    ``data_dir/tofu`` (found by composing it)."""
    local = data_overrides(compose(python, checkout, workload, env, cwd), Path(data_dir) / "tofu")
    if not local:
        raise OpenUnlearningError(f"no {TOFU_HUB} dataset in open-unlearning's composed configuration: "
                                  f"{shlex.join(command(python, checkout, workload))}")
    return local


def read_results(output_dir: Path) -> dict:
    """The headline values from ``TOFU_SUMMARY.json`` (Min-K% from ``TOFU_EVAL.json``)."""
    summary = json.loads((Path(output_dir) / "TOFU_SUMMARY.json").read_text())
    logs_file = Path(output_dir) / "TOFU_EVAL.json"
    logs = json.loads(logs_file.read_text()) if logs_file.exists() else {}
    values = {name: summary[name] for name in HEADLINE if name in summary}
    for name in HEADLINE:
        if name not in values and isinstance(logs.get(name), dict) and "agg_value" in logs[name]:
            values[name] = logs[name]["agg_value"]
    return values


def transformers4_tokenizer_config(config: dict) -> dict:
    """A tokenizer config saved by transformers >= 5 as transformers 4 reads it: ``TokenizersBackend``
    (5's name for a tokenizer built from ``tokenizer.json``) is 4's ``PreTrainedTokenizerFast``."""
    if config.get("tokenizer_class") != "TokenizersBackend":
        return config
    return {**config, "tokenizer_class": "PreTrainedTokenizerFast"}


def transformers4_model_config(config: dict) -> dict:
    """A model config saved by transformers >= 5 as transformers 4 reads it: ``rope_parameters`` is 4's
    ``rope_theta`` + ``rope_scaling`` (4 ignores it and falls back to theta 10,000), ``dtype`` 4's
    ``torch_dtype``."""
    config = dict(config)
    if "rope_parameters" in config and "rope_theta" not in config:
        rope = dict(config.pop("rope_parameters") or {})
        if "rope_theta" in rope:
            config["rope_theta"] = rope.pop("rope_theta")
        config["rope_scaling"] = None if rope.get("rope_type", "default") == "default" else rope
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config["dtype"]
    return config


TRANSLATIONS = {"tokenizer_config.json": transformers4_tokenizer_config, "config.json": transformers4_model_config}


def readable_checkpoint(model: str, scratch: Path) -> str:
    """``model`` itself, or, where it was saved by transformers >= 5, a folder in ``scratch`` that
    open-unlearning's transformers 4.45 reads as the same model: links to its files, its
    ``config.json`` and ``tokenizer_config.json`` translated (:data:`TRANSLATIONS`)."""
    source = Path(model)
    translated = {}
    for name, translate in TRANSLATIONS.items():
        if (source / name).is_file():
            config = json.loads((source / name).read_text())
            readable = translate(config)
            if readable != config:
                translated[name] = readable
    if not translated:
        return model
    folder = Path(scratch) / "checkpoint-for-transformers-4"
    folder.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        if file.name not in translated:
            (folder / file.name).symlink_to(file.resolve())
    for name, config in translated.items():
        (folder / name).write_text(json.dumps(config, indent=2))
    return str(folder)


def evaluate(checkout: Path, python: str, model: str, data_dir: Path, threads: int, scratch: Path,
             batch_size: int = BATCH_SIZE) -> dict:
    """Run open-unlearning's evaluator on the workload in ``scratch``. Returns ``seconds`` (the evaluator
    run only, not the composition that finds the datasets), headline ``values``, the full ``command``,
    the ``workload`` part of it (without the local-data overrides) and the number of ``datasets`` redirected."""
    scratch, checkout = Path(scratch), Path(checkout).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    output_dir = scratch / "open-unlearning-eval"
    env = environment(threads, scratch)
    workload = base_overrides(readable_checkpoint(model, scratch), output_dir, batch_size)
    local = local_data_overrides(python, checkout, workload, data_dir, env, scratch)
    argv = command(python, checkout, workload + local)
    started = time.perf_counter()
    run(argv, env, scratch)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "values": read_results(output_dir), "command": argv,
            "workload": command(python, checkout, workload), "datasets": len(local) // 3}


def table(result: dict) -> list[str]:
    """Markdown lines: open-unlearning's headline values and wall time."""
    lines = ["| open-unlearning (measured in this run) | value |", "| --- | ---: |"]
    lines += [f"| {name} | {result['values'][name]:.6f} |" for name in HEADLINE if name in result["values"]]
    return lines + [f"| wall time, subprocess (s) | {result['seconds']:.1f} |"]


def ratio(ours_s: float, result: dict) -> float:
    """Our wall time ÷ open-unlearning's measured one."""
    return ours_s / result["seconds"]


def shown(argv: list[str]) -> str:
    """A command as one markdown-safe line (a newline inside an argument shown as ``\\n``)."""
    return shlex.join(argv).replace("\n", "\\n")


def report_lines(ours_s: float, result: dict) -> list[str]:
    """The benchmark's markdown section: the command, open-unlearning's values and time, and the ratio."""
    return [
        "## open-unlearning's own evaluator (same model, data and workload; measured in this run)", "",
        f"`{shown(result['workload'])}` + for each of its {result['datasets']} TOFU dataset nodes"
        " `<node>.hf_args.path=json +<node>.hf_args.data_files=$UNLEARN_DATA_DIR/tofu/<config>.jsonl"
        " ~<node>.hf_args.name`; HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1, OMP_NUM_THREADS = the"
        " benchmark's torch threads.", "",
        *table(result), "",
        f"**ours/open-unlearning = {ratio(ours_s, result):.2f}** (ours: fixed overhead + evaluation ="
        f" {ours_s:.0f} s; open-unlearning: its `src/eval.py` as a subprocess = {result['seconds']:.0f} s,"
        " measured in this run; goal ≤ 0.5)",
    ]
