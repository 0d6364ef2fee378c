"""`aisdp-log review`: the quarterly model-selection review, on a small real project.

The project: a git repository with six runs over 2026-Q2 and 2026-Q3 (baseline, selected,
rejected, undecided), artefact folders with model files, history.csv and metrics.json, and a
Reproducibility sheet with a statistical interval for the selected Q3 model.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from builders import commit, init_repo, row, write_log

from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.cli.main import main
from aisdp_log.review.write import write_review

METRICS = [
    {"Metric": "accuracy", "Goal": "max", "Threshold": 0.85, "Description": "holdout accuracy"},
    {"Metric": "loss", "Goal": "min", "Threshold": 0.4, "Description": "holdout log loss"},
]
#: id, date, outcome, learning rate, optimizer, accuracy, loss, notes
RUNS = [
    ("EXP-001", dt.date(2026, 5, 10), "baseline", 0.1, "sgd", 0.80, 0.52, "Q2 reference"),
    ("EXP-002", "2026-06-02", "selected", 0.01, "adam", 0.88, 0.31, "beats EXP-001"),
    ("EXP-003", dt.date(2026, 7, 14), "baseline", 0.1, "sgd", 0.86, 0.35, "Q3 reference"),
    ("EXP-004", "2026-08-03", "selected", 0.001, "adam", 0.912, 0.22,
     "beats EXP-003 by 5.2 points; meets both thresholds"),
    ("EXP-005", dt.date(2026, 8, 20), "rejected", 0.05, "sgd", 0.83, 0.45,
     "<script>alert('x')</script> misses | both thresholds"),
    ("EXP-006", "2026-09-01", None, 0.003, "adam", 0.89, 0.27, None),
]
HEADERS = ["Experiment ID", "Date", "Hypothesis", "params.learning_rate", "params.optimizer",
           "params.epochs", "Data version", "Code commit", "Random seed", "Training duration",
           "metrics.accuracy", "metrics.loss", "Artefact hash", "Environment", "Outcome",
           "Notes", "Rerun", "Reproducibility"]
REPRODUCIBILITY = [
    ["Experiment ID", "Date", "Mode", "Metric", "Runs", "Mean", "Std", "CI low", "CI high",
     "Confidence", "Threshold", "Verdict"],
    ["EXP-004", "2026-08-10", "statistical", "accuracy", 5, 0.91, 0.005, 0.904, 0.916, 0.95,
     0.85, "pass"],
]


@dataclass
class Project:
    repo: Path
    log: Path
    commit: str
    headers: list[str]

    def cell(self, experiment_id: str, header: str) -> str:
        """The Experiments cell of a run's column, e.g. `C5`."""
        from aisdp_log.workbook.table import cell_ref

        number = 2 + [r[0] for r in RUNS].index(experiment_id)
        return cell_ref(number, self.headers.index(header))


def make_project(tmp_path: Path, *, tamper: str | None = "EXP-005") -> Project:
    """The demo-like project; `tamper` names a run whose model file changes after hashing."""
    repo = init_repo(tmp_path / "project")
    lock = "torch==2.13.0\n"
    sha = commit(repo, {"train.py": "print('train')\n", "uv.lock": lock},
                 message="training script", date="2026-04-01T09:00:00+00:00")
    import hashlib

    lock_hash = hashlib.sha256(lock.encode()).hexdigest()
    rows = []
    for index, (experiment_id, date, outcome, lr, optimizer, accuracy, loss, notes) in \
            enumerate(RUNS):
        folder = repo / "artefacts" / experiment_id
        folder.mkdir(parents=True)
        (folder / "model.bin").write_bytes(f"weights of {experiment_id}".encode())
        (folder / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "loss": loss}))
        epochs = range(1, 6)
        history = ["epoch,accuracy,loss"] + [
            f"{e},{accuracy - 0.02 * (5 - e):.4f},{loss + 0.05 * (5 - e):.4f}" for e in epochs]
        (folder / "history.csv").write_text("\n".join(history) + "\n")
        recorded = artefact_hash(folder)
        if experiment_id == tamper:
            (folder / "model.bin").write_bytes(b"replaced later")
        rows.append(row(**{
            "Experiment ID": experiment_id, "Date": date,
            "Hypothesis": f"learning rate {lr} with {optimizer}",
            "params.learning_rate": lr, "params.optimizer": optimizer, "params.epochs": 5,
            "Data version": "3f2a9c1e", "Code commit": sha[:7], "Random seed": 40 + index,
            "Training duration": 12.5, "metrics.accuracy": accuracy, "metrics.loss": loss,
            "Artefact hash": recorded,
            "Environment": f"uv.lock sha256:{lock_hash}; torch 2.13.0; cpu avx512",
            "Outcome": outcome, "Notes": notes,
            "Reproducibility": "statistical" if experiment_id == "EXP-004" else None}))
    log = write_log(repo / "experiment-log.xlsx", rows, headers=HEADERS, metrics=METRICS,
                    extra_sheets={"Reproducibility": REPRODUCIBILITY})
    return Project(repo, log, sha, HEADERS)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


