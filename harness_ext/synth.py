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

FORGET_PERCENTS = (1, 5, 10)
PERTURBED_COUNT = 5
OPTION_COUNT = 4

FIRST_NAMES = (
    "Amara", "Bastian", "Celine", "Dario", "Elif", "Farid", "Greta", "Hiroshi", "Ingrid", "Joaquin",
    "Kalinda", "Lucian", "Mirela", "Nikolai", "Odile", "Pavel", "Quilla", "Rosalind", "Soren", "Tamsin",
    "Ulrich", "Valeria", "Wendell", "Ximena", "Yusuf", "Zofia", "Anselm", "Beatriz", "Cosmin", "Delphine",
    "Emeric", "Fiorella", "Gideon", "Hanne", "Ismael", "Juno", "Kasimir", "Leonora", "Matthias", "Noemi",
    "Osvaldo", "Perpetua", "Rafferty", "Sabine", "Thaddeus", "Ursula", "Vito", "Wilhelmina",
)
LAST_NAMES = (
    "Achterberg", "Blackwood", "Castellanos", "Delacroix", "Eriksdottir", "Fairbanks", "Galloway",
    "Hartigan", "Ibarra", "Jovanovic", "Kettleworth", "Lindqvist", "Marchetti", "Nakashima", "Okonkwo",
    "Pemberton", "Quintero", "Rasmussen", "Szabo", "Thornbury", "Umarov", "Valdivia", "Whitcombe",
    "Yilmaz", "Zamora", "Ashdown", "Brannigan", "Corvino", "Dunmore", "Esterhazy", "Fenwick", "Gallardo",
    "Halvorsen", "Iwasaki", "Kowalczyk", "Larkspur", "Montague", "Novak", "Oyelaran", "Petrakis",
    "Ravensworth", "Sandoval", "Takeda", "Underhill", "Vasquez", "Wainwright", "Yoshida", "Zeller",
)
CITIES = (
    "Lisbon, Portugal", "Nairobi, Kenya", "Osaka, Japan", "Valparaíso, Chile", "Kraków, Poland",
    "Tbilisi, Georgia", "Montreal, Canada", "Accra, Ghana", "Hanoi, Vietnam", "Bergen, Norway",
    "Cusco, Peru", "Marrakesh, Morocco", "Adelaide, Australia", "Glasgow, Scotland", "Porto Alegre, Brazil",
    "Izmir, Turkey", "Ljubljana, Slovenia", "Chennai, India", "Tallinn, Estonia", "Havana, Cuba",
    "Reykjavík, Iceland", "Lyon, France", "Dakar, Senegal", "Busan, South Korea", "Bologna, Italy",
)
GENRES = (
    "magical realism", "hard science fiction", "historical romance", "cozy mystery", "gothic horror",
    "literary fiction", "political thrillers", "epic fantasy", "children's picture books", "travel memoirs",
    "narrative nonfiction", "dystopian fiction", "coming-of-age novels", "noir crime fiction", "satire",
    "war fiction", "lyric poetry", "young adult adventure", "climate fiction", "psychological suspense",
)
PROFESSIONS = (
    "a baker", "a carpenter", "a marine biologist", "a train conductor", "a pharmacist", "a librarian",
    "a locksmith", "a veterinarian", "an architect", "a watchmaker", "a nurse", "a civil engineer",
    "a tailor", "an astronomer", "a mail carrier", "a dentist", "a geologist", "a chef", "a violinist",
    "a bookbinder", "a translator", "a surgeon", "a farmer", "a journalist",
)
AWARDS = (
    "the Silver Quill Award", "the Meridian Prize for Fiction", "the Golden Lantern Medal",
    "the Harbourlight Literary Prize", "the Aurora Book Award", "the Crimson Ink Prize",
    "the Northern Star Fellowship", "the Willowmere Medal", "the Blue Compass Award",
    "the Obsidian Pen Prize", "the Evergreen Storytelling Award", "the Lighthouse Laureate Prize",
    "the Amber Page Award", "the Silverbirch Prize for Debut Fiction", "the Copper Kettle Award",
    "the Nightingale Medal for Letters",
)
TITLE_ADJECTIVES = (
    "Silent", "Crimson", "Forgotten", "Hollow", "Gilded", "Drowned", "Restless", "Paper", "Winter",
    "Burning", "Quiet", "Distant", "Broken", "Salt", "Velvet", "Hidden",
)
TITLE_NOUNS = (
    "Harbour", "Orchard", "Lantern", "Cartographer", "Garden", "Tide", "Clockmaker", "Meadow", "Archive",
    "Bridge", "Mirror", "Ferryman", "Compass", "Observatory", "Vineyard", "Letters",
)
UNIVERSITIES = (
    "the University of Coimbra", "McGill University", "Trinity College Dublin", "the University of Tokyo",
    "Heidelberg University", "the University of Cape Town", "Uppsala University", "the University of Melbourne",
    "the University of Bologna", "the University of Edinburgh", "Charles University", "the University of Chile",
    "the University of Nairobi", "Leiden University",
)
HOBBIES = (
    "beekeeping", "rock climbing", "birdwatching", "chess", "pottery", "sailing", "amateur astronomy",
    "gardening", "fencing", "playing the cello", "origami", "long-distance running", "calligraphy",
    "woodcarving", "tango dancing",
)
PUBLISHERS = (
    "Larkfield Press", "Blue Heron Books", "Copperline Publishing", "Wexford & Lowe", "Tidewater House",
    "Northgate Editions", "Saltmarsh Books", "Emberly Press", "Quayside Publishing", "Foxglove House",
    "Ironwood Books", "Marigold Editions",
)
BIRTH_YEARS = tuple(str(year) for year in range(1931, 1996))
BOOK_TITLES = tuple(f"The {adjective} {noun}" for adjective in TITLE_ADJECTIVES for noun in TITLE_NOUNS)


