"""The sample logs in sample_logs/ as acceptance cases of the offline validator.

Every `invalid/<case>.xlsx` must give exactly the [code, cell] pairs of `<case>.expected.json`
(a cell on another sheet written `Metrics!B2`); every `valid/<case>.xlsx` no error, and no
finding at all unless a `<case>.expected.json` lists the warnings it may give.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import aisdp_log

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = ROOT / "sample_logs"
VALID = sorted((SAMPLE_LOGS / "valid").glob("*.xlsx"))
INVALID = sorted((SAMPLE_LOGS / "invalid").glob("*.xlsx"))


def pairs(report) -> list[list[str]]:
    return sorted([f.code, f.cell if f.sheet == "Experiments" else f"{f.sheet}!{f.cell}"]
                  for f in report.findings)


def expected(path: Path) -> list[list[str]]:
    side = path.with_suffix(".expected.json")
    return sorted(json.loads(side.read_text())) if side.exists() else []


def test_there_are_cases_for_every_schema_and_review_code():
    codes = {path.name.split("-")[0] for path in INVALID}
    wanted = {f"S{n:03}" for n in range(1, 12)} | {f"R{n:03}" for n in range(1, 6)}
    assert wanted <= codes
    assert len(VALID) >= 2
    for path in INVALID:
        assert path.with_suffix(".expected.json").exists(), path.name


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_log_gives_exactly_the_expected_findings(path):
    report = aisdp_log.validate(path, offline=True)
    want = expected(path)
    assert pairs(report) == want
    # the case is named after the code it demonstrates, and that code is among the findings
    assert path.name.split("-")[0] in {code for code, _ in want}


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_log_gives_no_error(path):
    report = aisdp_log.validate(path, offline=True)
    assert report.errors == 0, report.codes()
    assert pairs(report) == expected(path)
    assert report.rows == 3


def test_sample_logs_are_what_the_generator_writes(tmp_path):
    """The committed files are up to date with tools/make_sample_logs.py, byte for byte."""
    spec = importlib.util.spec_from_file_location("make_sample_logs",
                                                  ROOT / "tools" / "make_sample_logs.py")
    generator = importlib.util.module_from_spec(spec)
    sys.modules["make_sample_logs"] = generator  # dataclasses look their module up
    try:
        spec.loader.exec_module(generator)
        assert generator.main(["--out", str(tmp_path)]) == 0
        assert generator.main(["--check", "--out", str(SAMPLE_LOGS)]) == 0
    finally:
        del sys.modules["make_sample_logs"]
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) > 2 * len(VALID)
    for relative in written:
        assert (tmp_path / relative).read_bytes() == (SAMPLE_LOGS / relative).read_bytes(), \
            f"{relative} is stale: run python tools/make_sample_logs.py"