def _text(html_text: str) -> str:
    """The HTML's visible text, tags removed and white space collapsed, for number checks."""
    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)\b.*?</\1>", " ", html_text,
                                                    flags=re.S))
    return " ".join(without_tags.split())


def _table_rows(html_text: str, first_cell: str) -> list[list[str]]:
    """Every table row whose first cell's text is `first_cell`, as lists of cell texts."""
    found = []
    for row_html in re.findall(r"<tr>(.*?)</tr>", html_text, re.S):
        cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split())
                 for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row_html, re.S)]
        if cells and cells[0] == first_cell:
            found.append(cells)
    return found


def _md_rows(markdown: str, first_cell: str) -> list[list[str]]:
    rows = []
    for line in markdown.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if cells and cells[0] == first_cell:
                rows.append(cells)
    return rows


@pytest.mark.slow
def test_default_period_is_latest_quarter_and_both_files_are_written(project, tmp_path):
    out = tmp_path / "out"
    result = write_review(project.log, output_dir=out)
    assert result.review.period == "2026-Q3"
    assert result.html_path == out / "review-2026-Q3.html"
    assert result.markdown_path == out / "review-2026-Q3.md"
    assert result.html_path.stat().st_size > 10_000
    assert result.review.counts == {"runs": 4, "selected": 1, "baseline": 1, "rejected": 1,
                                    "undecided": 1}


@pytest.mark.slow
def test_summary_counts_and_validation_findings_in_html_and_markdown(project, tmp_path):
    from aisdp_log.lint.runner import validate

    result = write_review(project.log, output_dir=tmp_path)
    html_text = result.html_path.read_text()
    markdown = result.markdown_path.read_text()
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', html_text))
    assert counts["runs"] == "4" and counts["selected"] == "1"
    assert counts["baselines"] == "1" and counts["rejected"] == "1"
    assert counts["undecided"] == "1"
    # The validator's own findings on the Q3 rows (4..7), online because the log is in git.
    report = validate(project.log)
    period = [f for f in report.findings if f.sheet == "Experiments" and f.row in (1, 4, 5, 6, 7)]
    errors = sum(1 for f in period if f.severity.value == "error")
    assert counts["errors"] == str(errors)
    assert counts["warnings"] == str(len(period) - errors)
    assert result.review.validation_mode == "online"
    # R001: EXP-006 has no outcome; listed at its outcome cell, in both outputs.
    outcome_cell = project.cell("EXP-006", "Outcome")
    assert f"Experiments!{outcome_cell}" in _text(html_text)
    assert any(r[1] == "R001" and r[2] == f"Experiments!{outcome_cell}"
               for r in _md_rows(markdown, "warning"))
    summary = _md_rows(markdown, "4")
    assert summary and summary[0][:5] == ["4", "1", "1", "1", "1"]
    # Q2 rows are not listed: EXP-002's cells are out of the period.
    assert "EXP-001" not in _text(html_text).split("Selection against")[0]


