"""A rerun reads nested metrics (dvclive's `{"eval": {"acc": ...}}`) by the dotted names the
log's `metrics.*` columns use, as `add` and `validate` do: collected, judged statistically and
compared bitwise with the row's own metrics.json."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from aisdp_log.rerun.judge import _metrics_agree, judge_statistical
from aisdp_log.rerun.plan import RowPlan, RunResult
from aisdp_log.rerun.processes import collect
from aisdp_log.spec import MetricSpec

NESTED = {"eval": {"acc": 0.91, "loss": 0.2}, "train": {"acc": 0.97}, "epochs_run": 5,
          "note": "text is not a metric", "flag": True}


def run_folder(folder: Path, metrics: dict) -> RunResult:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "run.json").write_text(json.dumps({"status": "completed"}))
    result = RunResult("EXP-001", 1, "statistical", 7, folder,
                       dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc))
    collect(result)
    return result


def plan_for(artefact_dir: Path) -> RowPlan:
    return RowPlan(2, "EXP-001", "a" * 40, "md5", [], [], 7, {}, artefact_dir, None,
                   {"eval.acc": 0.91}, {"eval.acc": None})


def test_nested_metrics_are_collected_by_their_dotted_names(tmp_path):
    result = run_folder(tmp_path / "run", NESTED)
    assert result.metrics == {"eval.acc": 0.91, "eval.loss": 0.2, "train.acc": 0.97,
                              "epochs_run": 5.0}


def test_a_nested_metric_is_judged_over_every_run(tmp_path):
    runs = [run_folder(tmp_path / f"run{n}", {"eval": {"acc": 0.90 + n / 100}})
            for n in range(3)]
    declared = {"eval.acc": MetricSpec("eval.acc", "max", 0.8)}
    passed, rows, _ = judge_statistical(plan_for(tmp_path), runs, declared, 0.95)
    assert passed
    assert [(row["Metric"], row["Runs"], row["Verdict"]) for row in rows] == [
        ("eval.acc", 3, "pass")]


def test_a_changed_nested_metric_is_named_by_the_bitwise_comparison(tmp_path):
    row_folder = tmp_path / "artefacts" / "EXP-001"
    row_folder.mkdir(parents=True)
    (row_folder / "metrics.json").write_text(json.dumps({"eval": {"acc": 0.91}}))
    result = run_folder(tmp_path / "run", {"eval": {"acc": 0.93}})
    assert _metrics_agree(plan_for(row_folder), result) == ["eval.acc 0.91 → 0.93"]
