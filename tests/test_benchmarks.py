"""The benchmarks cannot rot unnoticed: each has a quick mode that CI runs, and each says
which extra it needs beyond the runtime dependencies (or that it needs none)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_each_benchmark_has_a_quick_mode_and_names_its_extras(path):
    source = path.read_text()
    docstring = " ".join((ast.get_docstring(ast.parse(source)) or "").split())
    assert '"--quick"' in source, f"{path.name}: add a --quick mode (CI runs it)"
    assert "--quick" in docstring
    assert "runtime dependencies alone" in docstring or "extra" in docstring, \
        f"{path.name}: say which extra it needs, or that it runs with the runtime " \
        "dependencies alone"


def test_ci_runs_every_benchmark_in_quick_mode():
    script = (ROOT / ".ci" / "run").read_text()
    assert 'for bench in benchmarks/bench_*.py benchmarks/torture_writes.py' in script
    assert '"$bench" --quick' in script
    names = {p.name for p in BENCHMARKS}
    assert names == {p.name for p in BENCHMARKS if p.name.startswith("bench_")} | \
        {"torture_writes.py"}, "a benchmark the CI loop does not reach"


def test_the_builders_import_without_pytest():
    """The benchmarks share tests/builders.py; with the runtime dependencies alone (no
    pytest) it must still import."""
    code = ("import sys; sys.modules['pytest'] = None; sys.path.insert(0, 'tests');"
            "import builders; print(builders.needs_soffice)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