@pytest.mark.slow
def test_selection_thresholds_deltas_and_rationale(project, tmp_path):
    result = write_review(project.log, output_dir=tmp_path)
    html_text = result.html_path.read_text()
    markdown = result.markdown_path.read_text()
    # Every candidate against accuracy >= 0.85 and loss <= 0.4.
    rows = {r[0]: r for r in _table_rows(html_text, "EXP-004") + _table_rows(html_text, "EXP-005")
            if len(r) == 8}
    assert rows["EXP-004"][3:] == ["0.912", "met", "0.22", "met", "met"]
    assert rows["EXP-005"][3:] == ["0.83", "NOT met", "0.45", "NOT met", "NOT met"]
    md = {r[0]: r for r in _md_rows(markdown, "EXP-005") if len(r) == 8}
    assert md["EXP-005"][3:] == ["0.83", "NOT met", "0.45", "NOT met", "NOT met"]
    # Selected against the Q3 baseline: +0.052 accuracy, -0.13 loss (both better).
    deltas = [r for r in _table_rows(html_text, "EXP-004") if len(r) == 7]
    assert ["EXP-004", "EXP-003", "accuracy", "0.912", "0.86", "+0.052", "better"] in deltas
    assert ["EXP-004", "EXP-003", "loss", "0.22", "0.35", "-0.13", "better"] in deltas
    assert ["EXP-004", "EXP-003", "accuracy", "0.912", "0.86", "+0.052", "better"] in \
        _md_rows(markdown, "EXP-004")
    # Rationale notes, escaped: a cell never becomes markup.
    assert "beats EXP-003 by 5.2 points; meets both thresholds" in html_text
    assert "<script>" not in html_text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html_text
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "misses \\| both thresholds" in markdown


@pytest.mark.slow
def test_provenance_rehashes_the_artefact_folders(project, tmp_path):
    result = write_review(project.log, output_dir=tmp_path)
    status = {p.experiment_id: p.status for p in result.review.provenance}
    assert status == {"EXP-003": "match", "EXP-004": "match", "EXP-005": "differs",
                      "EXP-006": "match"}
    html_text = result.html_path.read_text()
    row_5 = [r for r in _table_rows(html_text, "EXP-005") if len(r) == 7][0]
    assert row_5[1] == project.commit[:7] and row_5[2] == "3f2a9c1e" and row_5[3] == "44"
    assert row_5[6].startswith("FILES DIFFER on disk sha256:")
    md_row = [r for r in _md_rows(result.markdown_path.read_text(), "EXP-004")
              if r[1] == project.commit[:7]]
    assert md_row[0][6] == "files match"


@pytest.mark.slow
def test_figures_are_embedded_and_nothing_is_fetched(project, tmp_path):
    result = write_review(project.log, output_dir=tmp_path)
    html_text = result.html_path.read_text()
    images = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html_text)
    # learning curves for accuracy and loss, metric comparison, parameter importance
    assert len(images) == 4
    assert all(src.startswith("data:image/svg+xml;base64,") for src in images)
    assert [p.key for p in result.review.plots] == [
        "curves-accuracy", "curves-loss", "metric-comparison", "parameter-importance"]
    for attribute in re.findall(r'\s(?:src|href|action|poster|data)\s*=\s*"([^"]*)"', html_text):
        assert attribute.startswith(("data:", "#")), attribute
    assert "@import" not in html_text and "url(" not in html_text
    assert "http://" not in html_text and "https://" not in html_text
    assert "<script" not in html_text and "<link" not in html_text
    # Every curve: each candidate with a history.csv, one line each.
    assert [c.experiment_id for c in result.review.curves["accuracy"]] == \
        ["EXP-003", "EXP-004", "EXP-005", "EXP-006"]
    assert "@page" in html_text and "@media print" in html_text


