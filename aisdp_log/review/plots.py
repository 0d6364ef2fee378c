"""The review's figures, drawn with matplotlib (Agg, no pyplot state) as self-contained SVG.

Each figure becomes a `Plot` whose `data_uri` goes straight into an `<img src>`: one file, no
fetches, and no id clashes between figures as inline SVGs could have. Glyphs are drawn as
paths, so a reader without the font sees the same picture and the PDF prints identically.

Drawing costs more than the rest of a review: importing matplotlib (~0.3 s) and rendering the
SVGs (~0.3 s), against ~0.15 s for a whole `validate`. `draw_cached` keeps the figures of the
last reviews in `<repo>/.aisdp-log/figures/`, keyed on everything they are drawn from (the
figures' inputs, the tool's source, matplotlib's version), so a review redrawn from unchanged
rows imports no matplotlib (`benchmarks/bench_review.py`). A signed review always draws afresh.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aisdp_log import spec
from aisdp_log.artefacts.cache import code_fingerprint
from aisdp_log.errors import WriteRefused
from aisdp_log.review.model import SMALL_N, latest_intervals, together_text
from aisdp_log.system.atomic import write_bytes
from aisdp_log.system.tooldir import tool_dir

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

OUTCOME_COLOURS = {"selected": "#1b7f3b", "baseline": "#5f6b7a", "rejected": "#b5403a",
                   None: "#2f6db5"}
#: Colour-blind-safe palette (Okabe-Ito) for per-experiment lines.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")
STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "path",
    # cell text reaches the figures: `$...$` in it is text, never mathtext to parse
    "text.parse_math": False,
    "svg.hashsalt": "aisdp-log",  # stable ids, so the same log draws the same file
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#8a949e",
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "legend.frameon": False,
    "legend.fontsize": 8,
}


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


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "aisdp-log"})
    return buffer.getvalue()


def _label(text: str, limit: int = 28) -> str:
    # Cell text reaches the figure: keep it short (STYLE keeps `$` from starting mathtext).
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def draw(review) -> list[Plot]:
    """Every figure the review has data for: learning curves (one per metric with curves),
    the metric comparison, parameter importance."""
    import matplotlib

    plots: list[Plot] = []
    with matplotlib.rc_context(STYLE):
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


#: Figures of this many reviews are kept; older files are removed when a new one is written.
KEEP_FIGURES = 16


def draw_cached(review, repo: Path) -> list[Plot]:
    """The review's figures from `repo/.aisdp-log/figures/` when drawn before from the same
    inputs, else drawn (by `draw`) and stored there. A folder that cannot be read or written
    only costs the drawing."""
    folder = tool_dir(repo, create=False) / "figures"
    path = folder / f"{_figures_key(review)}.json"
    try:
        stored = json.loads(path.read_text("utf-8"))
        return [Plot(**item) for item in stored]
    except (OSError, ValueError, TypeError):
        pass
    plots = draw(review)
    try:
        tool_dir(repo)  # made with its `.gitignore` of `*`
        folder.mkdir(exist_ok=True)
        write_bytes(path, json.dumps([asdict(p) for p in plots]).encode("utf-8"))
        kept = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[KEEP_FIGURES:]:
            old.unlink(missing_ok=True)
    except (OSError, WriteRefused):
        pass
    return plots


def _figures_key(review) -> str:
    """A digest of everything `draw` reads, of the tool's source and of matplotlib's version
    (found without importing it)."""
    digest = hashlib.blake2b(code_fingerprint("review-figures").encode(), digest_size=20)
    found = importlib.util.find_spec("matplotlib")
    origin = found.origin if found is not None and found.origin else ""
    try:
        with open(os.path.join(os.path.dirname(origin), "_version.py"), "rb") as fh:
            digest.update(fh.read())
    except OSError:
        digest.update(origin.encode("utf-8", "surrogateescape"))
    inputs = (review.candidates, review.metrics, review.curves, review.intervals,
              review.correlations, review.together, review.correlation_scope, STYLE,
              OUTCOME_COLOURS, PALETTE)
    digest.update(repr(inputs).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def learning_curves(metric, curves, colours: dict, outcomes: dict) -> Plot:
    """One metric's per-epoch values from each candidate's history.csv, overlaid."""
    from matplotlib.ticker import MaxNLocator

    figure = _figure(7.2, 3.4)
    axes = figure.add_subplot()
    for curve in curves:
        outcome = outcomes.get(curve.experiment_id)
        axes.plot(curve.epochs, curve.values, color=colours.get(curve.experiment_id, "#333"),
                  linewidth=2.4 if outcome == "selected" else 1.4,
                  linestyle="--" if outcome == "baseline" else "-",
                  marker="o" if len(curve.epochs) <= 30 else None, markersize=3,
                  label=_label(f"{curve.experiment_id} ({outcome or 'undecided'})", 40))
    if metric.threshold is not None:
        axes.axhline(metric.threshold, color="#b5403a", linewidth=1, linestyle=":",
                     label=f"threshold {metric.threshold:g} ({metric.goal})")
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(_label(metric.name))
    axes.set_title(_label(f"Learning curves: {metric.name}", 60), loc="left")
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    columns = sorted({c.column for c in curves})
    return Plot(
        f"curves-{metric.name}", f"Learning curves: {metric.name}",
        f"Per-epoch {metric.name} from each candidate's history.csv (column "
        f"{', '.join(columns)}); the selected run is drawn thicker, the baseline dashed.",
        spec.ANNEX_VALIDATION, _svg(figure))


def metric_comparison(review) -> Plot | None:
    """Each candidate's final value per metric, with the statistical reproducibility interval
    where the Reproducibility sheet has one, and the declared threshold."""

    metrics = [m for m in review.metrics
               if any(c.metrics.get(m.name) is not None for c in review.candidates)]
    if not metrics:
        return None
    candidates = review.candidates
    statistical = [i for i in review.intervals if i.mode == "statistical"]
    intervals = {c.experiment_id: latest_intervals(statistical, c.experiment_id)
                 for c in candidates}
    height = 0.9 + 0.32 * len(candidates)
    figure = _figure(7.2, max(2.2, height) * len(metrics) if len(metrics) > 1 else
                     max(2.2, height))
    grid = figure.subplots(len(metrics), 1, squeeze=False)
    with_interval = 0
    for axes, metric in zip(grid[:, 0], metrics):
        labels = []
        for position, candidate in enumerate(reversed(candidates)):
            labels.append(_label(candidate.experiment_id, 20))
            value = candidate.metrics.get(metric.name)
            colour = OUTCOME_COLOURS.get(candidate.outcome, OUTCOME_COLOURS[None])
            interval = intervals[candidate.experiment_id].get(metric.name.casefold())
            # latest_intervals keeps only intervals with both ends
            if interval is not None and interval.low is not None and interval.high is not None:
                with_interval += 1
                centre = interval.mean if interval.mean is not None else \
                    (interval.low + interval.high) / 2
                axes.errorbar([centre], [position],
                              xerr=[[max(centre - interval.low, 0)],
                                    [max(interval.high - centre, 0)]],
                              fmt="none", ecolor=colour, elinewidth=5, alpha=0.35,
                              capsize=0)
            if value is not None:
                axes.plot([value], [position], "o", color=colour, markersize=7,
                          markeredgecolor="white", markeredgewidth=0.8)
                axes.annotate(f"{value:.4g}", (value, position), xytext=(6, 4),
                              textcoords="offset points", fontsize=7.5, color="#333")
        axes.set_yticks(range(len(labels)), labels)
        axes.set_ylim(-0.7, len(labels) - 0.3)
        if metric.threshold is not None:
            axes.axvline(metric.threshold, color="#b5403a", linewidth=1, linestyle=":")
            axes.annotate(f"threshold {metric.threshold:g}", (metric.threshold, 1.0),
                          xycoords=("data", "axes fraction"), xytext=(0, 2),
                          textcoords="offset points", fontsize=7.5, color="#b5403a",
                          ha="center", va="bottom")
        goal = "higher is better" if metric.goal == "max" else "lower is better"
        axes.set_xlabel(f"{_label(metric.name)} ({goal})")
        axes.grid(axis="y", visible=False)
    grid[0, 0].set_title("Metric comparison", loc="left", pad=14)
    handles = _outcome_legend()
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    caption = ("Final holdout values per candidate (dots, coloured by outcome); the shaded "
               "bar is the statistical reproducibility interval from the Reproducibility sheet"
               + ("" if with_interval else " (none recorded for these candidates)")
               + "; the dotted line is the declared threshold.")
    return Plot("metric-comparison", "Metric comparison", caption, spec.ANNEX_VALIDATION,
                _svg(figure))


def _outcome_legend():
    from matplotlib.lines import Line2D

    return [Line2D([], [], marker="o", linestyle="", color=colour, label=name or "undecided")
            for name, colour in OUTCOME_COLOURS.items()]


def parameter_importance(review) -> Plot | None:
    """Spearman rho of each numeric parameter with each metric, as an annotated heat map."""
    correlations = review.correlations
    if not correlations:
        return None
    params = list(dict.fromkeys(c.param for c in correlations))
    metrics = list(dict.fromkeys(c.metric for c in correlations))
    by_pair = {(c.param, c.metric): c for c in correlations}
    figure = _figure(min(7.2, 2.6 + 1.5 * len(metrics)), 0.9 + 0.55 * len(params))
    axes = figure.add_subplot()
    grid = [[(by_pair[(p, m)].rho if by_pair[(p, m)].rho is not None else math.nan)
             for m in metrics] for p in params]
    image = axes.imshow(grid, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    for i, param in enumerate(params):
        for j, metric in enumerate(metrics):
            item = by_pair[(param, metric)]
            text = "undefined" if item.rho is None else f"ρ = {item.rho:+.2f}"
            dark = item.rho is not None and abs(item.rho) > 0.6
            axes.text(j, i, f"{text}\nn = {item.n}", ha="center", va="center", fontsize=8,
                      color="white" if dark else "#222")
    axes.set_xticks(range(len(metrics)), [_label(m, 18) for m in metrics])
    axes.set_yticks(range(len(params)), [_label(p, 22) for p in params])
    axes.grid(False)
    axes.set_title("Parameter importance (Spearman ρ)", loc="left")
    figure.colorbar(image, ax=axes, shrink=0.9, label="rank correlation")
    n_max = max(c.n for c in correlations)

    caution = "" if n_max >= SMALL_N else \
        f" Caution: at most {n_max} runs, too few for a reliable rank correlation."

    apart = "".join(f" Not ranked: {together_text(group)}." for group in review.together)
    caption = (f"Rank correlation of each numeric parameter with each metric over "
               f"{review.correlation_scope} (n per cell).{caution}{apart}")
    return Plot("parameter-importance", "Parameter importance", caption, spec.ANNEX_DESIGN,
                _svg(figure))
