"""The `aisdp-log` command line: formats, exit codes and one-line errors in this process
(click's CliRunner); colour, the encoding of a real stdout and imports in a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from builders import BASE_ROW, row, run_cli, write_log

from aisdp_log.findings import CATALOGUE

HEAVY = ("pandas", "pandera", "openpyxl", "dvc", "torch", "scipy", "matplotlib", "git",
         "xlsxwriter", "numpy")


def run(*args: str, cwd: Path, env: dict | None = None):
    """The command in this process (builders.run_cli), with `env` added to ours."""
    return run_cli(*args, cwd=cwd, env=None if env is None else {**os.environ, **env})


def run_process(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m aisdp_log`, a real process: where the terminal, stdout's encoding or the
    modules a process imports matter."""
    environment = dict(os.environ, NO_COLOR="1")
    environment.pop("AISDP_LOG_DEBUG", None)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "aisdp_log", *args], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=60)


@pytest.fixture
def logs(tmp_path) -> dict[str, Path]:
    """A clean log, one with warnings only and one with errors and warnings."""
    headers = list(BASE_ROW) + ["Reproducibility"]
    clean = write_log(tmp_path / "clean.xlsx", [row()], headers=headers)
    warnings = write_log(tmp_path / "warnings.xlsx", [row(), row(experiment_id="EXP-002",
                                                                 outcome=None)],
                         headers=headers)
    errors = write_log(tmp_path / "errors.xlsx", [
        row(),
        row(experiment_id="EXP-002", outcome="selected", code_commit="xyz", date="2026-04-01",
            random_seed=-1, reproducibility="bitwise"),  # in 2026-Q2, which has no baseline
        row(experiment_id="EXP-003", outcome=None),
    ], headers=headers)
    return {"clean": clean, "warnings": warnings, "errors": errors}


# --------------------------------------------------------------------------- exit codes

@pytest.mark.parametrize("name, strict, code", [
    ("clean", False, 0), ("clean", True, 0), ("warnings", False, 0), ("warnings", True, 1),
    ("errors", False, 1), ("errors", True, 1)])
