"""The package's shape, kept by tests: rooms import only downwards, no import cycle, our own
imports at the top of each module, no module over 500 lines, git run from one module.

docs/architecture.md explains the rooms; this file is the rule book it describes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "aisdp_log"

#: Rooms from the bottom up. A module may import its own room and any room of a lower layer,
#: never a room of its own layer or above. The first layer is the shared vocabulary.
LAYERS = [
    ("errors", "spec", "findings", "config"),
    ("system", "domain"),
    ("repo",),
    ("artefacts", "workbook"),
    ("signing",),
    ("lint", "record"),
    ("rerun",),
    ("review",),
    ("export", "demo"),
    ("cli",),
]
#: The package's doors: `import aisdp_log`, `python -m aisdp_log`, and the name training
#: scripts at old commits import. They reach into rooms lazily or re-export one room.
FACADES = {"aisdp_log", "aisdp_log.__main__", "aisdp_log.training"}
MAX_LINES = 500
#: Modules allowed an import of our own inside a function, each with the benchmark reason
#: (docs/architecture.md, "Speed"). cli/ is exempt as a whole: it loads one command.
LAZY_OWN_IMPORTS = {
    "aisdp_log.lint.context": "the git wrapper and the digest cache load when an online family "
                              "first asks for them, so `validate --offline` imports neither "
                              "(bench_validate.py)",
    "aisdp_log.repo.roots": "a repository in a common layout is found by reading `.git`; only "
                            "another layout loads the git wrapper and `subprocess` to ask git "
                            "(bench_validate.py)",
    "aisdp_log.lint.runner": "a validation replayed from the results store (lint/results.py) "
                             "loads neither the workbook reader nor the checks "
                             "(bench_crosscheck_scale.py)",
    "aisdp_log.lint.summary": "a replayed report's coverage names its cells ready-made; only a "
                              "fresh one loads the column letters",
    "aisdp_log.lint.results": "the atomic writer and the tool folder load only to store a run",
    "aisdp_log.lint.checks.signoff": "the signature checks (ssh-keygen, git config, and the "
                                     "subprocess module) load only for a log with sign-offs "
                                     "(bench_validate.py)",
}
LAYER_OF = {room: number for number, rooms in enumerate(LAYERS) for room in rooms}
LAYER_OF[""] = 0  # the package itself (`__version__`), whose __init__ imports nothing eagerly


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _room(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _own_imports(node: ast.AST, module: str) -> list[tuple[str, int]]:
    """(imported module of ours, line) for one import statement."""
    found = []
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
            node.module.split(".")[0] == "aisdp_log":
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            found.append((full if full in MODULES else node.module, node.lineno))
    elif isinstance(node, ast.Import):
        found += [(alias.name, node.lineno) for alias in node.names
                  if alias.name.split(".")[0] == "aisdp_log"]
    return [(name, line) for name, line in found if name != module]


def _imports(module: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(imports at module level, imports inside functions or classes) of one module;
    imports under `if TYPE_CHECKING:` are for the type checker only and count as neither."""
    tree = ast.parse(MODULES[module].read_text("utf-8"))
    top: list[tuple[str, int]] = []
    inner: list[tuple[str, int]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        if _is_type_checking(node):
            return
        (inner if nested else top).extend(_own_imports(node, module))
        nested = nested or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                             ast.ClassDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, nested)

    visit(tree, False)
    return top, inner


def _relative_imports(module: str) -> list[int]:
    tree = ast.parse(MODULES[module].read_text("utf-8"))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level]


def test_every_module_belongs_to_a_known_room():
    unknown = {module for module in MODULES
               if module not in FACADES and _room(module) not in LAYER_OF}
    assert not unknown, "add the room to LAYERS (and docs/architecture.md)"


@pytest.mark.parametrize("module", sorted(set(MODULES) - FACADES))
def test_rooms_import_only_downwards(module):
    layer, room = LAYER_OF[_room(module)], _room(module)
    wrong = [f"line {line}: {target}" for target, line in _imports(module)[0]
             if _room(target) != room and LAYER_OF[_room(target)] >= layer
             and not (layer == 0 and LAYER_OF[_room(target)] == 0)]
    assert not wrong, f"{module} imports a room at its own layer or above"


@pytest.mark.parametrize("module", sorted(m for m in set(MODULES) - FACADES - set(LAZY_OWN_IMPORTS)
                                          if _room(m) != "cli"))
def test_our_own_imports_are_at_the_top(module):
    # lazy imports are for heavy third-party libraries (and cli/, which loads one command)
    inner = [f"line {line}: {target}" for target, line in _imports(module)[1]]
    assert not inner, f"{module} imports our modules inside functions"


def test_imports_are_absolute():
    relative = {module: lines for module in MODULES if (lines := _relative_imports(module))}
    assert not relative


def test_there_is_no_import_cycle():
    graph = {module: {target for target, _ in _imports(module)[0] if target in MODULES}
             for module in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := walk(target)):
                return cycle
        state[module] = 2
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = walk(module)
            assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_500_lines(module):
    lines = len(MODULES[module].read_text("utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it by what its parts do"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_says_what_it_is_for(module):
    docstring = ast.get_docstring(ast.parse(MODULES[module].read_text("utf-8")))
    assert docstring and docstring.strip(), f"{module} has no module docstring"


def test_git_runs_from_one_module():
    # every `git` process starts in repo/git.py, with one environment (C locale, no prompt)
    starters = []
    for module, path in MODULES.items():
        if module == "aisdp_log.repo.git":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            command = node.args[0] if isinstance(node, ast.Call) and node.args else None
            if isinstance(command, (ast.List, ast.Tuple)) and command.elts and \
                    isinstance(command.elts[0], ast.Constant) and command.elts[0].value == "git":
                starters.append(f"{module}:{node.lineno}")
    assert not starters


def test_the_workbook_room_imports_nothing_for_the_type_checker_only():
    """Its modules import each other one way: no cycle hidden under `if TYPE_CHECKING:`."""
    hidden = [module for module in MODULES if _room(module) == "workbook"
              and "TYPE_CHECKING" in MODULES[module].read_text("utf-8")]
    assert not hidden


#: Distributions whose import name differs from their name.
IMPORT_NAMES = {"python-calamine": "python_calamine", "pyyaml": "yaml"}


def test_every_declared_dependency_is_imported_by_the_package():
    import re

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text("utf-8"))
    declared = [re.split(r"[<>=!~; \[]", d, maxsplit=1)[0].lower()
                for d in pyproject["project"]["dependencies"]]
    imported = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    unused = [d for d in declared if IMPORT_NAMES.get(d, d.replace("-", "_")) not in imported]
    assert not unused, f"declared but never imported (move them to an extra): {unused}"
