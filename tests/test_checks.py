"""The check runner: families run beside each other give the report they give one by one, an
error in a family run in the background still stops validation, and the context closes what
the families opened."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import commit, init_repo, row, write_log

import aisdp_log.lint.runner as runner
from aisdp_log.config import load_config
from aisdp_log.errors import RepositoryError
from aisdp_log.lint.context import Context
from aisdp_log.lint.runner import run_checks
from aisdp_log.workbook.reader import load_log


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository whose log has findings from the schema, git, DVC and artefact families."""
    repo = init_repo(tmp_path / "project")
    sha = commit(repo, {"train.py": "print(1)\n"}, date="2026-07-01T09:00:00+00:00")
    (repo / "artefacts" / "EXP-001").mkdir(parents=True)
    (repo / "artefacts" / "EXP-001" / "model.pt").write_bytes(b"weights")
    (repo / "artefacts" / "EXP-009").mkdir()
    write_log(repo / "log.xlsx", [
        row(code_commit=sha[:9], date="2026-07-02"),                     # A002, D001
        row(experiment_id="EXP-002", code_commit="deadbeef1", random_seed=-1),  # G001, S007
    ])
    return repo


def codes(repo: Path) -> list[tuple[str, str]]:
    config = load_config(repo)
    log = load_log(repo / "log.xlsx", config)
    ctx = Context(config=config, repo=repo)
    try:
        return [(f.code, f.cell) for f in run_checks(log, ctx)]
    finally:
        ctx.close()
        log.workbook.close()


def test_background_families_give_the_report_of_the_families_one_by_one(project,
                                                                         monkeypatch):
    monkeypatch.setattr(runner, "BACKGROUND_MIN_ROWS", 0)  # a thread even for two rows
    together = codes(project)
    monkeypatch.setattr(runner, "BACKGROUND_FAMILIES", ())
    assert codes(project) == together
    found = {code for code, _ in together}
    assert {"S007", "G001", "D001", "A002", "A005"} <= found


def test_an_error_in_a_background_family_stops_the_validation(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "BACKGROUND_MIN_ROWS", 0)
    folder = tmp_path / "not-a-repository"
    (folder / "artefacts").mkdir(parents=True)
    write_log(folder / "log.xlsx", [row()])
    with pytest.raises(RepositoryError):
        codes(folder)


def test_close_ends_the_shared_git_process(project):
    config = load_config(project)
    log = load_log(project / "log.xlsx", config)
    ctx = Context(config=config, repo=project)
    try:
        run_checks(log, ctx)
        process = ctx.git._cat_file
        assert process is not None and process.poll() is None  # a small log: one long-lived
        ctx.close()
        assert ctx.git._cat_file is None and process.poll() is not None
        ctx.close()  # twice is harmless
    finally:
        log.workbook.close()