@pytest.mark.slow
def test_parameter_importance_over_all_runs_with_n_and_caution(project, tmp_path):
    result = write_review(project.log, output_dir=tmp_path)
    html_text = result.html_path.read_text()
    by_pair = {(c.param, c.metric): c for c in result.review.correlations}
    # Ranks of learning rate vs accuracy over all six runs: rho = -15.5 / sqrt(17 * 17.5).
    lr_accuracy = by_pair[("learning_rate", "accuracy")]
    assert lr_accuracy.n == 6
    assert lr_accuracy.rho == pytest.approx(-15.5 / (17 * 17.5) ** 0.5)
    assert "caution" in lr_accuracy.note
    row = [r for r in _table_rows(html_text, "learning_rate") if r[1] == "accuracy"][0]
    assert row[2:4] == ["6", "-0.899"]
    # epochs never varied: undefined, not a crash; optimizer is not numeric.
    assert by_pair[("epochs", "accuracy")].rho is None
    epochs_row = [r for r in _table_rows(html_text, "epochs") if r[1] == "loss"][0]
    assert epochs_row[2:4] == ["6", "undefined"]
    assert result.review.skipped_params == ["optimizer"]
    md_row = [r for r in _md_rows(result.markdown_path.read_text(), "learning_rate")
              if r[1] == "accuracy"][0]
    assert md_row[2:4] == ["6", "-0.899"]


@pytest.mark.slow
def test_reproducibility_specification_of_the_selected_model(project, tmp_path):
    result = write_review(project.log, output_dir=tmp_path)
    [spec] = result.review.repro
    assert spec.experiment_id == "EXP-004" and spec.level == "statistical"
    assert spec.lock_file == "uv.lock" and spec.lock_hash.startswith("sha256:")
    assert spec.seed == 43
    html_text = result.html_path.read_text()
    evidence = _table_rows(html_text, "2026-08-10")
    # a sheet written before 0.3: no Recorded/Consistency columns, read without errors
    assert evidence == [["2026-08-10", "statistical", "accuracy", "5", "0.91", "0.005", "0.904",
                         "0.916", "95%", "0.85", "pass", "—", "—"]]
    assert ("accuracy over 5 runs: the recorded value was not tested against the reruns (a "
            "rerun before aisdp-log 0.3); 95% confidence interval [0.904, 0.916]; threshold "
            "0.85: pass") in _text(html_text)
    assert "same CPU instruction set" in html_text
    assert "Recorded CPU instruction set: avx512" in html_text
    markdown = result.markdown_path.read_text()
    assert ("| 2026-08-10 | statistical | accuracy | 5 | 0.91 | 0.005 | 0.904 | 0.916 | 95% "
            "| 0.85 | pass | — | — |") in markdown