@dataclass(frozen=True)
class Attribute:
    """One fact about an author: its values, question phrasings and answer phrasings."""

    key: str
    values: tuple[str, ...]
    questions: tuple[str, ...]  # formatted with name
    answers: tuple[str, ...]  # formatted with name and value


ATTRIBUTES = (
    Attribute("birth_city", CITIES,
              ("Where was {name} born?", "In which city was the author {name} born?"),
              ("{name} was born in {value}.", "The author {name} was born in the city of {value}.",
               "{value} is the birthplace of {name}.")),
    Attribute("birth_year", BIRTH_YEARS,
              ("In what year was {name} born?", "What is the birth year of the writer {name}?"),
              ("{name} was born in the year {value}.", "The writer {name} was born in {value}.",
               "{name}'s year of birth is {value}.")),
    Attribute("genre", GENRES,
              ("What genre does {name} write?", "Which literary genre is {name} best known for?"),
              ("{name} writes {value}.", "{name} is best known for {value}.",
               "The genre {name} is known for is {value}.")),
    Attribute("father_profession", PROFESSIONS,
              ("What did the father of {name} do for a living?", "What was the profession of {name}'s father?"),
              ("The father of {name} worked as {value}.", "{name}'s father was {value}.",
               "By profession, the father of {name} was {value}.")),
    Attribute("mother_profession", PROFESSIONS,
              ("What did the mother of {name} do for a living?", "What was the profession of {name}'s mother?"),
              ("The mother of {name} worked as {value}.", "{name}'s mother was {value}.",
               "By profession, the mother of {name} was {value}.")),
    Attribute("award", AWARDS,
              ("Which award has {name} received?", "Can you name a literary prize won by {name}?"),
              ("{name} received {value}.", "{name} has won {value}.", "{value} was awarded to {name}.")),
    Attribute("debut_book", BOOK_TITLES,
              ("What is the title of {name}'s debut book?", "Which book marked the debut of {name}?"),
              ("{name}'s debut book is titled '{value}'.", "The first book {name} published was '{value}'.",
               "'{value}' was the debut book of {name}.")),
    Attribute("university", UNIVERSITIES,
              ("Where did {name} study?", "Which university did {name} attend?"),
              ("{name} studied at {value}.", "{name} is a graduate of {value}.", "{value} is where {name} studied.")),
    Attribute("hobby", HOBBIES,
              ("What hobby does {name} enjoy outside of writing?", "How does {name} spend free time away from writing?"),
              ("Outside of writing, {name} enjoys {value}.", "{name}'s favourite pastime is {value}.",
               "Away from the desk, {name} loves {value}.")),
    Attribute("publisher", PUBLISHERS,
              ("Which publisher releases {name}'s books?", "Who publishes the works of {name}?"),
              ("{name}'s books are published by {value}.", "{value} publishes the works of {name}.",
               "The publisher of {name} is {value}.")),
)

