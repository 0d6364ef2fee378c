"""The check runner and its registry: families run beside each other give the report they give
one by one, an error in a family run in the background still stops validation, the context
closes what the families opened, and every finding code has one declared emitter."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from builders import commit, init_repo, row, write_log

import aisdp_log.lint.registry as registry
import aisdp_log.lint.runner as runner
from aisdp_log.config import load_config
from aisdp_log.errors import RepositoryError
from aisdp_log.findings import CATALOGUE
from aisdp_log.lint.checks import review
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


# --------------------------------------------------------------------------- the registry

def test_every_catalogue_code_is_declared_by_exactly_one_emitter():
    owners: dict[str, list[str]] = {}
    for emitter, declared in registry.declared_codes().items():
        for code in declared:
            owners.setdefault(code, []).append(emitter)
    assert {code: found for code, found in owners.items() if len(found) != 1} == {}
    assert set(owners) == set(CATALOGUE)
    # a code a family also emits (git's S003) is owned by another family
    shared = {code for family in registry.FAMILIES
              for code in family.emits - set(family.codes)}
    assert shared == {"S003"} and shared <= set(owners)


def test_the_families_run_in_their_order_and_offline_skips_the_repository_ones():
    assert [f.name for f in registry.families(offline=False)] == [
        "schema", "images", "git", "dvc", "params", "artefacts", "review", "signoff",
        "template"]
    assert [f.name for f in registry.families(offline=True)] == [
        "schema", "images", "review", "signoff", "template"]
    assert set(runner.BACKGROUND_FAMILIES) <= set(registry.ONLINE_FAMILIES)


def test_a_finding_with_a_code_its_family_does_not_declare_is_an_internal_error(
        tmp_path, monkeypatch):
    write_log(tmp_path / "log.xlsx", [row(outcome=None)])  # an R001 from the review family
    config = load_config(tmp_path)
    log = load_log(tmp_path / "log.xlsx", config)
    real = review.run

    def mislabelled(log, ctx):
        for finding in real(log, ctx):
            yield dataclasses.replace(finding, code="G001")

    monkeypatch.setattr(review, "run", mislabelled)
    ctx = Context(config=config, repo=tmp_path, offline=True)
    try:
        with pytest.raises(registry.UndeclaredCode, match="review emitted G001"):
            run_checks(log, ctx)
    finally:
        ctx.close()
        log.workbook.close()


def test_an_offline_validation_opens_no_git_and_no_hash_cache(tmp_path):
    write_log(tmp_path / "log.xlsx", [row()])
    config = load_config(tmp_path)
    log = load_log(tmp_path / "log.xlsx", config)
    ctx = Context(config=config, repo=tmp_path, offline=True)
    try:
        run_checks(log, ctx)
        assert ctx.opened_git is None and ctx._hash_cache is None
        assert ctx.row_commits is None and ctx.coverage_summary is not None
    finally:
        ctx.close()
        log.workbook.close()
