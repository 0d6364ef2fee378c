"""Shared fixtures: a freshly generated template, and that template filled in the way a person
fills it (openpyxl writing into the table rows, as Excel would); a log filled from the 0.1.0
template; the demo project and the DVC-get-started-shaped project, each built once."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from builders import SHA

#: A row of the default template (example params and metrics) that validates with no finding.
CLEAN_TEMPLATE_ROW = {
    "Experiment ID": "EXP-001", "Date": dt.datetime(2026, 7, 14),
    "Hypothesis": "Adam converges faster than SGD", "params.learning_rate": 0.001,
    "params.epochs": 20, "params.batch_size": 64, "params.optimizer": "adam",
    "Data version": "3f2a9c1e", "Code commit": "9c1e4b7", "Random seed": 42,
    "Training duration": 12.5, "metrics.accuracy": 0.91, "metrics.f1": 0.88,
    "Artefact hash": SHA, "Environment": "torch 2.13.0+cpu", "Outcome": "baseline",
    "Notes": "the reference run",
}


#: Tests that need what only POSIX systems give, skipped elsewhere with the reason (the hosted
#: Windows runner of .github/workflows/windows-macos.yml runs the rest). Keyed by
#: `module::test name` prefix.
_SYMLINKS = "creates symlinks (Windows: admin rights or Developer Mode)"
_MODES = "asserts POSIX file modes (Windows keeps only a read-only bit)"
POSIX_ONLY = {
    "test_hashing.py::test_symlink": _SYMLINKS,
    "test_hashing.py::test_folders_linking_to_each_other": _SYMLINKS,
    "test_checks_artefacts.py::test_symlink_inside": _SYMLINKS,
    "test_checks_artefacts.py::test_folder_symlink": _SYMLINKS,
    "test_checks_artefacts.py::test_file_symlink": _SYMLINKS,
    "test_checks_artefacts.py::test_record_symlink": _SYMLINKS,
    "test_checks_artefacts.py::test_each_orphan_folder": _SYMLINKS,
    "test_add.py::test_id_escaping_the_artefacts_folder": _SYMLINKS,
    "test_add.py::test_permissions_preserved": _MODES,
    "test_add.py::test_killed_during_save": "sends SIGKILL to a writer",
    "test_writer.py::test_permissions_preserved": _MODES,
    "test_writer.py::test_symlinked_log": _SYMLINKS,
    "test_atomic.py::test_write_replaces_the_content_and_keeps_the_mode": _MODES,
    "test_atomic.py::test_a_new_file_gets_the_mode": _MODES,
    "test_atomic.py::test_an_explicit_mode_wins": _MODES,
    "test_template.py::test_write_is_atomic": _MODES,
    "test_review.py::test_hostile_ids": _SYMLINKS,
    "test_guard.py::test_a_read_only": "drops root's override with setpriv (util-linux)",
    "test_guard.py::test_a_log_owned_by_someone_else": "file owners and setpriv (POSIX)",
    "test_guard.py::test_owner_group_and_mode": _MODES,
    "test_guard.py::test_a_symlinked_log": _SYMLINKS,
    "test_guard.py::test_a_libreoffice_lock_beside_the_symlinks_target": _SYMLINKS,
    "test_guard.py::test_a_hard_linked_log": "hard links and st_nlink as POSIX keeps them",
    "test_guard.py::test_template_force_honours": _SYMLINKS,
    "test_guard.py::test_a_full_disk": "mounts a small tmpfs",
    "test_rerun.py::test_ctrl_c": "sends SIGINT; Windows delivers Ctrl-C to a console",
    "test_workbook.py::test_a_pipe_named_as_the_log": "makes a FIFO (os.mkfifo is POSIX only)",
    "test_export_mlflow.py::test_the_same_export_talks_to_an_mlflow_server":
        "stops the server's process group (os.killpg)",
}


def pytest_collection_modifyitems(config, items):
    """Skip POSIX_ONLY tests on Windows, each with its reason."""
    if os.name != "nt":
        return
    for item in items:
        key = f"{Path(str(item.fspath)).name}::{item.name}"
        reason = next((why for prefix, why in POSIX_ONLY.items() if key.startswith(prefix)),
                      None)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"POSIX only: {reason}"))


@pytest.fixture(scope="session", autouse=True)
def _no_host_git_config(tmp_path_factory):
    """git reads no global or system configuration in the tests: a developer's SSH signing key
    (`gpg.format`, `user.signingkey`) or allowed signers file must not change a result."""
    empty = tmp_path_factory.mktemp("git-config") / "gitconfig"
    empty.write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GIT_CONFIG_GLOBAL", str(empty))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield


def fill_workbook(source: Path, target: Path, rows: list[dict]) -> Path:
    """Copy the workbook `source` to `target` with `rows` typed into the Experiments sheet
    from row 2, each value under the column whose header is its key (dates as real dates)."""
    import openpyxl

    workbook = openpyxl.load_workbook(source)
    sheet = workbook["Experiments"]
    headers = {cell.value: cell.column for cell in sheet[1]}
    for number, values in enumerate(rows, start=2):
        for header, value in values.items():
            cell = sheet.cell(row=number, column=headers[header])
            cell.value = value
            if isinstance(value, (dt.date, dt.datetime)):
                cell.number_format = "yyyy-mm-dd"
    workbook.save(target)
    return target


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    """The default template (no config), freshly written."""
    from aisdp_log.workbook.template import write_template

    return write_template(tmp_path / "experiment-log.xlsx")


@pytest.fixture
def fill_template(tmp_path: Path, template_path: Path):
    """A function rows -> path of a copy of the default template holding those rows."""
    counter = iter(range(1000))

    def fill(rows: list[dict], name: str | None = None) -> Path:
        target = tmp_path / (name or f"filled-{next(counter)}.xlsx")
        return fill_workbook(template_path, target, rows)

    return fill


def template_0_1_0(target: Path) -> Path:
    """The template aisdp-log 0.1.0 wrote (template version 1). A copy of
    `git show 83ddd8a:templates/experiment-log.xlsx` is kept in tests/fixtures: once this
    branch is merged, `main:templates/...` is the current template, not the old one."""
    target.write_bytes((Path(__file__).parent / "fixtures" / "template-version-1.xlsx")
                       .read_bytes())
    return target


def template_version(path: Path) -> str | None:
    import openpyxl

    props = openpyxl.load_workbook(path).custom_doc_props.props
    return {p.name: p.value for p in props}.get("aisdp-log template version")


@pytest.fixture
def old_log(tmp_path: Path) -> Path:
    """A log a team filled from the 0.1.0 template, with a column of their own."""
    import openpyxl

    old = template_0_1_0(tmp_path / "template-0.1.0.xlsx")
    workbook = openpyxl.load_workbook(old)
    workbook["Experiments"].cell(1, 25, "Reviewer")
    workbook.save(old)
    return fill_workbook(old, tmp_path / "experiment-log.xlsx",
                         [CLEAN_TEMPLATE_ROW, dict(CLEAN_TEMPLATE_ROW, **{
                             "Experiment ID": "EXP-002", "Reviewer": "Bob"})])


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory) -> Path:
    """The demo project, built once per test session (real git, DVC and torch training).
    Tests that change it must use `demo_project`, a private copy."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("dvc")
    from aisdp_log.demo.project import build_demo

    root = tmp_path_factory.mktemp("demo-build") / "demo"
    build_demo(root, echo=lambda line: None)
    return root


