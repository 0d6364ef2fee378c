"""A001-A007: rows checked against real artefact folders in a real git repository."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from builders import BASE_ROW, assert_findings, finding_pairs, init_repo, row, run_cli, write_log

from aisdp_log.config import load_config
from aisdp_log.lint.checks import artefacts
from aisdp_log.lint.context import Context
from aisdp_log.lint.runner import validate
from aisdp_log.workbook.reader import load_log
from aisdp_log.workbook.table import cell_ref

HEADERS = list(BASE_ROW) + ["Other params"]
COMMIT = "9c1e4b7d2a0f5e6c8b1a3d5f7e9c0b2a4d6f8e1c"
MD5 = "3f2a9c1e5b7d9f1a3c5e7b9d1f3a5c7e"
MODEL = b"model weights \x00\x01\x02" * 100


def cell(header: str, number: int = 2) -> str:
    """The cell of `header` in sheet row `number` of a log written with HEADERS."""
    return cell_ref(number, HEADERS.index(header))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def folder_hash(files: dict[str, bytes]) -> str:
    """The artefact hash (docs/workbook-format.md) computed here independently: one file's
    sha256, or the sha256 of the `sha256sum` lines sorted by path."""
    if len(files) == 1:
        return "sha256:" + sha256(next(iter(files.values())))
    lines = "".join(f"{sha256(data)}  {rel}\n" for rel, data in sorted(files.items()))
    return "sha256:" + sha256(lines.encode())


def run_record(**changes) -> dict:
    record = {"experiment_id": "EXP-001", "seed": 42, "commit": COMMIT, "dirty": False,
              "data_version": MD5, "params": {"learning_rate": 0.001},
              "environment": {"summary": "torch 2.13.0+cpu"},
              "started": "2026-07-14T09:00:00Z", "duration_s": 750.0, "status": "completed",
              "artefact_hash": None}
    record.update(changes)
    return record


def make_folder(repo: Path, experiment_id: str, files: dict[str, bytes] | None = None, *,
                metrics: object = None, run: object = None) -> Path:
    folder = repo / "artefacts" / experiment_id
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in (files if files is not None else {"model.pt": MODEL}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    for name, content in (("metrics.json", metrics), ("run.json", run)):
        if content is not None:
            (folder / name).write_text(content if isinstance(content, str)
                                       else json.dumps(content))
    return folder


def clean_row(**changes) -> dict:
    defaults = {"code_commit": COMMIT[:9], "data_version": MD5[:10] + ".dir",
                "artefact_hash": folder_hash({"model.pt": MODEL})}
    return row(**{**defaults, **changes})


def a_codes(repo: Path, rows: list[dict], **kwargs) -> list[tuple[str, str]]:
    """(code, cell) of the A-findings only: the git and DVC families also run on these logs.
    A008 (a record lacking a cell's key) is left to the tests about coverage."""
    log = write_log(repo / "log.xlsx", rows, headers=HEADERS)
    report = validate(log, repo=repo, **kwargs)
    return sorted(pair for pair in finding_pairs(report, "A") if pair[0] != "A008")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "project")


# --------------------------------------------------------------------------- clean rows

def test_clean_row_with_agreeing_records_has_no_finding(repo):
    make_folder(repo, "EXP-001", metrics={"accuracy": 0.91234, "loss": 0.2},
                run=run_record(params={"learning_rate": "1e-3"},
                               artefact_hash=folder_hash({"model.pt": MODEL})))
    assert_findings(a_codes(repo, [clean_row(**{"metrics.accuracy": 0.912})]), [])


def test_multi_file_nested_folder_passes_with_manifest_hash(repo):
    files = {"model.pt": MODEL, "tokenizer/vocab.txt": b"a\nb\n", "config.yaml": b"x: 1\n"}
    folder = make_folder(repo, "EXP-001", files)
    (folder / "history.csv").write_text("epoch,loss\n1,0.5\n")
    (folder / "reruns" / "20260801").mkdir(parents=True)
    (folder / "reruns" / "20260801" / "model.pt").write_bytes(b"rerun")
    assert_findings(a_codes(repo, [clean_row(artefact_hash=folder_hash(files))]), [])


