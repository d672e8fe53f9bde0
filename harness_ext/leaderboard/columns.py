"""The table's metric columns: where each is read, its facet and direction, and its definition from docs/metrics.md."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from harness_ext.leaderboard.runs import Run

METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
UNMAPPED_TASK = "open_unlearning"  # where an open-unlearning import keeps the keys we have no name for
MUSE = ("news", "books")


@dataclass(frozen=True)
class Column:
    """A table column read from ``results[task]["<metric>,none"]``; the first task of ``tasks`` present wins.

    ``doc`` locates the column's definition in docs/metrics.md: (text in the section heading, text in the
    table row, the cell that holds it); ``{task}`` in the row text stands for the task the column reads.
    ``optional`` columns are left out when no run has their task.
    """

    name: str
    tasks: tuple[str, ...]
    metric: str
    utility: bool = False
    facet: str = "forget"  # forget, utility, knowledge probes, fluency, privacy or other (the page's column groups)
    direction: str = "↓"
    doc: tuple[str, str, int] | None = None
    optional: bool = False

    @property
    def task(self) -> str:
        return self.tasks[0]

    def definition(self) -> str:
        """``task metric: <the docs/metrics.md row>``, or only the source when the docs have no such row."""
        text = doc_row(self.doc[0], self.doc[1].format(task=self.task), self.doc[2]) if self.doc else None
        return f"{self.task} {self.metric}" + (f": {text}" if text else "")


def columns_for(split: str) -> tuple[Column, ...]:
    forget, mia, heading = f"unlearn_tofu_{split}", f"unlearn_tofu_mia_{split}", "`unlearn_tofu_forget01`"
    muse = lambda part: tuple(f"unlearn_muse_{corpus}_{part}" for corpus in MUSE)  # noqa: E731
    return (
        Column("forget ROUGE-L", (forget,), "rougeL_recall", doc=(heading, "`rougeL_recall`", 0)),
        Column("forget prob", (forget,), "prob", doc=(heading, "`prob`", 0)),
        Column("forget truth ratio", (forget,), "truth_ratio", direction="↑", doc=(heading, "`truth_ratio`", 0)),
        Column("forget ES", (forget,), "es", doc=(heading, "`es`", 0)),
        Column("forget ES-para", (forget,), "es_para", doc=(heading, "`es_para`", 0)),
        Column("forget quality", (forget,), "forget_quality", direction="↑", doc=(heading, "`forget_quality`", 0)),
        Column("MUSE VerbMem", muse("verbmem"), "rougeL_f1", doc=("MUSE", "`{task}`", 0), optional=True),
        Column("MUSE KnowMem forget", muse("knowmem_forget"), "rougeL_f1", doc=("MUSE", "`{task}`", 0), optional=True),
        Column("model utility", ("unlearn_tofu_utility",), "model_utility", utility=True, facet="utility",
               direction="↑", doc=("`unlearn_tofu_utility`", "`model_utility`", 0)),
        Column("retain ES", ("unlearn_tofu_utility",), "es_retain", utility=True, facet="utility", direction="↑",
               doc=("`unlearn_tofu_utility`", "`es_retain`", 0)),
        Column("MUSE KnowMem retain", muse("knowmem_retain"), "rougeL_f1", utility=True, facet="utility",
               direction="↑", doc=("MUSE", "`{task}`", 0), optional=True),
        Column("MMLU acc", ("unlearn_mmlu", "unlearn_mmlu_mini"), "acc", utility=True, facet="knowledge probes",
               direction="↑", doc=("MMLU", "`{task}` (group)", 1)),
        Column("probe acc", ("unlearn_probes",), "acc", utility=True, facet="knowledge probes", direction="↑",
               doc=("Probes", "`unlearn_probes` (group)", 0)),
        Column("WMDP acc", ("unlearn_wmdp",), "acc", facet="knowledge probes", doc=("WMDP", "`unlearn_wmdp`", 0),
               optional=True),
        Column("retain entropy", ("unlearn_fluency_retain",), "token_entropy", utility=True, facet="fluency",
               direction="↑", doc=("Fluency", "`token_entropy`", 0)),
        Column("privleak", (mia,), "privleak", facet="privacy", direction="→0",
               doc=("Membership inference", "`privleak`", 0)),
        Column("MUSE privleak", muse("privleak"), "privleak", facet="privacy", direction="→0",
               doc=("MUSE", "`{task}`", 0), optional=True),
    )


def resolve_columns(columns: tuple[Column, ...], runs: list[Run]) -> tuple[Column, ...]:
    """Each column reads one task: the first of its candidates that any run has (else the first).

    Optional columns no run has are left out; keys an open-unlearning import could not map are added.
    """
    def present(task: str) -> bool:
        return any(run.task(task) for run in runs)

    chosen = [replace(column, tasks=(next((task for task in column.tasks if present(task)), column.task),))
              for column in columns]
    kept = tuple(column for column in chosen if not column.optional or present(column.task))
    return kept + unmapped_columns(runs)


def unmapped_columns(runs: list[Run]) -> tuple[Column, ...]:
    keys = sorted({key.rsplit(",", 1)[0] for run in runs for key in (run.task(UNMAPPED_TASK) or {})})
    return tuple(Column(key, (UNMAPPED_TASK,), key, facet="other", direction="") for key in keys)


# ---- definitions from docs/metrics.md -------------------------------------------------------------

def doc_row(heading: str, needle: str, cell: int) -> str | None:
    """The first table row, under a heading containing ``heading``, whose cell ``cell`` contains ``needle``:
    its cells joined by `` · `` as plain text (no backticks, links reduced to their text, no URLs)."""
    for section, cells in doc_rows(metrics_doc()):
        if heading in section and len(cells) > cell and needle in cells[cell]:
            return " · ".join(plain(text) for text in cells if text)
    return None


@lru_cache(maxsize=1)
def metrics_doc() -> str:
    return METRICS_DOC.read_text(encoding="utf-8") if METRICS_DOC.is_file() else ""


def doc_rows(text: str) -> list[tuple[str, list[str]]]:
    """(the nearest heading above, the cells) for every Markdown table row that is not a header separator."""
    rows, heading = [], ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line
        elif line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line):
            rows.append((heading, split_cells(line)))
    return rows


def split_cells(line: str) -> list[str]:
    """A table row's cells; ``|`` inside backticks or escaped as ``\\|`` belongs to the cell."""
    cells, current, in_code = [], "", False
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and line[index + 1:index + 2] == "|":
            current, index = current + "|", index + 2
            continue
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
        index += 1
    return cells[1:]  # the text before the first | is empty


def plain(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\w+://\S+", "", text)
    return text.replace("`", "").replace("**", "").strip()