@pytest.fixture
def demo_project(built_demo: Path, tmp_path: Path) -> Path:
    """A private copy of the demo project (git history, DVC cache and remote included)."""
    import shutil

    target = tmp_path / "demo"
    shutil.copytree(built_demo, target, symlinks=True)
    (target / ".dvc" / "config").write_text(
        (target / ".dvc" / "config").read_text().replace(str(built_demo), str(target)))
    return target


@pytest.fixture(scope="session")
def built_getstarted(tmp_path_factory) -> dict:
    """The DVC-get-started-shaped project of dvc_projects.py, trained once per test session by
    `dvc repro` and committed. Tests that change it must use `getstarted`, a private copy."""
    from dvc_projects import build_getstarted

    return build_getstarted(tmp_path_factory.mktemp("getstarted") / "project")


@pytest.fixture
def getstarted(built_getstarted: dict, tmp_path: Path) -> dict:
    """A private copy of the trained get-started project with the artefact folder of EXP-001
    (dvc_projects.copy_getstarted)."""
    from dvc_projects import copy_getstarted

    return copy_getstarted(built_getstarted, tmp_path / "project")


@pytest.fixture(autouse=True, scope="session")
def no_host_configuration(tmp_path_factory):
    """Tests run as on a bare machine: no global or system git and DVC settings of the host
    (an identity, `commit.gpgsign`, a default branch name, a DVC cache or remote) reach them.
    Tests that commit set their repository's identity themselves (builders.init_repo)."""
    import os

    folder = tmp_path_factory.mktemp("host-configuration")
    (folder / "gitconfig").write_text("")
    saved = {name: os.environ.get(name) for name in (
        "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "DVC_GLOBAL_CONFIG_DIR",
        "DVC_SYSTEM_CONFIG_DIR")}
    os.environ.update(GIT_CONFIG_GLOBAL=str(folder / "gitconfig"), GIT_CONFIG_NOSYSTEM="1",
                      DVC_GLOBAL_CONFIG_DIR=str(folder / "dvc-global"),
                      DVC_SYSTEM_CONFIG_DIR=str(folder / "dvc-system"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
