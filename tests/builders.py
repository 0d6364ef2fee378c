"""Builders for real workbooks and real git repositories, so tests state only what matters."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import xlsxwriter
from click.testing import CliRunner

from aisdp_log.cli import cli

SHA = "sha256:" + "a" * 64

#: A clean row; tests override what matters to them.
BASE_ROW = {
    "Experiment ID": "EXP-001",
    "Date": "2026-07-14",
    "Hypothesis": "Adam beats SGD",
    "params.learning_rate": 0.001,
    "Data version": "3f2a9c1e",
    "Code commit": "9c1e4b7",
    "Random seed": 42,
    "Training duration": 12.5,
    "metrics.accuracy": 0.91,
    "Artefact hash": SHA,
    "Environment": "torch 2.13.0+cpu",
    "Outcome": "baseline",
    "Notes": "the reference",
}
METRICS = [{"Metric": "accuracy", "Goal": "max", "Threshold": 0.85,
            "Description": "holdout accuracy"}]


def finding_pairs(found, codes: str | tuple[str, ...] = "") -> list[tuple[str, str]]:
    """(code, cell) of each finding in `found` (a Report, Findings, or such pairs already),
    keeping only codes that start with `codes` when given: one prefix (`"A"`, `"R006"`) or
    several (`("G", "D")`)."""
    if hasattr(found, "findings"):
        found = found.findings
    pairs = [item if isinstance(item, tuple) else (item.code, item.cell) for item in found]
    prefixes = (codes,) if isinstance(codes, str) and codes else tuple(codes)
    return [pair for pair in pairs if not prefixes or pair[0].startswith(prefixes)]


def assert_findings(found, expected, codes: str | tuple[str, ...] = "") -> None:
    """Assert what was found by (code, cell) pairs, never by message text.

    `expected` as a set: exactly these pairs, each at least once. As a list: exactly these
    pairs as many times as listed, in any order (what a sorted comparison asserted)."""
    pairs = finding_pairs(found, codes)
    if isinstance(expected, (set, frozenset)):
        assert set(pairs) == set(expected), \
            f"found {sorted(set(pairs))}, expected {sorted(expected)}"
    else:
        assert Counter(pairs) == Counter(expected), \
            f"found {sorted(pairs)}, expected {sorted(expected)}"


def row(**changes) -> dict:
    """BASE_ROW with keys given as python names (`experiment_id=`) or headers (`**{...}`)."""
    result = dict(BASE_ROW)
    for key, value in changes.items():
        header = {
            "experiment_id": "Experiment ID", "date": "Date", "hypothesis": "Hypothesis",
            "data_version": "Data version", "code_commit": "Code commit",
            "random_seed": "Random seed", "training_duration": "Training duration",
            "artefact_hash": "Artefact hash", "environment": "Environment",
            "outcome": "Outcome", "notes": "Notes", "rerun": "Rerun",
            "reproducibility": "Reproducibility", "other_params": "Other params",
        }.get(key, key)
        result[header] = value
    return result


def write_log(path: Path, rows: list[dict], *, headers: list[str] | None = None,
              metrics: list[dict] | None = None, extra_sheets: dict | None = None) -> Path:
    """A workbook as a person would write it: header row, then one row per dict. Dates given
    as datetime.date become real Excel dates; `None` leaves a cell empty."""
    headers = headers or list(dict.fromkeys(h for r in rows for h in r)) or list(BASE_ROW)
    workbook = xlsxwriter.Workbook(str(path))
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet = workbook.add_worksheet("Experiments")
    sheet.write_row(0, 0, headers)
    for r, values in enumerate(rows, start=1):
        for c, header in enumerate(headers):
            value = values.get(header)
            if value is None:
                continue
            if isinstance(value, (dt.date, dt.datetime)):
                sheet.write_datetime(r, c, value, date_format)
            elif isinstance(value, str):
                sheet.write_string(r, c, value)
            else:
                sheet.write(r, c, value)
    if metrics is None:
        metrics = METRICS
    if metrics is not False:
        sheet = workbook.add_worksheet("Metrics")
        # `Tolerance` (template version 3) only where a metric gives one: older logs lack it
        columns = ["Metric", "Goal", "Threshold", "Description"] + (
            ["Tolerance"] if any("Tolerance" in m for m in metrics) else [])
        sheet.write_row(0, 0, columns)
        for r, metric in enumerate(metrics, start=1):
            sheet.write_row(r, 0, [metric.get(h) for h in columns])
    for name, grid in (extra_sheets or {}).items():
        sheet = workbook.add_worksheet(name)
        for r, values in enumerate(grid):
            sheet.write_row(r, 0, values)
    workbook.close()
    return path


def git(repo: Path, *args: str, date: str | None = None, check: bool = True) -> str:
    """Run git in `repo` with a fixed identity; `date` sets author and committer dates."""
    env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com",
               GIT_CONFIG_NOSYSTEM="1")
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    result = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True,
                            check=check)
    return result.stdout.strip()


def init_repo(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    return repo


def commit(repo: Path, files: dict[str, str | bytes] | None = None, *,
           message: str = "change", date: str = "2026-07-01T12:00:00+00:00") -> str:
    """Write `files`, commit them all at `date`, return the full SHA."""
    for name, content in (files or {}).items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message, date=date)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class CliResult:
    """What a finished `aisdp-log` command left: the names of `subprocess.CompletedProcess`."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> CliResult:
    """`aisdp-log ARGS` in this process through click's CliRunner, as the installed command
    runs it (the root group applies the one-line error contract): in `cwd`, with `env` over
    this environment. An exception that escapes the contract fails the test. Tests where a
    real process matters (a terminal, signals, what a process imports, two writers at once)
    start `python -m aisdp_log` themselves."""
    # `env` replaces the environment, as subprocess's does: names it lacks are unset
    environment = {} if env is None else {name: env.get(name)
                                          for name in set(os.environ) | set(env)}
    environment["NO_COLOR"] = environment.get("NO_COLOR") or "1"
    environment.setdefault("AISDP_LOG_DEBUG", None)
    previous = Path.cwd()
    os.chdir(cwd or previous)
    try:
        result = CliRunner().invoke(cli, list(args), env=environment)
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


#: LibreOffice, the spreadsheet client the tests can run here; tests that need it are marked.
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
try:  # the benchmarks use these builders with the runtime dependencies alone, without pytest
    import pytest
except ImportError:
    needs_soffice = None
else:
    needs_soffice = pytest.mark.skipif(
        SOFFICE is None, reason="LibreOffice (soffice) is not installed: apt-get install "
                                "libreoffice-calc")


def libreoffice_convert(source: Path, target_format: str, outdir: Path,
                        profile: Path | None = None) -> Path:
    """`source` converted by a headless LibreOffice (`xlsx`, `xlsx:Calc MS Excel 2007 XML`,
    `pdf`, ...) into `outdir`; returns the file written. Each call site gives its own profile
    folder (default: beside `outdir`), since two instances sharing one block each other."""
    outdir.mkdir(parents=True, exist_ok=True)
    profile = profile if profile is not None else outdir.parent / f"lo-profile-{outdir.name}"
    result = subprocess.run(
        [SOFFICE or "soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless",
         "--norestore", "--convert-to", target_format, "--outdir", str(outdir), str(source)],
        capture_output=True, text=True, timeout=180, check=False)
    converted = outdir / f"{source.stem}.{target_format.split(':')[0]}"
    assert result.returncode == 0 and converted.exists(), result.stdout + result.stderr
    return converted
