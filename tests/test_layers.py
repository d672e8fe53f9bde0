"""Layers point one way: unlearn_metrics (pure numbers) <- unlearn_tasks (tasks/) <- harness_ext.

Every import statement under unlearn_metrics/ and tasks/ (module level or inside a function), every
``importlib.import_module``/``__import__`` of a literal name, and every ``!function`` target in the task
YAMLs is checked against what its layer may not import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {  # package -> (its folder, the top-level packages it may not import)
    "unlearn_metrics": (ROOT / "unlearn_metrics", ("torch", "transformers", "lm_eval", "unlearn_tasks", "harness_ext")),
    "unlearn_tasks": (ROOT / "tasks", ("harness_ext",)),
}
FUNCTION_TAG = re.compile(r"!function\s+([\w.]+)")
DYNAMIC_IMPORTS = ("import_module", "__import__")


def imported_modules(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every absolute import in ``source``, at any depth, and literal dynamic imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and _called_name(node.func) in DYNAMIC_IMPORTS and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return sorted(found)


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def function_targets(yaml_text: str) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every ``!function`` tag in a task YAML."""
    return [(number, match.group(1)) for number, line in enumerate(yaml_text.splitlines(), start=1)
            for match in FUNCTION_TAG.finditer(line)]


def upward(names: list[tuple[int, str]], forbidden: tuple[str, ...], where: str) -> list[str]:
    """``where:line: name`` for each name whose top-level package is forbidden."""
    return [f"{where}:{line}: {name}" for line, name in names if name.split(".")[0] in forbidden]


def python_violations(folder: Path, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """Every forbidden import in the Python files under ``folder``, named relative to ``root``."""
    violations = []
    for path in sorted(folder.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        violations += upward(imported_modules(source), forbidden, str(path.relative_to(root)))
    return violations


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_lower_layers_import_nothing_above_them(package):
    folder, forbidden = LAYERS[package]
    assert len(list(folder.rglob("*.py"))) > 5
    assert python_violations(folder, forbidden) == []


def test_task_yamls_name_no_function_above_the_tasks_layer():
    folder, forbidden = LAYERS["unlearn_tasks"]
    files = sorted([*folder.rglob("*.yaml"), *folder.rglob("*_yaml")])
    targets = {path: function_targets(path.read_text(encoding="utf-8")) for path in files}
    assert sum(map(len, targets.values())) > 20  # the checker does see the tags
    violations = [hit for path, names in targets.items()
                  for hit in upward(names, forbidden, str(path.relative_to(ROOT)))]
    assert violations == []


def test_the_checker_finds_every_kind_of_upward_import():
    source = (
        "import numpy\n"
        "import torch.nn as nn\n"
        "from harness_ext.data import load_tofu\n"
        "from . import sibling\n"
        "def late():\n"
        "    from transformers import AutoTokenizer\n"
        "    import lm_eval, scipy\n"
        "    return importlib.import_module('unlearn_tasks.tofu'), __import__('harness_ext')\n"
    )
    forbidden = LAYERS["unlearn_metrics"][1]
    assert upward(imported_modules(source), forbidden, "m.py") == [
        "m.py:2: torch.nn", "m.py:3: harness_ext.data", "m.py:6: transformers", "m.py:7: lm_eval",
        "m.py:8: harness_ext", "m.py:8: unlearn_tasks.tofu",
    ]
    tasks_layer = ("harness_ext",)
    assert upward(imported_modules(source), tasks_layer, "t.py") == ["t.py:3: harness_ext.data", "t.py:8: harness_ext"]
    assert upward(imported_modules("import torchvision\nimport harness_extras\n"), forbidden, "m.py") == []


def test_the_checker_reads_function_tags_in_yaml():
    text = "class: !function unlearn_tasks.mia.task.MembershipTask\ncustom_dataset: !function harness_ext.docs.make\n"
    assert upward(function_targets(text), ("harness_ext",), "x.yaml") == ["x.yaml:2: harness_ext.docs.make"]


def test_a_real_upward_import_fails_the_layer_check(tmp_path):
    (tmp_path / "loader.py").write_text("def load():\n    from harness_ext.io import atomic_write_text\n")
    assert python_violations(tmp_path, LAYERS["unlearn_tasks"][1], root=tmp_path) == ["loader.py:2: harness_ext.io"]
