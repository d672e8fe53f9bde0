"""A deterministic, TOFU-format benchmark of fictitious authors, small enough for CPU tests.

``write_benchmark(out_dir)`` writes ``<out_dir>/tofu/<config>.jsonl`` for exactly TOFU's configs
and fields (see ``../shared/README.md``), so ``UNLEARN_DATA_DIR=<out_dir>`` points every task at it.
Each author has one question per attribute (:data:`ATTRIBUTES`); every question names its author
and its attribute, so every fact is recoverable from its question. All randomness comes from one
``random.Random(seed)``: the same arguments give byte-identical files. See docs/synthetic.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from harness_ext.io import atomic_folder
from unlearn_tasks.datasource import DataError
from unlearn_tasks.errors import UnlearnBenchError

FORGET_PERCENTS = (1, 5, 10)
PERTURBED_COUNT = 5
OPTION_COUNT = 4

WORDS_FILE = Path(__file__).with_name("synth_words.json")
ARITHMETIC_QUESTIONS = 8


class WordTableError(DataError):
    """The word-table file is unreadable or lacks a table the generator needs."""


class SynthError(UnlearnBenchError, ValueError):
    """Author counts the synthetic benchmark cannot be made with."""


def load_words(path: Path = WORDS_FILE) -> dict:
    """The word tables (names, places, genres, attribute phrasings, ...) of ``path``."""
    try:
        words = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise WordTableError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(words, dict):
        raise WordTableError(f"{path}:1: expected an object of named tables")
    return words


def table(words: dict, name: str, path: Path = WORDS_FILE) -> tuple:
    """``words[name]`` as a tuple (pairs as tuples); a missing or empty table names the file."""
    rows = words.get(name)
    if not isinstance(rows, list) or not rows:
        raise WordTableError(f"{path}: no table '{name}' (a non-empty list)")
    return tuple(tuple(row) if isinstance(row, list) else row for row in rows)


@dataclass(frozen=True)
class Attribute:
    """One fact about an author: its values, question phrasings and answer phrasings."""

    key: str
    values: tuple[str, ...]
    questions: tuple[str, ...]  # formatted with name
    answers: tuple[str, ...]  # formatted with name and value


ATTRIBUTE_FIELDS = ("key", "values", "questions", "answers")


def attributes(words: dict, path: Path = WORDS_FILE) -> tuple[Attribute, ...]:
    """The attributes of ``words``; each names its value table (or ``birth_years`` / ``book_titles``)."""
    derived = {
        "birth_years": tuple(str(year) for year in range(1931, 1996)),
        "book_titles": tuple(f"The {adjective} {noun}" for adjective in table(words, "title_adjectives", path)
                             for noun in table(words, "title_nouns", path)),
    }
    found = []
    for number, entry in enumerate(table(words, "attributes", path), start=1):
        if not isinstance(entry, dict) or any(name not in entry for name in ATTRIBUTE_FIELDS):
            raise WordTableError(f"{path}: attribute {number} needs the fields {', '.join(ATTRIBUTE_FIELDS)}")
        values = derived.get(entry["values"]) or table(words, entry["values"], path)
        found.append(Attribute(entry["key"], values, tuple(entry["questions"]), tuple(entry["answers"])))
    return tuple(found)


WORDS = load_words()
FIRST_NAMES, LAST_NAMES = table(WORDS, "first_names"), table(WORDS, "last_names")
ATTRIBUTES = attributes(WORDS)
REAL_BOOKS, CAPITALS, ELEMENTS = table(WORDS, "real_books"), table(WORDS, "capitals"), table(WORDS, "elements")
REFUSALS = table(WORDS, "refusals")


def round_half_up(value: float) -> int:
    """⌊value + ½⌉ (Python's ``round`` rounds halves to even, which we do not want here)."""
    return int(value + 0.5)


def forget_author_counts(authors: int) -> dict[int, int]:
    """Authors in forget01/05/10: ``max(1, round_half_up(authors × pct / 100))``, whole authors only."""
    counts = {pct: max(1, round_half_up(authors * pct / 100)) for pct in FORGET_PERCENTS}
    if counts[max(FORGET_PERCENTS)] >= authors:
        raise SynthError(f"authors={authors} leaves no retain authors; use at least 2")
    return counts


def holdout_author_counts(authors: int, holdout_authors: int | None) -> dict[int, int]:
    """Authors in holdout01/05/10: the forget counts by default, else ``holdout_authors`` scaled 1:5:10."""
    if holdout_authors is None:
        return forget_author_counts(authors)
    if holdout_authors < 1:
        raise SynthError(f"holdout_authors must be at least 1, got {holdout_authors}")
    return {pct: min(holdout_authors, max(1, round_half_up(holdout_authors * pct / 10))) for pct in FORGET_PERCENTS}


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def draw_names(rng: random.Random, count: int, taken: list[str]) -> list[str]:
    """``count`` new full names; none is a substring of another (so a name identifies one author)."""
    pool = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(pool)
    names = list(taken)
    for candidate in pool:
        if len(names) == len(taken) + count:
            break
        if not any(candidate in name or name in candidate for name in names):
            names.append(candidate)
    if len(names) < len(taken) + count:
        raise SynthError(f"cannot draw {count} more distinct author names (name tables too small): "
                         "ask for fewer authors")
    return names[len(taken):]


def other_index(rng: random.Random, size: int, index: int) -> int:
    """A random index in ``range(size)`` other than ``index``."""
    return rng.choice([i for i in range(size) if i != index])


def author_rows(rng: random.Random, name: str) -> list[dict]:
    """One TOFU ``*_perturbed`` row per attribute of a new author (plain configs keep question, answer)."""
    rows = []
    for attribute in ATTRIBUTES:
        value = rng.choice(attribute.values)
        wrong = rng.sample([v for v in attribute.values if v != value], PERTURBED_COUNT)
        question = rng.randrange(len(attribute.questions))
        answer = rng.randrange(len(attribute.answers))
        paraphrase = attribute.answers[other_index(rng, len(attribute.answers), answer)]
        rows.append({
            "question": attribute.questions[question].format(name=name),
            "answer": capitalised(attribute.answers[answer].format(name=name, value=value)),
            "paraphrased_answer": capitalised(paraphrase.format(name=name, value=value)),
            "perturbed_answer": [capitalised(paraphrase.format(name=name, value=v)) for v in wrong],
            "paraphrased_question": attribute.questions[
                other_index(rng, len(attribute.questions), question)].format(name=name),
        })
    return rows


def multiple_choice(rng: random.Random, question: str, answer: str, pool: list[str]) -> dict:
    """``{question, option1..option4, answer}`` with the answer at a random position among 3 distractors."""
    options = rng.sample([option for option in pool if option != answer], OPTION_COUNT - 1)
    options.insert(rng.randrange(OPTION_COUNT), answer)
    row = {"question": question}
    row.update({f"option{i}": option for i, option in enumerate(options, start=1)})
    row["answer"] = answer
    return row


def general_facts(rng: random.Random) -> tuple[list[dict], list[dict]]:
    """(real_authors, world_facts) multiple-choice rows from the built-in tables."""
    writers = [writer for _, writer in REAL_BOOKS]
    real = [multiple_choice(rng, f"Who wrote the novel '{book}'?", writer, writers) for book, writer in REAL_BOOKS]
    capitals = [capital for _, capital in CAPITALS]
    world = [multiple_choice(rng, f"What is the capital of {country}?", capital, capitals)
             for country, capital in CAPITALS]
    symbols = [symbol for _, symbol in ELEMENTS]
    world += [multiple_choice(rng, f"What is the chemical symbol for {element}?", symbol, symbols)
              for element, symbol in ELEMENTS]
    for _ in range(ARITHMETIC_QUESTIONS):
        left, right = rng.randint(3, 12), rng.randint(3, 12)
        product = left * right
        nearby = [str(product + offset) for offset in range(-6, 7) if offset]
        world.append(multiple_choice(rng, f"What is {left} times {right}?", str(product), nearby))
    return real, world


def without_options(row: dict) -> dict:
    """A multiple-choice row as its ``_perturbed`` form: the distractors become ``perturbed_answer``."""
    options = [row[f"option{i}"] for i in range(1, OPTION_COUNT + 1)]
    return {"question": row["question"], "answer": row["answer"],
            "perturbed_answer": [option for option in options if option != row["answer"]]}


def plain(rows: list[dict]) -> list[dict]:
    return [{"question": row["question"], "answer": row["answer"]} for row in rows]


def build_configs(authors: int = 40, seed: int = 0, holdout_authors: int | None = None) -> dict[str, list[dict]]:
    """Every TOFU config's rows, in file order (the pure part of :func:`write_benchmark`)."""
    forget_counts = forget_author_counts(authors)
    holdout_counts = holdout_author_counts(authors, holdout_authors)
    rng = random.Random(seed)
    names = draw_names(rng, authors, [])
    per_author = [author_rows(rng, name) for name in names]
    holdout_names = draw_names(rng, max(holdout_counts.values()), names)
    holdout = [author_rows(rng, name) for name in holdout_names]
    real, world = general_facts(rng)

    def flat(groups: list[list[dict]]) -> list[dict]:
        return [row for group in groups for row in group]

    configs = {"full": plain(flat(per_author))}
    for pct, count in forget_counts.items():
        configs[f"forget{pct:02d}"] = plain(flat(per_author[-count:]))
        configs[f"forget{pct:02d}_perturbed"] = flat(per_author[-count:])
        configs[f"retain{100 - pct}"] = plain(flat(per_author[:-count]))
    retain_count = min(forget_counts[max(FORGET_PERCENTS)], authors - forget_counts[max(FORGET_PERCENTS)])
    configs["retain_perturbed"] = flat(per_author[:retain_count])
    for pct, count in holdout_counts.items():
        configs[f"holdout{pct:02d}"] = plain(flat(holdout[:count]))
    configs["real_authors"] = real
    configs["real_authors_perturbed"] = [without_options(row) for row in real]
    configs["world_facts"] = world
    configs["world_facts_perturbed"] = [without_options(row) for row in world]
    return configs


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_benchmark(out_dir: Path, authors: int = 40, seed: int = 0, holdout_authors: int | None = None) -> Path:
    """Write ``<out_dir>/tofu/<config>.jsonl`` and ``idontknow.jsonl``; return ``out_dir`` (for UNLEARN_DATA_DIR).

    The files are written into a temporary folder beside ``out_dir`` and then renamed into place, so a
    reader never sees a half-written dataset. An existing ``<out_dir>/tofu`` is replaced.
    """
    configs = build_configs(authors, seed, holdout_authors)
    out_dir = Path(out_dir).expanduser().resolve()

    def write(tofu: Path) -> None:
        for config, rows in configs.items():
            write_jsonl(tofu / f"{config}.jsonl", rows)
        (tofu / "idontknow.jsonl").write_text("".join(line + "\n" for line in REFUSALS), encoding="utf-8")

    atomic_folder(out_dir / "tofu", write)
    return out_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``unlearn-bench synth``."""
    parser.add_argument("--out", required=True, type=Path, help="folder to write; use it as UNLEARN_DATA_DIR")
    parser.add_argument("--authors", type=int, default=40, help="fictitious authors in `full` (10 questions each)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    parser.add_argument("--holdout-authors", type=int, default=None,
                        help="authors in holdout10 (default: as many as forget10)")
    parser.add_argument("--force", action="store_true", help="replace an existing <out>/tofu folder")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``unlearn-bench synth``: write the benchmark and print where it is."""
    existing = Path(args.out) / "tofu"
    if existing.exists() and not args.force:
        print(f"error: {existing} already exists; pass --force to replace it", file=sys.stderr)
        return 2
    try:
        out_dir = write_benchmark(args.out, args.authors, args.seed, args.holdout_authors)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = forget_author_counts(args.authors)
    print(f"wrote {args.authors} authors × {len(ATTRIBUTES)} questions (forget01/05/10 = "
          f"{counts[1]}/{counts[5]}/{counts[10]} authors) to {out_dir / 'tofu'}")
    print(f"use it with: export UNLEARN_DATA_DIR={out_dir}")
    return 0
