"""The review's figures, drawn as small self-contained SVG by `review/svg.py` (no matplotlib).

Each figure becomes a `Plot` whose `data_uri` goes straight into an `<img src>`: one file, no
fetches, no scripts, and no id clashes between figures as inline SVGs could have. Cell text
(experiment IDs, metric and parameter names) reaches a figure only through the builder's
escaping `text`. Text is drawn in the reader's sans-serif font.

Drawing the demo's three figures costs about 2 ms, so they are drawn each time a review is
rendered and nothing is cached (matplotlib took ~0.3 s to import and ~0.3 s to draw them; see
`benchmarks/bench_review.py`).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from aisdp_log import spec
from aisdp_log.review import svg
from aisdp_log.review.model import SMALL_N, latest_intervals, together_text

OUTCOME_COLOURS = {"selected": "#1b7f3b", "baseline": "#5f6b7a", "rejected": "#b5403a",
                   None: "#2f6db5"}
#: Colour-blind-safe palette (Okabe-Ito) for per-experiment lines.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")
THRESHOLD = "#b5403a"
#: ColorBrewer's diverging red-blue (matplotlib's "RdBu"), from rho -1 to +1.
RDBU = ("#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7", "#d1e5f0",
        "#92c5de", "#4393c3", "#2166ac", "#053061")
UNDEFINED = "#eceef1"


@dataclass
class Plot:
    key: str
    title: str
    caption: str
    annex: str
    svg: str

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode()).decode()


def draw(review) -> list[Plot]:
    """Every figure the review has data for: learning curves (one per metric with curves),
    the metric comparison, parameter importance."""
    plots: list[Plot] = []
    colours = {c.experiment_id: PALETTE[i % len(PALETTE)]
               for i, c in enumerate(review.candidates)}
    outcomes = {c.experiment_id: c.outcome for c in review.candidates}
    for metric in review.metrics:
        curves = review.curves.get(metric.name) or []
        if curves:
            plots.append(learning_curves(metric, curves, colours, outcomes))
    comparison = metric_comparison(review)
    if comparison is not None:
        plots.append(comparison)
    importance = parameter_importance(review)
    if importance is not None:
        plots.append(importance)
    return plots


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _legend_line(canvas: svg.Canvas, x: float, y: float, colour: str, label: str,
                 width: float = 1.4, dash: str | None = None, marker: bool = False) -> None:
    canvas.line(x, y, x + 22, y, colour, width, dash)
    if marker:
        canvas.circle(x + 11, y, 2.6, colour)
    canvas.text(x + 28, y, label, 10.5, colour=svg.INK, baseline="middle")


def learning_curves(metric, curves, colours: dict, outcomes: dict) -> Plot:
    """One metric's per-epoch values from each candidate's history.csv, overlaid."""
    entries = []
    for curve in curves:
        outcome = outcomes.get(curve.experiment_id)
        entries.append((curve, outcome, svg.shorten(
            f"{curve.experiment_id} ({outcome or 'undecided'})", 40)))
    threshold_label = None if metric.threshold is None else \
        f"threshold {metric.threshold:g} ({metric.goal})"
    labels = [label for _, _, label in entries] + ([threshold_label] if threshold_label else [])
    legend_width = min(300.0, max(svg.text_width(label, 10.5) for label in labels) + 40)
    canvas = svg.Canvas(720, 340)
    left, top, bottom = 72.0, 36.0, 340 - 50.0
    right = canvas.width - legend_width - 14
    points = [(e, v) for c in curves for e, v in zip(c.epochs, c.values)
              if _finite(e) and _finite(v)]
    x = svg.scale([float(e) for e, _ in points], left, right, integer=True, pad=0.03)
    y = svg.scale([float(v) for _, v in points] + ([float(metric.threshold)]
                  if _finite(metric.threshold) else []), bottom, top, pad=0.05)
    svg.y_axis(canvas, y, left, right, svg.shorten(metric.name, 28))
    svg.x_axis(canvas, x, top, bottom, "epoch")
    canvas.text(12, 20, svg.shorten(f"Learning curves: {metric.name}", 60), 13,
                bold=True)
    legend_y = (top + bottom) / 2 - 8.5 * (len(labels) - 1)
    for number, (curve, outcome, label) in enumerate(entries):
        colour = colours.get(curve.experiment_id, "#333")
        width = 2.4 if outcome == "selected" else 1.4
        dash = "5 3" if outcome == "baseline" else None
        marker = len(curve.epochs) <= 30
        segment: list[tuple[float, float]] = []
        for epoch, value in list(zip(curve.epochs, curve.values)) + [(math.nan, math.nan)]:
            if _finite(epoch) and _finite(value):
                segment.append((x(epoch), y(value)))
                continue
            if len(segment) > 1:
                canvas.polyline(segment, colour, width, dash)
            if marker:
                for px, py in segment:
                    canvas.circle(px, py, 2.6, colour)
            segment = []
        _legend_line(canvas, right + 16, legend_y + 17 * number, colour, label, width, dash,
                     marker)
    if threshold_label is not None and _finite(metric.threshold):
        level = y(metric.threshold)
        canvas.line(left, level, right, level, THRESHOLD, 1, "1.5 2")
        _legend_line(canvas, right + 16, legend_y + 17 * len(entries), THRESHOLD,
                     threshold_label, 1, "1.5 2")
    columns = sorted({c.column for c in curves})
    title = f"Learning curves: {metric.name}"
    return Plot(
        f"curves-{metric.name}", title,
        f"Per-epoch {metric.name} from each candidate's history.csv (column "
        f"{', '.join(columns)}); the selected run is drawn thicker, the baseline dashed.",
        spec.ANNEX_VALIDATION, canvas.document(title))


def metric_comparison(review) -> Plot | None:
    """Each candidate's final value per metric, with the statistical reproducibility interval
    where the Reproducibility sheet has one, and the declared threshold."""
    metrics = [m for m in review.metrics
               if any(_finite(c.metrics.get(m.name)) for c in review.candidates)]
    if not metrics:
        return None
    candidates = review.candidates
    statistical = [i for i in review.intervals if i.mode == "statistical"]
    intervals = {c.experiment_id: latest_intervals(statistical, c.experiment_id)
                 for c in candidates}
    labels = [svg.shorten(c.experiment_id, 20) for c in candidates]
    left = 16 + max(svg.text_width(label, 11) for label in labels)
    panel = max(220.0, 90 + 32 * len(candidates))
    canvas = svg.Canvas(720, 30 + panel * len(metrics) + 30)
    right = canvas.width - 60
    canvas.text(12, 18, "Metric comparison", 13, bold=True)
    with_interval = 0
    for index, metric in enumerate(metrics):
        top = 30 + index * panel + 24
        bottom = 30 + (index + 1) * panel - 52
        bars: list[tuple[Any, float, float]] = []
        for candidate in candidates:
            interval = intervals[candidate.experiment_id].get(metric.name.casefold())
            # latest_intervals keeps statistical rows; only those with both ends are bars
            if interval is not None and _finite(interval.low) and _finite(interval.high):
                low, high = float(interval.low), float(interval.high)
                centre = float(interval.mean) if _finite(interval.mean) else \
                    (low + high) / 2
                bars.append((candidate, min(low, centre), max(high, centre)))
        values = [float(c.metrics[metric.name]) for c in candidates
                  if _finite(c.metrics.get(metric.name))]
        values += [end for _, low, high in bars for end in (low, high)]
        if _finite(metric.threshold):
            values.append(float(metric.threshold))
        x = svg.scale(values, left, right, pad=0.05)
        goal = "higher is better" if metric.goal == "max" else "lower is better"
        svg.x_axis(canvas, x, top, bottom, f"{svg.shorten(metric.name, 28)} ({goal})")
        canvas.line(left, top, left, bottom, svg.AXIS, 0.8)
        step = (bottom - top) / len(candidates)
        rows = {c.experiment_id: top + step * (n + 0.5) for n, c in enumerate(candidates)}
        for candidate, label in zip(candidates, labels):
            canvas.text(left - 7, rows[candidate.experiment_id], label, 11, "end",
                        svg.MUTED, baseline="middle")
            canvas.line(left - 4, rows[candidate.experiment_id], left,
                        rows[candidate.experiment_id], svg.AXIS, 0.8)
        for candidate, low, high in bars:
            with_interval += 1
            colour = OUTCOME_COLOURS.get(candidate.outcome, OUTCOME_COLOURS[None])
            row = rows[candidate.experiment_id]
            canvas.rect(x(low), row - 3.5, max(x(high) - x(low), 1.5), 7, colour, 0.35)
        if _finite(metric.threshold):
            level = x(metric.threshold)
            canvas.line(level, top, level, bottom, THRESHOLD, 1, "1.5 2")
            canvas.text(level, top - 5, f"threshold {metric.threshold:g}", 10, "middle",
                        THRESHOLD)
        for candidate in candidates:
            value = candidate.metrics.get(metric.name)
            if not _finite(value):
                continue
            colour = OUTCOME_COLOURS.get(candidate.outcome, OUTCOME_COLOURS[None])
            row = rows[candidate.experiment_id]
            canvas.circle(x(value), row, 4.5, colour, edge="#ffffff")
            canvas.text(x(value) + 7, row - 5, f"{value:.4g}", 10, colour="#333")
    _outcome_legend(canvas, canvas.height - 12)
    caption = ("Final holdout values per candidate (dots, coloured by outcome); the shaded "
               "bar is the statistical reproducibility interval from the Reproducibility sheet"
               + ("" if with_interval else " (none recorded for these candidates)")
               + "; the dotted line is the declared threshold.")
    return Plot("metric-comparison", "Metric comparison", caption, spec.ANNEX_VALIDATION,
                canvas.document("Metric comparison"))


def _outcome_legend(canvas: svg.Canvas, y: float) -> None:
    entries = [(name or "undecided", colour) for name, colour in OUTCOME_COLOURS.items()]
    widths = [svg.text_width(name, 10.5) + 36 for name, _ in entries]
    x = (canvas.width - sum(widths)) / 2
    for (name, colour), width in zip(entries, widths):
        canvas.circle(x + 5, y, 4.5, colour)
        canvas.text(x + 15, y, name, 10.5, baseline="middle")
        x += width


def rdbu(rho: float) -> str:
    """The RdBu colour of a rank correlation in [-1, 1], interpolated between its stops."""
    position = (min(max(rho, -1.0), 1.0) + 1) / 2 * (len(RDBU) - 1)
    index = min(int(position), len(RDBU) - 2)
    share = position - index
    low, high = RDBU[index], RDBU[index + 1]
    channels = (round(int(low[i:i + 2], 16) * (1 - share) + int(high[i:i + 2], 16) * share)
                for i in (1, 3, 5))
    return "#" + "".join(f"{c:02x}" for c in channels)


def parameter_importance(review) -> Plot | None:
    """Spearman rho of each numeric parameter with each metric, as an annotated heat map."""
    correlations = review.correlations
    if not correlations:
        return None
    params = list(dict.fromkeys(c.param for c in correlations))
    metrics = list(dict.fromkeys(c.metric for c in correlations))
    by_pair = {(c.param, c.metric): c for c in correlations}
    param_labels = [svg.shorten(p, 22) for p in params]
    left = 16 + max(svg.text_width(label, 11) for label in param_labels)
    cell_w, cell_h = 130.0, 50.0
    width = min(720.0, left + cell_w * len(metrics) + 130)
    cell_w = (width - left - 130) / len(metrics)
    top = 32.0
    canvas = svg.Canvas(width, top + cell_h * len(params) + 34)
    canvas.text(12, 18, "Parameter importance (Spearman ρ)", 13, bold=True)
    for i, label in enumerate(param_labels):
        canvas.text(left - 7, top + cell_h * (i + 0.5), label, 11, "end", svg.MUTED,
                    baseline="middle")
    for j, metric in enumerate(metrics):
        canvas.text(left + cell_w * (j + 0.5), top + cell_h * len(params) + 16,
                    svg.shorten(metric, 18), 11, "middle", svg.MUTED)
    for i, param in enumerate(params):
        for j, metric in enumerate(metrics):
            item = by_pair.get((param, metric))
            rho = item.rho if item is not None and _finite(item.rho) else None
            cx, cy = left + cell_w * j, top + cell_h * i
            canvas.rect(cx, cy, cell_w, cell_h, UNDEFINED if rho is None else rdbu(rho),
                        edge="#ffffff")
            if item is None:
                continue
            ink = "#ffffff" if rho is not None and abs(rho) > 0.6 else "#222"
            text = "undefined" if rho is None else f"ρ = {rho:+.2f}"
            canvas.text(cx + cell_w / 2, cy + cell_h / 2 - 7, text, 10.5, "middle", ink,
                        baseline="middle")
            canvas.text(cx + cell_w / 2, cy + cell_h / 2 + 8, f"n = {item.n}", 10.5, "middle",
                        ink, baseline="middle")
    _colour_bar(canvas, left + cell_w * len(metrics) + 18, top, top + cell_h * len(params))
    n_max = max(c.n for c in correlations)
    caution = "" if n_max >= SMALL_N else \
        f" Caution: at most {n_max} runs, too few for a reliable rank correlation."
    apart = "".join(f" Not ranked: {together_text(group)}." for group in review.together)
    caption = (f"Rank correlation of each numeric parameter with each metric over "
               f"{review.correlation_scope} (n per cell).{caution}{apart}")
    return Plot("parameter-importance", "Parameter importance", caption, spec.ANNEX_DESIGN,
                canvas.document("Parameter importance"))


def _colour_bar(canvas: svg.Canvas, x: float, top: float, bottom: float) -> None:
    """The heat map's key: RdBu from -1 (bottom) to +1 (top), ticked, labelled."""
    slices = 50
    step = (bottom - top) / slices
    for n in range(slices):  # no gradient: no ids, nothing a reader must resolve
        canvas.rect(x, bottom - step * (n + 1), 12, step + 0.3, rdbu(-1 + 2 * (n + 0.5) / slices))
    canvas.raw(f'<rect x="{svg.number(x)}" y="{svg.number(top)}" width="12" '
               f'height="{svg.number(bottom - top)}" fill="none" stroke="{svg.AXIS}" '
               'stroke-width="0.6"/>')
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        level = bottom - (tick + 1) / 2 * (bottom - top)
        canvas.line(x + 12, level, x + 16, level, svg.AXIS, 0.8)
        canvas.text(x + 19, level, f"{tick:g}", 10.5, colour=svg.MUTED, baseline="middle")
    canvas.text(x + 64, (top + bottom) / 2, "rank correlation", 11, "middle", rotate=True)