@pytest.mark.slow
def test_annex_index_maps_every_section(project, tmp_path):
    result = write_review(project.log, output_dir=tmp_path)
    html_text = result.html_path.read_text()
    index = html_text.split('<nav class="index">')[1].split("</nav>")[0]
    mapping = {}
    for row_html in re.findall(r"<tr>(.*?)</tr>", index, re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", row_html)]
        if cells:
            mapping[cells[0]] = cells[1]
    assert mapping["Summary and validation status"] == "2(b), 2(g)"
    assert mapping["Provenance"] == "2(d), 2(b)"
    assert mapping["Reproducibility specification"] == "2(g)"
    assert mapping["Changes since the last signed review"] == "2(g)"
    for anchor in re.findall(r'href="#(\w+)"', index):
        assert f'id="{anchor}"' in html_text
    assert "## Provenance (Annex IV 2(d), 2(b))" in result.markdown_path.read_text()


@pytest.mark.slow
def test_explicit_period_and_earlier_baseline(project, tmp_path):
    result = write_review(project.log, period="2026-q2", output_dir=tmp_path)
    assert result.html_path.name == "review-2026-Q2.html"
    assert result.review.counts["runs"] == 2
    deltas = {(d.selected, d.baseline, d.metric): round(d.delta, 6)
              for d in result.review.deltas}
    assert deltas == {("EXP-002", "EXP-001", "accuracy"): 0.08,
                      ("EXP-002", "EXP-001", "loss"): -0.21}
    # Parameter importance covers runs up to the end of Q2 only.
    assert {c.n for c in result.review.correlations} == {2}
    assert all(c.rho is None for c in result.review.correlations)


def test_bad_period_and_empty_period_are_one_line_errors(project, tmp_path, capsys):
    for period in ("2026-Q5", "Q3"):
        with pytest.raises(SystemExit) as exit_info:
            main(["review", str(project.log), "--period", period, "-o", str(tmp_path)])
        assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["review", str(project.log), "--period", "2025-Q1", "-o", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("aisdp-log: error:") for line in err)
    assert not list(tmp_path.glob("review-*"))


@pytest.mark.slow
def test_cli_writes_both_files(project, tmp_path, capsys):
    main(["review", str(project.log), "-o", str(tmp_path / "reviews")])  # returns: exit 0
    out = capsys.readouterr().out
    assert "2026-Q3: 4 runs (1 selected, 1 baseline, 1 rejected, 1 undecided)" in out
    assert (tmp_path / "reviews" / "review-2026-Q3.html").is_file()
    assert (tmp_path / "reviews" / "review-2026-Q3.md").is_file()


@pytest.mark.slow
def test_outside_git_validation_is_offline_and_says_so(tmp_path):
    rows = [row(experiment_id="EXP-001", date="2026-07-01"),
            row(experiment_id="EXP-002", date="2026-07-02", outcome="selected",
                **{"metrics.accuracy": 0.93})]
    log = write_log(tmp_path / "log.xlsx", rows)
    result = write_review(log, output_dir=tmp_path / "out")
    assert result.review.validation_mode == "offline"
    assert "not inside a git repository" in result.html_path.read_text()
    assert {p.status for p in result.review.provenance} == {"missing"}
    # No history.csv: no learning curves, yet the comparison and a figure note are there.
    assert [p.key for p in result.review.plots][:1] == ["metric-comparison"]


def test_review_does_not_weigh_down_validate():
    import subprocess
    import sys

    code = ("import sys, aisdp_log.lint.runner, aisdp_log.lint.checks.signoff;"
            "print(sorted(m for m in ('matplotlib', 'scipy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_hostile_ids_never_leave_the_artefacts_folder(tmp_path):
    import re as regex

    from aisdp_log.review.gather import artefact_folder_or_none as artefact_folder

    root = tmp_path / "artefacts"
    (root / "EXP-1").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    anything = regex.compile(".*")
    assert artefact_folder(root, "EXP-1", anything) == (root / "EXP-1").resolve()
    for bad in ("..", "../outside", "/etc", "link", "a/../../outside"):
        assert artefact_folder(root, bad, anything) is None


@pytest.mark.slow
def test_hostile_cells_are_text_in_html_markdown_and_figures(tmp_path):
    hostile = '<img src="https://evil.example/x.png"> $\\frac{a}{b}$ | `x`'
    rows = [row(experiment_id="EXP-001", date="2026-07-01", hypothesis=hostile,
                **{"metrics.acc$x^2$": 0.9, "params.lr": 0.1}),
            row(experiment_id="EXP-002", date="2026-07-02", outcome="selected", notes=hostile,
                **{"metrics.acc$x^2$": 0.95, "params.lr": 0.01})]
    metrics = [{"Metric": "acc$x^2$", "Goal": "max", "Threshold": 0.5, "Description": hostile}]
    log = write_log(tmp_path / "log.xlsx", rows, metrics=metrics)
    result = write_review(log, output_dir=tmp_path / "out")
    html_text = result.html_path.read_text()
    assert "https://evil.example" in html_text  # shown as text ...
    assert '<img src="https' not in html_text      # ... never as markup
    for attribute in re.findall(r'\s(?:src|href)\s*=\s*"([^"]*)"', html_text):
        assert attribute.startswith(("data:", "#"))
    markdown = result.markdown_path.read_text()
    assert "<img" not in markdown and "\\|" in markdown
    assert [p.key for p in result.review.plots] == ["metric-comparison", "parameter-importance"]


@pytest.mark.slow
def test_parameters_that_changed_together_are_one_line_not_ranked_each(tmp_path):
    # as in the demo: each run raised the epochs and the hidden size and lowered the learning
    # rate at once, so the three have the same rank correlation with accuracy (up to sign)
    settings = [(0.1, 5, 16, 0.3), (0.05, 10, 32, 0.1), (0.01, 20, 64, 0.5),
                (0.005, 40, 128, 0.2), (0.001, 80, 256, 0.4)]
    accuracies = [0.80, 0.84, 0.86, 0.89, 0.91]
    rows = [row(experiment_id=f"EXP-00{n}", date=f"2026-07-0{n}",
                **{"params.learning_rate": lr, "params.epochs": epochs,
                   "params.hidden_size": hidden, "params.dropout": dropout,
                   "metrics.accuracy": accuracy})
            for n, ((lr, epochs, hidden, dropout), accuracy)
            in enumerate(zip(settings, accuracies), start=1)]
    log = write_log(tmp_path / "log.xlsx", rows)
    result = write_review(log, output_dir=tmp_path / "out")
    line = "learning_rate, epochs, hidden_size changed together; their effects cannot be separated"
    assert result.review.together == [["learning_rate", "epochs", "hidden_size"]]
    assert {c.param for c in result.review.correlations} == {"dropout"}
    html_text = result.html_path.read_text()
    assert line in _text(html_text)
    for name in ("learning_rate", "epochs", "hidden_size"):
        assert _table_rows(html_text, name) == []
    assert [r[1:3] for r in _table_rows(html_text, "dropout")] == [["accuracy", "5"]]
    markdown = result.markdown_path.read_text()
    assert line in markdown
    assert _md_rows(markdown, "learning_rate") == [] and len(_md_rows(markdown, "dropout")) == 1


# --------------------------------------------------------------------------- speed (issue 25)

@pytest.mark.parametrize("seed", range(40))
def test_rank_correlation_equals_scipy(seed):
    """The review's plain-Python Spearman (no scipy.stats import: about a second of a review)
    gives scipy's rho and p-value, ties and reversed ranks included."""
    import random

    from scipy import stats

    from aisdp_log.review.ranking import rankdata, spearman

    chooser = random.Random(seed)
    n = chooser.randint(3, 25)
    first = [chooser.choice([chooser.random(), round(chooser.random(), 1)]) for _ in range(n)]
    second = [chooser.choice([chooser.random(), float(chooser.randint(1, 3))])
              for _ in range(n)]
    if seed % 5 == 0:
        second = [-value for value in first]  # exactly reversed: rho -1, p 0
    if len(set(first)) < 2 or len(set(second)) < 2:
        first, second = [1.0, 2.0, 2.0], [3.0, 1.0, 2.0]
    expected = stats.spearmanr(first, second)
    rho, p_value = spearman(first, second)
    assert rho == pytest.approx(float(expected.statistic), abs=1e-12)
    assert p_value == pytest.approx(float(expected.pvalue), abs=1e-12)
    assert rankdata(first) == stats.rankdata(first).tolist()


def test_review_imports_neither_scipy_nor_matplotlib_and_draws_the_same(project, tmp_path):
    """A review imports no scipy and no matplotlib (its figures are its own SVG), keeps no
    figure cache, and draws the same HTML from the same rows."""
    import subprocess
    import sys

    code = ("import sys; from aisdp_log.review.write import write_review;"
            f"write_review({str(project.log)!r}, output_dir={str(tmp_path / 'out')!r});"
            "print(sorted(m for m in ('matplotlib', 'scipy') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=project.repo)
    assert run.stdout.strip() == "[]"
    assert not (project.repo / ".aisdp-log" / "figures").exists()
    fresh = write_review(project.log, output_dir=tmp_path / "fresh", sign=None)
    first_html = (tmp_path / "out" / fresh.html_path.name).read_text()
    assert _without_time(first_html) == _without_time(fresh.html_path.read_text())


def test_changed_inputs_draw_new_figures(project, tmp_path):
    first = write_review(project.log, output_dir=tmp_path)
    # another learning curve: other inputs, so other figures
    (project.repo / "artefacts" / "EXP-004" / "history.csv").write_text(
        "epoch,accuracy,loss\n1,0.5,0.9\n2,0.7,0.6\n")
    second = write_review(project.log, output_dir=tmp_path)
    assert first.review.plots[0].svg != second.review.plots[0].svg
    assert first.review.plots[-1].svg == second.review.plots[-1].svg  # same ranks, same map


def _without_time(html_text: str) -> str:
    return re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "", html_text)
