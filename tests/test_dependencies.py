"""pyproject's dependencies are the libraries our packages use: none unused, none used undeclared."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness_ext", "tasks", "unlearn_metrics")
OUR_MODULES = {"harness_ext", "unlearn_tasks", "unlearn_metrics"}
#: Declared dependencies used only through another library's API: distribution → text that shows the use.
USED_THROUGH = {"tabulate": ".to_markdown("}


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {normal(re.match(r"[A-Za-z0-9._-]+", requirement).group()) for requirement in project["dependencies"]}


def sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def imported_modules() -> set[str]:
    """Top-level names of every absolute import in our packages (lazy imports inside functions too)."""
    found = set()
    for source in sources().values():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - OUR_MODULES


def distributions_of(modules: set[str]) -> dict[str, set[str]]:
    """module → the installed distributions that provide it (normalised names)."""
    providers = importlib.metadata.packages_distributions()
    return {module: {normal(name) for name in providers.get(module, [])} for module in modules}


def test_every_declared_dependency_is_used():
    used = set().union(*distributions_of(imported_modules()).values())
    text = "\n".join(sources().values())
    used |= {name for name, marker in USED_THROUGH.items() if marker in text}
    assert declared() - used == set(), "declared in pyproject.toml but used nowhere in our packages"


def test_every_imported_library_is_declared():
    undeclared = {module: providers for module, providers in distributions_of(imported_modules()).items()
                  if not providers & declared()}
    assert undeclared == {}, "imported by our packages but not declared in pyproject.toml dependencies"