def test_symlink_inside_the_root_is_followed(repo):
    make_folder(repo, "EXP-001")
    folder = make_folder(repo, "EXP-002", {})
    (folder / "model.pt").symlink_to("../EXP-001/model.pt")
    rows = [clean_row(), clean_row(experiment_id="EXP-002")]
    assert_findings(a_codes(repo, rows), [])


def test_offline_runs_no_artefact_check(repo):
    assert_findings(a_codes(repo, [clean_row()], offline=True), [])


# --------------------------------------------------------------------------- A001, A002, A007

def test_missing_folder_is_a001_at_the_id_cell(repo):
    make_folder(repo, "EXP-002")  # the root exists; EXP-001 does not
    rows = [clean_row(), clean_row(experiment_id="EXP-002")]
    assert_findings(a_codes(repo, rows), [("A001", cell("Experiment ID"))])


def test_missing_artefacts_root_is_a001_per_row(repo):
    assert_findings(a_codes(repo, [clean_row()]), [("A001", cell("Experiment ID"))])


def test_folder_with_only_records_is_a001(repo):
    make_folder(repo, "EXP-001", {}, metrics={"accuracy": 0.91})
    assert_findings(a_codes(repo, [clean_row()]), [("A001", cell("Experiment ID"))])


def test_tampered_model_is_a002_at_the_hash_cell(repo):
    folder = make_folder(repo, "EXP-001")
    (folder / "model.pt").write_bytes(MODEL + b"!")
    assert_findings(a_codes(repo, [clean_row()]), [("A002", cell("Artefact hash"))])


def test_an_added_file_changes_the_hash(repo):
    make_folder(repo, "EXP-001", {"model.pt": MODEL, "extra.bin": b"x"})
    assert_findings(a_codes(repo, [clean_row()]), [("A002", cell("Artefact hash"))])


@pytest.mark.parametrize("experiment_id", ["../outside", "..", "a/../../outside",
                                           "/etc", "sub/EXP-001"])
def test_id_that_could_escape_is_a007_and_not_followed(repo, experiment_id):
    outside = repo.parent / "outside"
    make_folder(outside.parent, "outside")  # a real folder there, with a model in it
    (repo / "artefacts").mkdir()
    codes = a_codes(repo, [clean_row(experiment_id=experiment_id)])
    assert_findings(codes, [("A007", cell("Experiment ID"))])


def test_folder_symlink_leaving_the_root_is_a007(repo, tmp_path):
    elsewhere = make_folder(tmp_path / "elsewhere", "EXP-001")
    (repo / "artefacts").mkdir()
    (repo / "artefacts" / "EXP-001").symlink_to(elsewhere, target_is_directory=True)
    assert_findings(a_codes(repo, [clean_row()]), [("A007", cell("Experiment ID"))])