def test_exit_codes(logs, tmp_path, name, strict, code):
    args = ["validate", str(logs[name]), "--offline"] + (["--strict"] if strict else [])
    result = run(*args, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert result.stderr == ""


def test_nothing_checked_is_exit_2_with_one_line(tmp_path):
    result = run("validate", str(tmp_path / "absent.xlsx"), "--offline", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert "absent.xlsx" in result.stderr


@pytest.mark.parametrize("args", [["validate"], ["validate", "x.xlsx", "--format", "xml"],
                                  ["validate", "x.xlsx", "--no-such-option"], ["no-such-command"]])
def test_bad_arguments_are_exit_2_without_traceback(tmp_path, args):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip()


@pytest.mark.parametrize("raised, code, last_line", [
    (RuntimeError("boom\n  at the cell"), 2, "aisdp-log: internal error: RuntimeError: boom at "
     "the cell (set AISDP_LOG_DEBUG=1 for the traceback and please report it)"),
    (OSError(28, "No space left on device"), 2, "aisdp-log: error: No space left on device"),
    (KeyboardInterrupt(), 130, "aisdp-log: aborted"),
    (BrokenPipeError(), 1, None)])
def test_whatever_stops_a_command_is_one_line_and_an_exit_code(tmp_path, monkeypatch, raised,
                                                               code, last_line):
    def fail(output_format):
        raise raised

    monkeypatch.setattr("aisdp_log.lint.catalogue.render_codes", fail)
    result = run("codes", cwd=tmp_path)
    assert result.returncode == code
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1:] == ([last_line] if last_line else [])


def test_the_entry_point_is_cli_main(tmp_path):
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text("utf-8"))["project"]["scripts"]
    assert scripts == {"aisdp-log": "aisdp_log.cli:main"}
    # what the installed `aisdp-log` script does: import the entry point, call it
    script = "import sys\nfrom aisdp_log.cli import main\nsys.exit(main())\n"
    result = subprocess.run([sys.executable, "-c", script, "--version"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("aisdp-log, version ")


# --------------------------------------------------------------------------- formats

def test_text_format_groups_findings_by_row(logs, tmp_path):
    result = run("validate", str(logs["errors"]), "--offline", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0] == "Experiments row 3 (EXP-002)"
    finding = re.compile(r"^  Experiments!([A-Z]+\d+) +([SR]\d{3})  (error|warning) +\S")
    parsed = [finding.match(line).groups() for line in lines[1:4]]
    assert parsed == [("F3", "S003", "error"), ("G3", "S007", "error"),
                      ("L3", "R004", "warning")]
    assert lines[4] == "Experiments row 4 (EXP-003)"
    assert finding.match(lines[5]).groups() == ("L4", "R001", "warning")
    assert lines[6] == ""
    assert lines[7] == "config: defaults"
    assert re.fullmatch(r".*errors\.xlsx: 2 errors, 2 warnings in 3 rows", lines[8])
    # offline, nothing is compared with a witness: the F3 and G3 errors count as checked
    assert re.fullmatch(r"2 of \d+ evidence cells verified \(--offline: .*\)", lines[9])
    assert len(lines) == 10
    assert "\033[" not in result.stdout


def test_text_format_shows_control_characters_in_cells_escaped(tmp_path):
    # cell text must not drive the reader's terminal (retitle it, recolour it, break lines)
    log = write_log(tmp_path / "log.xlsx", [row(experiment_id="EXP\x1b]0;owned\x07-1",
                                                outcome=None)])
    result = run("validate", str(log), "--offline", cwd=tmp_path)
    assert result.returncode == 1
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert result.stdout.splitlines()[0] == "Experiments row 2 (EXP\\x1b]0;owned\\x07-1)"


def test_text_format_of_a_clean_log_is_the_config_the_summary_then_the_coverage(logs, tmp_path):
    result = run("validate", str(logs["clean"]), "--offline", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "config: defaults", f"{logs['clean']}: 0 errors, 0 warnings in 1 row - ok",
        "0 of 6 evidence cells verified (--offline: nothing was compared with git, DVC or the "
        "artefact folders)"]


def test_json_format_is_spec_shape(logs, tmp_path):
    result = run("validate", str(logs["errors"]), "--offline", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert list(document) == ["log", "rows", "summary", "findings", "config"]
    assert document["config"] is None
    assert document["log"] == str(logs["errors"])
    assert document["rows"] == 3
    coverage = document["summary"].pop("coverage")
    assert document["summary"] == {"errors": 2, "warnings": 2}
    # offline, only the S003 and S007 cells count as checked (and found wrong)
    assert coverage["verified"] == 2
    assert coverage["unverified"] == len(coverage["unverified_cells"]) > 0
    first = document["findings"][0]
    assert list(first) == ["code", "severity", "sheet", "cell", "row", "column",
                           "experiment_id", "message"]
    assert {k: first[k] for k in list(first)[:7]} == {
        "code": "S003", "severity": "error", "sheet": "Experiments", "cell": "F3", "row": 3,
        "column": "Code commit", "experiment_id": "EXP-002"}
    assert isinstance(first["message"], str) and first["message"]
    assert [(f["code"], f["cell"]) for f in document["findings"]] == [
        ("S003", "F3"), ("S007", "G3"), ("R004", "L3"), ("R001", "L4")]


def test_json_experiment_id_is_null_where_the_row_has_none(tmp_path):
    path = write_log(tmp_path / "noid.xlsx", [row(experiment_id=None)])
    result = run("validate", str(path), "--offline", "--format", "json", cwd=tmp_path)
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["code"], finding["cell"], finding["experiment_id"]) == ("S002", "A2", None)
    missing = write_log(tmp_path / "nocol.xlsx", [row()],
                        headers=[h for h in BASE_ROW if h != "Environment"])
    result = run("validate", str(missing), "--offline", "--format", "json", cwd=tmp_path)
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["code"], finding["cell"], finding["row"], finding["experiment_id"]) == \
        ("S001", "M1", 1, None)


def test_github_format_is_workflow_annotations(logs, tmp_path):
    result = run("validate", str(logs["errors"]), "--offline", "--format", "github",
                 cwd=tmp_path)
    lines = result.stdout.splitlines()
    annotation = re.compile(r"^::(error|warning) file=([^,]+),title=(\w\d{3}) "
                            r"Experiments!([A-Z]+\d+)::(.+)$")
    parsed = [annotation.match(line).groups() for line in lines[:-2]]
    assert [(level, code, cell) for level, _, code, cell, _ in parsed] == [
        ("error", "S003", "F3"), ("error", "S007", "G3"), ("warning", "R004", "L3"),
        ("warning", "R001", "L4")]
    assert all(file == str(logs["errors"]) for _, file, _, _, _ in parsed)
    # the summary, then the coverage line, as the text format ends
    assert not lines[-2].startswith("::") and "error" in lines[-2]
    assert re.fullmatch(r"\d+ of \d+ evidence cells verified( \(--offline: .*\))?", lines[-1])


def test_github_format_escapes_what_would_break_an_annotation(tmp_path):
    path = write_log(tmp_path / "a,b:c.xlsx", [row(code_commit="bad\nline%")])
    result = run("validate", str(path), "--offline", "--format", "github", cwd=tmp_path)
    first = result.stdout.splitlines()[0]
    assert first.startswith("::error file=") and "a%2Cb%3Ac.xlsx" in first
    assert len(result.stdout.splitlines()) == 3  # the annotation, summary, coverage


# --------------------------------------------------------------------------- colour

def run_on_terminal(args: list[str], cwd: Path, env: dict) -> str:
    """Run with stdout on a pseudo-terminal, as a person at a shell would."""
    pty = pytest.importorskip("pty")
    primary, secondary = pty.openpty()
    environment = dict(os.environ)
    environment.pop("NO_COLOR", None)
    environment.update(env)
    process = subprocess.Popen([sys.executable, "-m", "aisdp_log", *args], cwd=cwd,
                               env=environment, stdout=secondary, stderr=subprocess.PIPE)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process has exited
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(logs, tmp_path):
    args = ["validate", str(logs["errors"]), "--offline"]
    assert "\033[31m" in run_on_terminal(args, tmp_path, {})
    assert "\033[" not in run_on_terminal(args, tmp_path, {"NO_COLOR": "1"})
    piped = run_process(*args, cwd=tmp_path, env={"NO_COLOR": ""})
    assert "\033[" not in piped.stdout
    json_on_terminal = run_on_terminal(args + ["--format", "json"], tmp_path, {})
    assert "\033[" not in json_on_terminal


# --------------------------------------------------------------------------- other commands

def test_codes_lists_every_code(tmp_path):
    result = run("codes", cwd=tmp_path)
    assert result.returncode == 0
    listed = re.findall(r"^([A-Z]\d{3})  (error|warning)", result.stdout, re.M)
    assert [code for code, _ in listed] == list(CATALOGUE)
    assert all(CATALOGUE[code].severity.value == severity for code, severity in listed)


def test_codes_markdown_is_the_readme_table(tmp_path):
    result = run("codes", "--format", "markdown", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[:2] == ["| code | severity | meaning (cell) |", "|---|---|---|"]
    rows = [re.match(r"^\| (\w\d{3}) \| (error|warning) \| .+ \(.+\) \|$", line).groups()
            for line in lines[2:]]
    assert [(code, CATALOGUE[code].severity.value) for code in CATALOGUE] == rows


def test_codes_json(tmp_path):
    result = run("codes", "--format", "json", cwd=tmp_path)
    assert [entry["code"] for entry in json.loads(result.stdout)] == list(CATALOGUE)


def test_python_dash_m_help(tmp_path):
    result = run_process("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("template", "validate", "codes"):
        assert re.search(rf"^\s+{command}\b", result.stdout, re.M)
    assert run_process("validate", "--help", cwd=tmp_path).returncode == 0


# --------------------------------------------------------------------------- imports

def test_offline_validate_imports_no_heavy_library(logs, tmp_path):
    script = (
        "import sys\n"
        "from aisdp_log.cli import main\n"
        "try:\n"
        f"    main(['validate', {str(logs['errors'])!r}, '--offline', '--format', 'json'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print('RESULT', code, ','.join(heavy), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1].split() == ["RESULT", "1"], result.stderr
    assert json.loads(result.stdout)["summary"]["errors"] == 2


def test_import_aisdp_log_imports_no_click():
    script = ("import sys, aisdp_log\n"
              "aisdp_log.Report, aisdp_log.Finding, aisdp_log.CATALOGUE\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              f"{('click',) + HEAVY!r}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.mark.parametrize("output_format", ["text", "json", "github"])
def test_a_stdout_that_cannot_encode_the_cells_still_gets_the_report(tmp_path, output_format):
    path = write_log(tmp_path / "emoji.xlsx", [row(experiment_id="EXP 🚀")])
    result = run_process("validate", str(path), "--offline", "--format", output_format,
                         cwd=tmp_path, env={"PYTHONIOENCODING": "latin-1"})
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    if output_format == "json":
        (finding,) = json.loads(result.stdout)["findings"]
        assert (finding["code"], finding["experiment_id"]) == ("S005", "EXP 🚀")
