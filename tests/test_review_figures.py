"""The review's figures as the SVG builder draws them: well-formed XML whatever the cells
hold, cell text as text (never markup), round ticks, gaps where a curve has no value, the
Okabe-Ito and outcome colours, and the interval bar where the sheet has one."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from aisdp_log.review import plots, svg
from aisdp_log.review.model import Correlation, Curve, Interval, Metric

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert(1)</script> & "q" \x00 $x^2$ ]]>'


def texts(document: str) -> list[str]:
    root = ET.fromstring(document)  # well-formed, or this raises
    assert root.tag == f"{NS}svg"
    tags = {element.tag.removeprefix(NS) for element in root.iter()}
    assert not tags & {"script", "foreignObject", "image", "a", "use", "style"}
    assert not [k for e in root.iter() for k in e.attrib if k.startswith("on") or "href" in k]
    return [element.text or "" for element in root.iter(f"{NS}text")]


def candidate(experiment_id: str, outcome: str | None, **metrics: float | None):
    return SimpleNamespace(experiment_id=experiment_id, outcome=outcome, metrics=metrics)


def review(**overrides):
    fields = dict(candidates=[], metrics=[], curves={}, intervals=[], correlations=[],
                  together=[], correlation_scope="all runs")
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_cell_text_in_a_figure_is_escaped_text():
    metric = Metric(HOSTILE, "max", 0.5, "", True)
    curves = [Curve(HOSTILE, "acc", [1, 2, 3], [0.1, 0.2, 0.3])]
    plot = plots.learning_curves(metric, curves, {HOSTILE: plots.PALETTE[0]},
                                 {HOSTILE: "selected"})
    shown = texts(plot.svg)
    assert "<script>" not in plot.svg and "\x00" not in plot.svg
    assert any("<script>alert(1)</script> & \"q\"" in t for t in shown)
    comparison = plots.metric_comparison(review(
        candidates=[candidate(HOSTILE, None, **{HOSTILE: 0.7})], metrics=[metric]))
    assert comparison is not None
    assert any(t.startswith("<script>") for t in texts(comparison.svg))
    importance = plots.parameter_importance(review(
        correlations=[Correlation(HOSTILE, HOSTILE, 4, 0.8, 0.2)]))
    assert importance is not None
    assert "ρ = +0.80" in texts(importance.svg)


def test_learning_curves_have_ticks_legend_colours_and_gaps():
    metric = Metric("accuracy", "max", 0.93, "", True)
    curves = [Curve("EXP-1", "accuracy", [1, 2, 3, 4], [0.61, math.nan, 0.9, 0.95]),
              Curve("EXP-2", "accuracy", [1, 2, 3, 4], [0.7, 0.8, 0.85, 0.9])]
    plot = plots.learning_curves(metric, curves,
                                 {"EXP-1": plots.PALETTE[0], "EXP-2": plots.PALETTE[1]},
                                 {"EXP-1": "baseline", "EXP-2": "selected"})
    shown = texts(plot.svg)
    for label in ("epoch", "accuracy", "EXP-1 (baseline)", "EXP-2 (selected)",
                  "threshold 0.93 (max)", "1", "2", "3", "4", "0.7", "0.8", "0.9"):
        assert label in shown, label
    root = ET.fromstring(plot.svg)
    lines = root.findall(f"{NS}polyline")
    # EXP-1 breaks at its missing value: one point alone (a dot), then a line of two
    assert [len(p.get("points").split()) for p in lines] == [2, 4]
    assert lines[0].get("stroke") == plots.PALETTE[0] and lines[0].get("stroke-dasharray")
    assert lines[1].get("stroke") == plots.PALETTE[1] and lines[1].get("stroke-width") == "2.4"


def test_metric_comparison_shows_outcomes_threshold_and_the_interval():
    metric = Metric("accuracy", "max", 0.85, "", True)
    interval = Interval("EXP-2", "2026-07-01", "statistical", "accuracy", 5, 0.9, 0.01, 0.88,
                        0.92, 0.95, 0.85, "pass")
    plot = plots.metric_comparison(review(
        candidates=[candidate("EXP-1", "baseline", accuracy=0.8),
                    candidate("EXP-2", "selected", accuracy=0.91),
                    candidate("EXP-3", None, accuracy=None)],
        metrics=[metric], intervals=[interval]))
    assert plot is not None and "(none recorded" not in plot.caption
    shown = texts(plot.svg)
    for label in ("EXP-1", "EXP-2", "EXP-3", "0.8", "0.91", "threshold 0.85",
                  "accuracy (higher is better)", "selected", "baseline", "rejected",
                  "undecided"):
        assert label in shown, label
    root = ET.fromstring(plot.svg)
    bars = [r for r in root.findall(f"{NS}rect") if r.get("fill-opacity")]
    assert [b.get("fill") for b in bars] == [plots.OUTCOME_COLOURS["selected"]]
    dots = {c.get("fill") for c in root.findall(f"{NS}circle")}
    assert set(plots.OUTCOME_COLOURS.values()) <= dots


def test_no_figure_without_data():
    assert plots.metric_comparison(review(metrics=[Metric("a", "max", None, "", True)],
                                          candidates=[candidate("E", None, a=None)])) is None
    assert plots.parameter_importance(review()) is None


@pytest.mark.parametrize("low, high", [(0.61, 0.98), (0, 40), (-3.2, 7.9), (1e-5, 3e-5),
                                       (100, 100), (0.22, 0.45), (-1, 1)])
def test_ticks_are_round_and_inside_the_axis(low, high):
    scale = svg.scale([low, high], 0, 100)
    assert 2 <= len(scale.ticks) <= 9
    assert all(scale.low - 1e-12 <= t <= scale.high + 1e-12 for t in scale.ticks)
    steps = {round(b - a, 12) for a, b in zip(scale.ticks, scale.ticks[1:])}
    assert len(steps) == 1
    labels = [svg.tick_text(t, scale.ticks) for t in scale.ticks]
    assert len(set(labels)) == len(labels)


def test_rdbu_ends_and_middle():
    assert plots.rdbu(-1) == "#67001f" and plots.rdbu(1) == "#053061"
    assert plots.rdbu(0) == "#f7f7f7" and plots.rdbu(5) == "#053061"