def test_file_symlink_leaving_the_root_is_a007_and_never_hashed(repo, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(MODEL)
    folder = make_folder(repo, "EXP-001", {})
    (folder / "model.pt").symlink_to(secret)
    # the row even carries the hash of the outside file: it must not be read to confirm it
    assert_findings(a_codes(repo, [clean_row()]), [("A007", cell("Experiment ID"))])


def test_record_symlink_leaving_the_root_is_a007(repo, tmp_path):
    outside = tmp_path / "metrics.json"
    outside.write_text(json.dumps({"accuracy": 0.5}))
    folder = make_folder(repo, "EXP-001")
    (folder / "metrics.json").symlink_to(outside)
    assert_findings(a_codes(repo, [clean_row()]), [("A007", cell("Experiment ID"))])


# --------------------------------------------------------------------------- A003 metrics.json

@pytest.mark.parametrize("typed, recorded, expected", [
    (0.912, 0.91234, []),                       # 3 decimals typed: 0.9115..0.9125
    (0.91, 0.91234, []),
    (0.9123, 0.91234, []),
    (0.85, 0.81234, ["A003"]),
    (0.9124, 0.91234, ["A003"]),                 # 4 decimals: 0.91235..0.91245
    ("0.912", 0.91234, []),                      # typed as text
    (1, 0.91234, []),                            # 1 stands for 0.5..1.5
    (0.91234, 0.91234, []),
])
def test_metric_against_metrics_json_within_the_rounding_typed(repo, typed, recorded,
                                                               expected):
    make_folder(repo, "EXP-001", metrics={"Accuracy": recorded})
    codes = a_codes(repo, [clean_row(**{"metrics.accuracy": typed})])
    assert_findings(codes, [(code, cell("metrics.accuracy")) for code in expected])


def test_metric_missing_from_metrics_json_is_a_warning_not_an_error(repo):
    # A008 (issue 10): nothing confirms the cell, and the report says so
    make_folder(repo, "EXP-001", metrics={"loss": 0.3})
    log = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    report = validate(log, repo=repo)
    assert_findings(report, [("A008", cell("metrics.accuracy"))], "A")
    assert {f.severity.value for f in report.findings if f.code == "A008"} == {"warning"}
    assert f"Experiments!{cell('metrics.accuracy')}" in \
        report.coverage.unverified_cells


@pytest.mark.parametrize("content", ["{not json", "[0.91]", '{"accuracy": 0.9', "\xff\xfe"])
def test_unreadable_metrics_json_is_a003_at_the_id_cell(repo, content):
    make_folder(repo, "EXP-001", metrics=content)
    assert_findings(a_codes(repo, [clean_row()]), [("A003", cell("Experiment ID"))])


def test_non_number_in_metrics_json_is_a003_at_the_metric_cell(repo):
    make_folder(repo, "EXP-001", metrics={"accuracy": "high"})
    assert_findings(a_codes(repo, [clean_row()]), [("A003", cell("metrics.accuracy"))])


# --------------------------------------------------------------------------- A004, A006 run.json

@pytest.mark.parametrize("changes, header", [
    ({"seed": 7}, "Random seed"),
    ({"seed": "not a seed"}, "Random seed"),
    ({"commit": "1234567890abcdef"}, "Code commit"),
    ({"commit": "zz"}, "Code commit"),
    ({"data_version": "0123456789abcdef0123456789abcdef"}, "Data version"),
    ({"params": {"learning_rate": 0.01}}, "params.learning_rate"),
    ({"params": {"Learning_Rate": "0.1"}}, "params.learning_rate"),
    ({"params": {"learning_rate": 0.001, "dropout": 0.2}}, "Other params"),
    ({"experiment_id": "EXP-009"}, "Experiment ID"),
    ({"artefact_hash": "sha256:" + "b" * 64}, "Artefact hash"),
    ({"params": [0.001]}, "Experiment ID"),
])
def test_run_json_disagreeing_with_the_row_is_a004_at_that_cell(repo, changes, header):
    make_folder(repo, "EXP-001", run=run_record(**changes))
    codes = a_codes(repo, [clean_row(**{"Other params": "dropout=0.1"})])
    assert_findings(codes, [("A004", cell(header))])


@pytest.mark.parametrize("changes", [
    {"seed": 42.0}, {"seed": "42"},
    {"commit": COMMIT.upper()}, {"commit": COMMIT[:7]},
    {"data_version": MD5 + ".dir"}, {"data_version": MD5[:8]},
    {"data_version": COMMIT},                     # several outputs: the helper records a commit
    {"data_version": None}, {"commit": None}, {"params": None},
    {"params": {"learning_rate": 1e-3, "dropout": "0.1", "epochs": 20}},
    {"params": {"LEARNING_RATE": "0.0010"}},
    {"artefact_hash": folder_hash({"model.pt": MODEL})[7:].upper()},
])
def test_run_json_agreeing_in_another_spelling_passes(repo, changes):
    make_folder(repo, "EXP-001", run=run_record(**changes))
    assert_findings(a_codes(repo, [clean_row(**{"Other params": "dropout=1e-1"})]), [])


def test_run_json_missing_keys_are_skipped(repo):
    make_folder(repo, "EXP-001", run={"status": "completed"})
    assert_findings(a_codes(repo, [clean_row()]), [])


def test_data_version_given_as_a_tag_is_left_to_the_dvc_checks(repo):
    make_folder(repo, "EXP-001", run=run_record())
    assert_findings(a_codes(repo, [clean_row(data_version="data-v2")]), [])


@pytest.mark.parametrize("content", ["{", "null", '"text"', "[1, 2]"])
def test_invalid_run_json_is_a004_at_the_id_cell(repo, content):
    make_folder(repo, "EXP-001", run=content)
    assert_findings(a_codes(repo, [clean_row()]), [("A004", cell("Experiment ID"))])


def test_dirty_run_is_a006_at_the_id_cell(repo):
    make_folder(repo, "EXP-001", run=run_record(dirty=True))
    assert_findings(a_codes(repo, [clean_row()]), [("A006", cell("Experiment ID"))])


# --------------------------------------------------------------------------- A005

def test_each_orphan_folder_is_one_a005_at_the_id_header(repo):
    make_folder(repo, "EXP-001")
    make_folder(repo, "EXP-007")
    make_folder(repo, "exp-001")
    (repo / "artefacts" / ".ipynb_checkpoints").mkdir()
    (repo / "artefacts" / "latest").symlink_to("EXP-001")
    (repo / "artefacts" / "README.txt").write_text("our models")
    log = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    report = validate(log, repo=repo)
    orphans = sorted((f.code, f.cell, f.experiment_id) for f in report.findings
                     if f.code.startswith("A"))
    assert orphans == [("A005", "A1", "EXP-007"), ("A005", "A1", "exp-001")]


# --------------------------------------------------------------------------- the cache

def _check(repo: Path, log_path: Path) -> tuple[list[tuple[str, str]], object]:
    config = load_config(repo)
    log = load_log(log_path, config)
    try:
        ctx = Context(config=config, repo=repo)
        findings = list(artefacts.run(log, ctx))
    finally:
        log.workbook.close()
    return [(f.code, f.cell) for f in findings], ctx.hash_cache


def test_second_run_reads_no_unchanged_file_and_a_touched_file_is_read_again(repo):
    files = {"model.pt": MODEL, "head.pt": b"head" * 1000}
    folder = make_folder(repo, "EXP-001", files)
    make_folder(repo, "EXP-002")
    rows = [clean_row(artefact_hash=folder_hash(files)),
            clean_row(experiment_id="EXP-002")]
    log_path = write_log(repo / "log.xlsx", rows, headers=HEADERS)
    time.sleep(0.1)  # files written in the same timestamp tick are never trusted (racy)

    codes, cold = _check(repo, log_path)
    assert_findings(codes, [])
    assert (cold.hits, cold.misses) == (0, 3)
    assert cold.bytes_hashed == 2 * len(MODEL) + 4000
    assert (repo / ".aisdp-log" / "hashes.json").is_file()

    codes, warm = _check(repo, log_path)
    # both rows unchanged since found clean: not even a digest is looked up
    assert_findings(codes, [])
    assert (warm.verdict_hits, warm.verdict_misses) == (2, 0)
    assert (warm.hits, warm.misses, warm.bytes_hashed) == (0, 0, 0)

    stat = (folder / "head.pt").stat()
    os.utime(folder / "head.pt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    time.sleep(0.1)
    codes, touched = _check(repo, log_path)
    # EXP-002 unchanged; EXP-001 dated in the future, so no verdict is even looked up
    assert_findings(codes, [])
    assert (touched.verdict_hits, touched.verdict_misses) == (1, 0)
    assert (touched.hits, touched.misses) == (1, 1) and touched.bytes_hashed == 4000


def test_a_cached_digest_does_not_hide_a_rewrite(repo):
    folder = make_folder(repo, "EXP-001")
    log_path = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    time.sleep(0.1)
    assert_findings(_check(repo, log_path)[0], [])
    stat = (folder / "model.pt").stat()
    (folder / "model.pt").write_bytes(MODEL[::-1])  # same size
    os.utime(folder / "model.pt", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime
    codes, cache = _check(repo, log_path)
    assert_findings(codes, [("A002", cell("Artefact hash"))])
    assert cache.misses == 1


def test_unwritable_cache_folder_still_checks(repo):
    (repo / ".aisdp-log").write_text("a file where the cache folder would go")
    make_folder(repo, "EXP-001")
    log_path = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    codes, cache = _check(repo, log_path)
    assert_findings(codes, [])
    assert type(cache).__name__ == "NullCache" and cache.misses == 1


def test_progress_requested_but_stderr_not_a_terminal_prints_nothing(repo, capsys):
    make_folder(repo, "EXP-001", {"model.pt": os.urandom(2 << 20)})
    log_path = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    report = validate(log_path, repo=repo, progress=True)
    assert ("A002", cell("Artefact hash")) in report.codes()
    assert capsys.readouterr().err == ""


def test_cli_exit_code_and_json_cell_for_a_tampered_model(repo):

    folder = make_folder(repo, "EXP-001")
    (folder / "model.pt").write_bytes(b"retrained")
    log_path = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    result = run_cli("validate", str(log_path), "--format", "json", cwd=repo)
    found = [(f["code"], f["cell"]) for f in json.loads(result.stdout)["findings"]
             if f["code"].startswith("A")]
    assert (result.returncode, found) == (1, [("A002", cell("Artefact hash"))])


def _rewrite_keeping_size_and_mtime(path: Path, content: bytes) -> None:
    """New bytes of the same size under the same mtime: only ctime (and the bytes) move."""
    stat = path.stat()
    assert len(content) == stat.st_size
    path.write_bytes(content)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_record_summaries_are_reused_only_while_their_stat_matches(repo):
    folder = make_folder(repo, "EXP-001", metrics={"accuracy": 0.91234},
                         run=run_record(params={"learning_rate": 0.001}))
    log_path = write_log(repo / "log.xlsx", [clean_row(**{"metrics.accuracy": 0.912})],
                         headers=HEADERS)
    time.sleep(0.1)  # records read in the racy window are never remembered
    codes, cold = _check(repo, log_path)
    assert_findings(codes, [])
    assert (cold.record_hits, cold.record_misses) == (0, 2)

    # a compared cell changed (still agreeing): the row is checked again, the records'
    # summaries come from the cache, no JSON is read
    log_path = write_log(repo / "log.xlsx", [clean_row(**{"metrics.accuracy": 0.9123})],
                         headers=HEADERS)
    codes, warm = _check(repo, log_path)
    assert_findings(codes, [])
    assert (warm.verdict_hits, warm.verdict_misses) == (0, 1)
    assert (warm.record_hits, warm.record_misses) == (2, 0)

    # metrics.json rewritten to disagree, same size and mtime: its summary is not trusted
    _rewrite_keeping_size_and_mtime(folder / "metrics.json",
                                    json.dumps({"accuracy": 0.81234}).encode())
    time.sleep(0.1)
    codes, changed = _check(repo, log_path)
    assert_findings(codes, [("A003", cell("metrics.accuracy"))])
    assert (changed.record_hits, changed.record_misses) == (1, 1)


def test_a_clean_row_unchanged_is_not_checked_again_and_any_change_is(repo):
    folder = make_folder(repo, "EXP-001", metrics={"accuracy": 0.91234}, run=run_record())
    log_path = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    time.sleep(0.1)
    assert_findings(_check(repo, log_path)[0], [])
    codes, warm = _check(repo, log_path)
    assert_findings(codes, [])
    assert (warm.verdict_hits, warm.hits, warm.record_hits) == (1, 0, 0)

    # a compared cell: the seed now disagrees with run.json
    seed_log = write_log(repo / "seed.xlsx", [clean_row(random_seed=7)], headers=HEADERS)
    codes, cache = _check(repo, seed_log)
    assert_findings(codes, [("A004", cell("Random seed"))])
    assert cache.verdict_misses == 1

    # a record rewritten (same size and mtime): run.json now says the tree was dirty
    _rewrite_keeping_size_and_mtime(folder / "run.json",
                                    (json.dumps(run_record(dirty=True)) + " ").encode())
    time.sleep(0.1)
    assert_findings(_check(repo, log_path)[0], [("A006", cell("Experiment ID"))])

    # a model file added: the listing changed, so the hash is taken again
    (folder / "extra.bin").write_bytes(b"added after the run")
    time.sleep(0.1)
    assert ("A002", cell("Artefact hash")) in _check(repo, log_path)[0]


def test_a_row_with_a_finding_leaves_no_verdict(repo):
    make_folder(repo, "EXP-001", run=run_record(seed=7))
    log_path = write_log(repo / "log.xlsx", [clean_row()], headers=HEADERS)
    time.sleep(0.1)
    for _ in range(2):
        codes, cache = _check(repo, log_path)
        assert_findings(codes, [("A004", cell("Random seed"))])
        assert (cache.verdict_hits, cache.verdict_misses) == (0, 1)


# --------------------------------------------------------------------------- by value (issue 25)

def _openpyxl_log(path: Path, cells: dict, formats: dict | None = None) -> Path:
    """A log written cell by cell with openpyxl, as Excel or a script stores each type: a
    float stays a float (`100.0`), text stays text, a number format is kept on the cell."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Experiments"
    values = clean_row(**cells)
    sheet.append(HEADERS)
    sheet.append([values.get(header) for header in HEADERS])
    for header, number_format in (formats or {}).items():
        sheet.cell(2, HEADERS.index(header) + 1).number_format = number_format
    metrics = book.create_sheet("Metrics")
    metrics.append(["Metric", "Goal", "Threshold", "Description"])
    metrics.append(["accuracy", "max", 0.5, "holdout accuracy"])
    book.save(path)
    return path


@pytest.mark.parametrize("cells, formats", [
    ({"params.learning_rate": 100.0}, None),                 # a float where run.json has 100
    ({"params.learning_rate": "100"}, None),                 # a number stored as text
    ({"params.learning_rate": "100.0"}, None),
    ({"params.learning_rate": 100, "Other params": "dropout=0.6135"}, None),
    ({"params.learning_rate": 100, "metrics.accuracy": 0.6135}, {"metrics.accuracy": "0.00%"}),
    ({"params.learning_rate": 100, "metrics.accuracy": 0.6135},
     {"metrics.accuracy": "0.00%", "params.learning_rate": "0%"}),
    ({"params.learning_rate": 100, "metrics.accuracy": "0.6135"}, None),
])
def test_values_equal_by_value_across_types_have_no_finding(repo, cells, formats):
    make_folder(repo, "EXP-001", metrics={"accuracy": 0.6135},
                run=run_record(params={"learning_rate": 100, "dropout": 0.6135}))
    log = _openpyxl_log(repo / "log.xlsx", {"metrics.accuracy": 0.6135, **cells}, formats)
    report = validate(log, repo=repo)
    assert_findings([p for p in finding_pairs(report, ("A", "S")) if p[0] != "A008"], [])


@pytest.mark.parametrize("cells, expected, says", [
    ({"params.learning_rate": "0,6135"}, [("A004", "params.learning_rate")], "decimal comma"),
    ({"params.learning_rate": 61.35}, [("A004", "params.learning_rate")], "per cent"),
    ({"params.learning_rate": "61.35%"}, [("A004", "params.learning_rate")], "percentage"),
    ({"Other params": "dropout=0,6135"}, [("A004", "Other params")], "decimal comma"),
    ({"metrics.accuracy": 61.35}, [("A003", "metrics.accuracy")], "per cent"),
    ({"metrics.accuracy": "0,6135"}, [("S003", "metrics.accuracy")], "decimal comma"),
    ({"metrics.accuracy": "61.35%"}, [("S003", "metrics.accuracy")], "percentage"),
])
def test_values_that_only_look_equal_are_findings_at_their_cell(repo, cells, expected, says):
    make_folder(repo, "EXP-001", metrics={"accuracy": 0.6135},
                run=run_record(params={"learning_rate": 0.6135, "dropout": 0.6135}))
    values = {"params.learning_rate": 0.6135, "metrics.accuracy": 0.6135, **cells}
    report = validate(_openpyxl_log(repo / "log.xlsx", values), repo=repo)
    wanted = [(code, cell(header)) for code, header in expected]
    assert_findings([p for p in finding_pairs(report, ("A", "S")) if p[0] != "A008"], wanted)
    found = [f for f in report.findings if (f.code, f.cell) == wanted[0]]
    assert says in found[0].message