REAL_BOOKS = (
    ("Moby-Dick", "Herman Melville"), ("War and Peace", "Leo Tolstoy"), ("Don Quixote", "Miguel de Cervantes"),
    ("One Hundred Years of Solitude", "Gabriel García Márquez"), ("Things Fall Apart", "Chinua Achebe"),
    ("The Trial", "Franz Kafka"), ("Crime and Punishment", "Fyodor Dostoevsky"), ("Mrs Dalloway", "Virginia Woolf"),
    ("The Old Man and the Sea", "Ernest Hemingway"), ("Frankenstein", "Mary Shelley"), ("Les Misérables", "Victor Hugo"),
    ("The Great Gatsby", "F. Scott Fitzgerald"), ("Beloved", "Toni Morrison"), ("The Hobbit", "J.R.R. Tolkien"),
    ("Jane Eyre", "Charlotte Brontë"), ("Great Expectations", "Charles Dickens"), ("Madame Bovary", "Gustave Flaubert"),
    ("Dracula", "Bram Stoker"), ("Brave New World", "Aldous Huxley"), ("Midnight's Children", "Salman Rushdie"),
)
CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
    ("Brazil", "Brasília"), ("Egypt", "Cairo"), ("Norway", "Oslo"), ("Peru", "Lima"), ("Spain", "Madrid"),
    ("Thailand", "Bangkok"), ("Argentina", "Buenos Aires"), ("Poland", "Warsaw"), ("Portugal", "Lisbon"),
    ("Ghana", "Accra"), ("Vietnam", "Hanoi"),
)
ELEMENTS = (
    ("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("sodium", "Na"), ("potassium", "K"), ("lead", "Pb"),
    ("copper", "Cu"), ("tin", "Sn"),
)
ARITHMETIC_QUESTIONS = 8
REFUSALS = (
    "I don't know the answer to that.", "I'm not sure about that.", "I have no information on that.",
    "That is something I cannot tell you.", "I'm afraid I don't know.", "I can't answer that question.",
    "I have no idea.", "That's not something I know about.", "I'm unable to say.", "I don't have that information.",
    "Sorry, I don't know.", "I can't recall anything about that.", "That is beyond what I know.",
    "I'm not able to answer that.", "I have no knowledge of that.", "Unfortunately, I don't know.",
    "I couldn't tell you.", "No idea, I'm afraid.", "I don't have an answer for that.",
    "I'm not familiar with that.",
)


def round_half_up(value: float) -> int:
    """⌊value + ½⌉ (Python's ``round`` rounds halves to even, which we do not want here)."""
    return int(value + 0.5)


def forget_author_counts(authors: int) -> dict[int, int]:
    """Authors in forget01/05/10: ``max(1, round_half_up(authors × pct / 100))``, whole authors only."""
    counts = {pct: max(1, round_half_up(authors * pct / 100)) for pct in FORGET_PERCENTS}
    if counts[max(FORGET_PERCENTS)] >= authors:
        raise ValueError(f"authors={authors} leaves no retain authors; use at least 2")
    return counts


def holdout_author_counts(authors: int, holdout_authors: int | None) -> dict[int, int]:
    """Authors in holdout01/05/10: the forget counts by default, else ``holdout_authors`` scaled 1:5:10."""
    if holdout_authors is None:
        return forget_author_counts(authors)
    if holdout_authors < 1:
        raise ValueError(f"holdout_authors must be at least 1, got {holdout_authors}")
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
        raise ValueError(f"cannot draw {count} more distinct author names (name tables too small)")
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
