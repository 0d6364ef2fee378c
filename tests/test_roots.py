"""Where things are (aisdp_log.repo.roots): the repository root and the aisdp.toml it reads."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from builders import init_repo, row, write_log
from click.testing import CliRunner
from test_checks_artefacts import HEADERS, clean_row, make_folder

from aisdp_log.cli.main import cli
from aisdp_log.lint.frame import read_log
from aisdp_log.lint.runner import validate
from aisdp_log.repo.roots import find_config, find_repo_root, resolve_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "project")


def a_codes(report) -> list[tuple[str, str]]:
    return sorted((f.code, f.cell) for f in report.findings if f.code.startswith("A"))


def test_repo_option_naming_a_folder_inside_the_repository_means_its_root(repo):
    (repo / "src" / "model").mkdir(parents=True)
    make_folder(repo, "EXP-001")
    log = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    from_root = validate(log, repo=repo)
    from_inside = validate(log, repo=repo / "src" / "model")
    assert a_codes(from_root) == [] and a_codes(from_inside) == []
    assert from_inside.codes() == from_root.codes()
    assert resolve_repo(log, repo / "src", offline=False) == repo.resolve()
    assert find_repo_root(repo / "src" / "model") == repo.resolve()


def test_a_worktree_and_git_dir_layouts_are_found_by_the_one_finder(repo, tmp_path,
                                                                    monkeypatch):
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"],
                   check=True, capture_output=True)
    tree = tmp_path / "tree"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(tree)], check=True,
                   capture_output=True)
    (tree / "deep").mkdir()
    assert find_repo_root(tree / "deep") == tree.resolve()
    outside = tmp_path / "outside"
    outside.mkdir()
    assert find_repo_root(outside) is None
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(repo))
    assert find_repo_root(repo) == repo.resolve()


def _id_pattern_config(folder: Path, pattern: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "aisdp.toml"
    path.write_text(f'id_pattern = "{pattern}"\n')
    return path


def test_the_aisdp_toml_nearest_the_log_is_used_and_named(repo, monkeypatch):
    monkeypatch.chdir(repo)
    _id_pattern_config(repo, "^EXP-[0-9]{3,}$")
    _id_pattern_config(repo / "team", "^RUN-[0-9]+$")
    (repo / "team" / "logs").mkdir()
    log = write_log(repo / "team" / "logs" / "log.xlsx", [row(experiment_id="RUN-7")])
    # nearest wins: team/aisdp.toml (between the log and the root), not the root's
    report = validate(log, offline=True)
    assert report.codes() == [] and report.config == str(Path("team") / "aisdp.toml")
    assert report.to_dict()["config"] == "team/aisdp.toml"
    assert read_log(log)["Experiment ID"].tolist() == ["RUN-7"]
    # beside the log is nearer still
    _id_pattern_config(repo / "team" / "logs", "^TRIAL-[0-9]+$")
    assert validate(log, offline=True).codes() == [("S005", "A2")]
    assert find_config(log, repo) == (repo / "team" / "logs" / "aisdp.toml").resolve()


def test_validate_output_says_which_config_was_used_or_defaults(repo, monkeypatch):
    monkeypatch.chdir(repo)
    log = write_log(repo / "log.xlsx", [row()])
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", "log.xlsx", "--offline", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["config"] is None
    result = runner.invoke(cli, ["validate", "log.xlsx", "--offline"])
    assert "config: defaults" in result.output.splitlines()

    _id_pattern_config(repo, "^EXP-[0-9]{3,}$")
    result = runner.invoke(cli, ["validate", str(log), "--offline", "--format", "json"])
    assert json.loads(result.output)["config"] == "aisdp.toml"
    result = runner.invoke(cli, ["validate", str(log), "--offline"])
    assert "config: aisdp.toml" in result.output.splitlines()
