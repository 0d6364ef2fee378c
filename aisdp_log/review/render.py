"""Render a `Review` as one self-contained HTML file (print-ready) and as Markdown.

Cell text is untrusted: every value from the workbook passes through `html.escape` (HTML) or
`_md` (Markdown, which GitHub renders as HTML too). The HTML references nothing outside itself:
CSS is inline, figures are `data:` URIs, fonts are the reader's own.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from aisdp_log import spec
from aisdp_log.review import plots
from aisdp_log.review.model import period_bounds, together_text


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    annex: tuple[str, ...]
    answers: str


SECTIONS = (
    Section("summary", "Summary and validation status", (spec.ANNEX_DESIGN, spec.ANNEX_VALIDATION),
            "which runs were tried in the period, what was decided, and whether the records "
            "pass validation"),
    Section("selection", "Selection against declared criteria",
            (spec.ANNEX_DESIGN, spec.ANNEX_VALIDATION),
            "the key design choice (which model) with its rationale, measured against the "
            "declared metrics and thresholds and the baseline"),
    Section("provenance", "Provenance", (spec.ANNEX_DATA, spec.ANNEX_DESIGN),
            "which data version, code, seed and environment produced each model, and whether "
            "the stored model files still match"),
    Section("figures", "Figures", (spec.ANNEX_VALIDATION, spec.ANNEX_DESIGN),
            "learning curves and metric comparison (testing results); parameter importance "
            "(design choices)"),
    Section("reproducibility", "Reproducibility specification", (spec.ANNEX_VALIDATION,),
            "the level of reproducibility achieved, its mechanisms, limits and tolerances"),
    Section("changes", "Changes since the last signed review", (spec.ANNEX_VALIDATION,),
            "that the evidence was not altered after approval, and what was added since"),
    Section("signoff", "Sign-off", (spec.ANNEX_VALIDATION,),
            "test reports dated and signed by the responsible person"),
)


def render(review) -> tuple[str, str]:
    """(HTML, Markdown) for `review`; draws the figures when they are not drawn yet."""

    if not review.plots:
        review.plots = plots.draw(review)
    return render_html(review), render_markdown(review)


# --------------------------------------------------------------------------- formatting

def number(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def signed(value, digits: int = 4) -> str:
    return "—" if value is None else f"{value:+.{digits}g}"


def text(value) -> str:
    if value is None:
        return "—"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def verdict(met) -> str:
    return {True: "met", False: "NOT met", None: "—"}[met]


def short(sha: str | None, length: int = 12) -> str:
    if not sha:
        return "—"
    return sha[:7 + length] + "…" if sha.startswith("sha256:") and len(sha) > 7 + length \
        else sha


def annex_refs(section: Section) -> str:
    return ", ".join(section.annex)


def threshold_text(metric) -> str:
    if metric.threshold is None:
        return "none declared"
    return ("≥ " if metric.goal == "max" else "≤ ") + number(metric.threshold)


def _status_text(status: str) -> str:
    return {"match": "files match", "differs": "FILES DIFFER", "missing": "folder missing",
            "no model file": "no model file", "not checked": "not checked"}.get(status, status)


def _delta_word(better) -> str:
    return {True: "better", False: "worse", None: "equal"}[better]


def _changes_lines(review) -> dict:
    changes = review.changes
    last = changes.last_signoff
    return {
        "last": None if last is None else
        f"{last.period} signed by {last.name_and_role} at {last.signed_at}",
        "new": changes.new_ids,
        "changed": [(c.experiment_id, c.headers, c.record.period) for c in changes.changed],
        "deleted": [(c.experiment_id, c.record.period) for c in changes.deleted],
        "outcomes": [(c.experiment_id, c.old_outcome, c.new_outcome)
                     for c in changes.outcome_changes],
    }


# --------------------------------------------------------------------------- HTML

CSS = """
:root { --ink:#1d2733; --muted:#5b6672; --line:#d9dee4; --soft:#f4f6f8; --accent:#1f3a5f;
        --ok:#1b7f3b; --okbg:#e6f4ea; --bad:#b5403a; --badbg:#fbeaea; --warn:#8a5a00;
        --warnbg:#fff4de; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 14px/1.5 system-ui, -apple-system, "Segoe UI", "Liberation Sans", "DejaVu Sans",
             Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 0 28px 40px; }
header.top { background: var(--accent); color: #fff; padding: 26px 0 20px; margin-bottom: 22px; }
header.top .inner { max-width: 1120px; margin: 0 auto; padding: 0 28px; }
header.top h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: .2px; }
header.top .sub { opacity: .85; font-size: 14px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr max-content 1fr;
          gap: 3px 14px; margin: 16px 0 0; font-size: 12.5px; }
dl.meta dt { opacity: .75; } dl.meta dd { margin: 0; font-family: ui-monospace, "DejaVu Sans Mono",
          Menlo, Consolas, monospace; word-break: break-all; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 5px; border-bottom: 2px solid var(--accent);
     display: flex; justify-content: space-between; align-items: baseline; gap: 12px; }
h2 .annex { font-size: 12px; font-weight: 600; color: var(--accent); background: #e8eef6;
            border-radius: 10px; padding: 2px 9px; white-space: nowrap; }
h3 { font-size: 15px; margin: 22px 0 6px; }
p.note { color: var(--muted); font-size: 12.5px; margin: 4px 0 10px; }
.cards { display: grid; grid-template-columns: repeat(7, 1fr); gap: 10px; margin: 8px 0 14px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; background: var(--soft); }
.card .n { font-size: 24px; font-weight: 700; line-height: 1.1; }
.card .l { font-size: 11.5px; color: var(--muted); text-transform: uppercase; letter-spacing: .4px; }
.card.err .n { color: var(--bad); } .card.ok .n { color: var(--ok); }
.banner { border-radius: 8px; padding: 10px 14px; margin: 0 0 12px; font-size: 13.5px; }
.banner.ok { background: var(--okbg); border: 1px solid #b7dfc3; }
.banner.bad { background: var(--badbg); border: 1px solid #efc2bf; }
.banner.warn { background: var(--warnbg); border: 1px solid #f0d9a8; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 12.5px; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 650; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.mono, span.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
          font-size: 11.5px; word-break: break-all; }
table.fixed { table-layout: fixed; }
table.fixed td { overflow-wrap: anywhere; word-break: break-word; }
.nowrap { white-space: nowrap; }
.badge { display: inline-block; border-radius: 9px; padding: 0 8px; font-size: 11.5px; font-weight: 650;
         white-space: nowrap; }
.badge.ok { color: var(--ok); background: var(--okbg); }
.badge.bad { color: var(--bad); background: var(--badbg); }
.badge.warn { color: var(--warn); background: var(--warnbg); }
.badge.muted { color: var(--muted); background: var(--soft); }
.outcome-selected { color: var(--ok); font-weight: 650; }
.outcome-rejected { color: var(--bad); }
.outcome-baseline { color: var(--muted); font-weight: 650; }
figure { margin: 14px 0 20px; padding: 10px; border: 1px solid var(--line); border-radius: 8px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 6px; }
nav.index table td:first-child a { color: var(--accent); font-weight: 600; text-decoration: none; }
ul.tight { margin: 4px 0 10px; padding-left: 20px; } ul.tight li { margin: 2px 0; }
.repro { border: 1px solid var(--line); border-radius: 8px; padding: 4px 16px 10px; margin: 10px 0 16px; }
footer { margin-top: 36px; padding-top: 10px; border-top: 1px solid var(--line); color: var(--muted);
         font-size: 11.5px; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  header.top { margin-bottom: 12px; padding: 14px 0 12px; }
  header.top .inner { padding: 0 4mm; }
  .cards { grid-template-columns: repeat(7, 1fr); }
  h2 { break-after: avoid; page-break-after: avoid; margin-top: 20px; }
  h3 { break-after: avoid; page-break-after: avoid; }
  table, figure, .repro, .banner, .card { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
  section.figures figure { break-inside: avoid; }
}
"""


def _e(value) -> str:
    return html.escape(text(value), quote=True)


def _outcome(outcome) -> str:
    if outcome is None:
        return '<span class="badge warn">undecided</span>'
    return f'<span class="outcome-{_e(outcome)}">{_e(outcome)}</span>'


def _badge(label: str, kind: str) -> str:
    return f'<span class="badge {kind}">{html.escape(label)}</span>'


def _met_badge(met) -> str:
    return {True: _badge("met", "ok"), False: _badge("NOT met", "bad"),
            None: _badge("—", "muted")}[met]


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(),
           widths: tuple[int, ...] = ()) -> str:
    """`rows` hold HTML already escaped by the caller; `widths` in percent fix the layout."""
    head = "".join(f'<th class="num">{html.escape(h)}</th>' if i in numeric else
                   f"<th>{html.escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(
        f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
        for i, cell in enumerate(row)) + "</tr>" for row in rows)
    if widths:
        columns = "".join(f'<col style="width:{w}%">' for w in widths)
        return (f'<table class="fixed"><colgroup>{columns}</colgroup><thead><tr>{head}</tr>'
                f"</thead><tbody>{body}</tbody></table>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _heading(section: Section) -> str:
    return (f'<h2 id="{section.anchor}"><span>{html.escape(section.title)}</span>'
            f'<span class="annex">Annex IV {html.escape(annex_refs(section))}</span></h2>')


def render_html(review) -> str:
    """The review as one self-contained HTML document."""
    sections = {s.anchor: s for s in SECTIONS}
    parts = [_html_header(review), "<main>", _html_index(),
             _html_summary(review, sections["summary"]),
             _html_selection(review, sections["selection"]),
             _html_provenance(review, sections["provenance"]),
             _html_figures(review, sections["figures"]),
             _html_repro(review, sections["reproducibility"]),
             _html_changes(review, sections["changes"]),
             _html_signoff(review, sections["signoff"]),
             f"<footer>Generated by aisdp-log {_e(review.tool_version)} at "
             f"{_e(review.generated_at.strftime('%Y-%m-%d %H:%M:%S UTC'))} from "
             f"{_e(review.log_path.name)}. This file is self-contained: it fetches nothing."
             "</footer>", "</main>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Model-selection review {_e(review.period)}</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(parts) + "</body></html>\n")


def _html_header(review) -> str:

    first, last = period_bounds(review.period)
    meta = [("Period", f"{review.period} ({first.isoformat()} to {last.isoformat()})"),
            ("Log", str(review.log_path)),
            ("Repository", str(review.repo)),
            ("HEAD commit", review.head_commit or "not a git repository"),
            ("Generated", review.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
            ("Tool", f"aisdp-log {review.tool_version}")]
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    return (f'<header class="top"><div class="inner"><h1>Model-selection review · '
            f'{_e(review.period)}</h1><div class="sub">Evidence for EU AI Act Article 11, '
            f'Annex IV point 2: how the models were developed and why the selected one was '
            f'chosen</div><dl class="meta">{items}</dl></div></header>')


def _html_index() -> str:
    rows = [[f'<a href="#{s.anchor}">{html.escape(s.title)}</a>',
             f'<span class="nowrap">{html.escape(annex_refs(s))}</span>',
             html.escape(s.answers)] for s in SECTIONS]
    annex = "".join(f"<li>{html.escape(t)}</li>" for t in spec.ANNEX_TEXT.values())
    return ('<nav class="index"><h2 id="index"><span>Index: sections and the Annex IV points '
            'they answer</span></h2>' + _table(["Section", "Annex IV", "What it shows"], rows)
            + f'<ul class="tight">{annex}</ul></nav>')


def coverage_text(review) -> str:
    """The validate figure for the whole log (`N of N+M evidence cells verified`), with the
    unverified cells named; empty when the review holds none (built by an older version)."""
    coverage = getattr(review, "coverage", None)
    if coverage is None:
        return ""
    text = f"Verification coverage of the whole log: {coverage.line()}"
    cells = coverage.unverified_cells
    if cells:
        shown = ", ".join(cells[:20]) + (f" and {len(cells) - 20} more" if len(cells) > 20
                                         else "")
        text += f"; unverified: {shown}"
    return text + "."


def _html_summary(review, section: Section) -> str:
    counts = review.counts
    cards = [("runs", counts["runs"], ""), ("selected", counts["selected"], ""),
             ("baselines", counts["baseline"], ""), ("rejected", counts["rejected"], ""),
             ("undecided", counts["undecided"], "err" if counts["undecided"] else ""),
             ("errors", review.errors, "err" if review.errors else "ok"),
             ("warnings", review.warnings, "")]
    card_html = "".join(f'<div class="card {kind}"><div class="n" data-count="{label}">{n}'
                        f'</div><div class="l">{html.escape(label)}</div></div>'
                        for label, n, kind in cards)
    kind = "bad" if review.errors else ("warn" if review.warnings else "ok")
    status = (f"Validation ({html.escape(review.validation_mode)}: "
              f"{_e(review.validation_note)}): <strong>{review.errors} error(s), "
              f"{review.warnings} warning(s)</strong> in the period's rows.")
    parts = [_heading(section), f'<div class="cards">{card_html}</div>',
             f'<div class="banner {kind}">{status}</div>']
    coverage = coverage_text(review)
    if coverage:
        parts.append(f'<p class="note" data-coverage>{_e(coverage)}</p>')
    if review.findings:
        rows = [[_badge(f.severity.value, "bad" if f.severity.value == "error" else "warn"),
                 _e(f.code), f'<span class="mono nowrap">{_e(f.sheet)}!{_e(f.cell)}</span>',
                 _e(f.column), _e(f.experiment_id), _e(f.message)] for f in review.findings]
        parts.append(_table(["Severity", "Code", "Cell", "Column", "Experiment", "Message"],
                            rows))
        parts.append('<p class="note">Findings on rows outside the period are not listed; '
                     '<span class="mono">aisdp-log validate</span> shows them all.</p>')
    else:
        parts.append('<p class="note">No findings on the period\'s rows.</p>')
    return "<section>" + "".join(parts) + "</section>"


def _html_selection(review, section: Section) -> str:
    parts = [_heading(section), "<h3>Declared metrics</h3>"]
    parts.append(_table(
        ["Metric", "Goal", "Threshold", "Description"],
        [[_e(m.name), _e("maximise" if m.goal == "max" else "minimise"),
          _e(threshold_text(m)),
          _e(m.description or ("" if m.declared else "not declared in the Metrics sheet"))]
         for m in review.metrics]))
    parts.append("<h3>Every candidate against the thresholds</h3>")
    headers = ["Experiment", "Date", "Outcome"]
    for metric in review.metrics:
        headers += [metric.name, "threshold"]
    headers.append("All thresholds")
    numeric = {3 + 2 * i for i in range(len(review.metrics))}
    rows = []
    for c in review.candidates:
        row = [f'<span class="mono">{_e(c.experiment_id)}</span>', _e(c.date),
               _outcome(c.outcome)]
        for metric in review.metrics:
            row += [_e(number(c.metrics.get(metric.name))), _met_badge(c.met.get(metric.name))]
        row.append(_met_badge(c.meets_all))
        rows.append(row)
    parts.append(_table(headers, rows, numeric))
    parts.append("<h3>Selected model against the baseline</h3>")
    if review.deltas:
        parts.append(_table(
            ["Selected", "Baseline", "Metric", "Selected value", "Baseline value", "Delta",
             "Direction"],
            [[_e(d.selected), _e(d.baseline), _e(d.metric), _e(number(d.selected_value)),
              _e(number(d.baseline_value)), _e(signed(d.delta)),
              _badge(_delta_word(d.better), {True: "ok", False: "bad", None: "muted"}[d.better])]
             for d in review.deltas], {3, 4, 5}))
    else:
        parts.append('<p class="note">No comparison: the period has no selected row, or no '
                     "baseline (in this or an earlier quarter) with the same metrics.</p>")
    parts.append("<h3>Hypotheses and rationale</h3>")
    parts.append(_table(["Experiment", "Outcome", "Hypothesis", "Rationale (Notes)"],
                        [[f'<span class="mono">{_e(c.experiment_id)}</span>',
                          _outcome(c.outcome), _e(c.hypothesis), _e(c.notes)]
                         for c in review.candidates]))
    return "<section>" + "".join(parts) + "</section>"


def _html_provenance(review, section: Section) -> str:
    rows = []
    for p in review.provenance:
        kind = {"match": "ok", "differs": "bad", "missing": "bad", "no model file": "bad"}.get(
            p.status, "muted")
        status = _badge(_status_text(p.status), kind)
        if p.status == "differs":
            status += f'<br><span class="mono">on disk {_e(short(p.files_hash))}</span>'
        elif p.detail:
            status += f"<br>{_e(p.detail)}"
        rows.append([f'<span class="mono">{_e(p.experiment_id)}</span>',
                     f'<span class="mono">{_e(p.code_commit)}</span>',
                     f'<span class="mono">{_e(p.data_version)}</span>', _e(number(p.seed)),
                     _e(p.environment), f'<span class="mono">{_e(p.artefact_hash)}</span>',
                     status])
    return ("<section>" + _heading(section) +
            f'<p class="note">Artefact files are re-hashed now under '
            f'<span class="mono">{_e(review.artefacts_dir)}</span>/&lt;ID&gt;/ and compared with '
            "the recorded Artefact hash.</p>" +
            _table(["Experiment", "Code commit", "Data version", "Seed", "Environment",
                    "Artefact hash", "Files"], rows, {3},
                   widths=(10, 9, 11, 6, 26, 25, 13)) + "</section>")


def _html_figures(review, section: Section) -> str:
    parts = ['<section class="figures">', _heading(section)]
    if not review.plots:
        parts.append('<p class="note">No figure: no metric values, history.csv files or '
                     "numeric parameters to draw.</p>")
    for plot in review.plots:
        parts.append(f'<figure id="fig-{_e(plot.key)}"><img alt="{_e(plot.title)}" '
                     f'src="{plot.data_uri}"><figcaption><strong>{_e(plot.title)}</strong> '
                     f"(Annex IV {_e(plot.annex)}). {_e(plot.caption)}</figcaption></figure>")
    missing = [m.name for m in review.metrics if not review.curves.get(m.name)]
    if missing:
        parts.append(f'<p class="note">No learning curve for {_e(", ".join(missing))}: no '
                     "candidate's history.csv has that column.</p>")
    parts.append("<h3>Parameter importance, in numbers</h3>")
    if review.correlations:
        parts.append(_table(
            ["Parameter", "Metric", "n", "Spearman ρ", "p-value", "Note"],
            [[_e(c.param), _e(c.metric), str(c.n),
              "undefined" if c.rho is None else _e(signed(c.rho, 3)),
              "—" if c.p_value is None else _e(number(c.p_value, 3)), _e(c.note)]
             for c in review.correlations], {2, 3, 4}))
        parts.append(f'<p class="note">Over {_e(review.correlation_scope)}: '
                     f"{review.correlation_rows} runs.</p>")
    elif not review.together:
        parts.append('<p class="note">No numeric parameter to rank.</p>')

    for group in review.together:
        parts.append(f'<p class="note together">{_e(together_text(group))}.</p>')
    if review.skipped_params:
        parts.append(f'<p class="note">Not ranked (not numeric): '
                     f"{_e(', '.join(review.skipped_params))}.</p>")
    parts.append("</section>")
    return "".join(parts)


def _html_repro(review, section: Section) -> str:
    parts = ["<section>", _heading(section)]
    if not review.repro:
        parts.append('<p class="note">No selected model in the period.</p>')
    for item in review.repro:
        kind = {"bitwise": "ok", "statistical": "ok", "failed": "bad"}.get(item.level, "warn")
        mechanisms = [
            ("Random seed", number(item.seed)), ("Code commit", text(item.code_commit)),
            ("DVC data version", text(item.data_version)),
            ("Environment", text(item.environment)),
            ("Lock file", f"{item.lock_file} {item.lock_hash}" if item.lock_file else
             "none named in the Environment cell")]
        parts.append(f'<div class="repro"><h3><span class="mono">{_e(item.experiment_id)}'
                     f"</span> — level: {_badge(item.level, kind)}</h3>"
                     f"<p>{_e(item.level_detail)}</p>")
        parts.append(_table(["Mechanism", "Recorded value"],
                            [[html.escape(k), f'<span class="mono">{_e(v)}</span>']
                             for k, v in mechanisms]))
        if item.evidence:
            parts.append("<strong>Evidence (sheet Reproducibility)</strong>")
            parts.append(_table(
                ["Date", "Mode", "Metric", "Runs", "Mean", "Std", "CI low", "CI high",
                 "Confidence", "Threshold", "Verdict"],
                [[_e(i.date), _e(i.mode), _e(i.metric), _e(number(i.runs)), _e(number(i.mean)),
                  _e(number(i.std)),
                  _e(number(i.low)), _e(number(i.high)),
                  _e("—" if i.confidence is None else f"{i.confidence:.0%}"),
                  _e(number(i.threshold)),
                  _badge(i.verdict or "—", "ok" if i.verdict == "pass" else "bad")]
                 for i in item.evidence], {3, 4, 5, 6, 7, 8, 9}))
        if item.failed_runs:
            parts.append("<strong>Failed reruns (sheet Reruns; the end of each run's stderr)"
                         "</strong>")
            parts.append(_table(["Run", "stderr ends"],
                                [[f'<span class="mono">{_e(run)}</span>',
                                  f'<pre class="mono">{_e(error or "(nothing on stderr)")}</pre>']
                                 for run, error in item.failed_runs]))
        parts.append("<strong>Tolerance bounds</strong><ul class=\"tight\">" +
                     ("".join(f"<li>{_e(t)}</li>" for t in item.tolerance) or
                      "<li>none established yet: run <span class=\"mono\">aisdp-log rerun "
                      f"LOG --id {_e(item.experiment_id)}</span></li>") + "</ul>")
        parts.append("<strong>Known limits</strong><ul class=\"tight\">" +
                     "".join(f"<li>{_e(t)}</li>" for t in item.limits) + "</ul></div>")
    parts.append("</section>")
    return "".join(parts)


def _html_changes(review, section: Section) -> str:
    lines = _changes_lines(review)
    parts = ["<section>", _heading(section)]
    if lines["last"] is None:
        parts.append('<p class="note">No earlier signed review: every row is new.</p>')
    else:
        parts.append(f"<p>Last signed review: {_e(lines['last'])}.</p>")
    parts.append(f"<h3>New rows ({len(lines['new'])})</h3>")
    parts.append('<p class="mono">' + (_e(", ".join(lines["new"])) or "none") + "</p>")
    parts.append(f"<h3>Signed rows with changed cells ({len(lines['changed'])})</h3>")
    if lines["changed"]:
        parts.append(_table(["Experiment", "Signed in", "Changed columns"],
                            [[_e(i), _e(p), _e(", ".join(h))] for i, h, p in lines["changed"]]))
    else:
        parts.append('<p class="note">None: every signed row still matches its signature.</p>')
    parts.append(f"<h3>Changed outcomes ({len(lines['outcomes'])})</h3>")
    if lines["outcomes"]:
        parts.append(_table(["Experiment", "Signed outcome", "Outcome now"],
                            [[_e(i), _e(o or "undecided"), _e(n or "undecided")]
                             for i, o, n in lines["outcomes"]]))
    else:
        parts.append('<p class="note">None.</p>')
    if lines["deleted"]:
        parts.append(f"<h3>Signed rows no longer in the log ({len(lines['deleted'])})</h3>")
        parts.append(_table(["Experiment", "Signed in"],
                            [[_e(i), _e(p)] for i, p in lines["deleted"]]))
    parts.append("</section>")
    return "".join(parts)


def _signature_lines(review) -> dict:
    """What the sign-off section says about the signature: the key and whether it verifies
    (known before signing: the review's own sha256 is part of what is signed)."""
    info = review.signature
    if info is None or info.key is None:
        return {"trusted": False, "key": "Not cryptographically signed (no SSH key):",
                "verifies": "anyone who can edit the log could have written this sign-off; "
                            "aisdp-log verify reports it as R010."}
    key = f"Signed with SSH key {info.key} (statement {info.statement_file}, signature " \
          f"{info.statement_file}.sig)."
    if info.allowed is None:
        return {"trusted": False, "key": key,
                "verifies": "No allowed signers file is configured, so whether this key "
                            "belongs to the signer was not checked."}
    if not info.principals:
        return {"trusted": False, "key": key,
                "verifies": f"The allowed signers ({info.allowed}) do not list this key: "
                            "aisdp-log verify will report R008 (untrusted signer)."}
    return {"trusted": True, "key": key,
            "verifies": f"The allowed signers list this key for {', '.join(info.principals)}: "
                        "aisdp-log verify and ssh-keygen -Y verify accept it."}


def _html_signoff(review, section: Section) -> str:
    parts = ["<section>", _heading(section)]
    record = review.signoff
    if record is None:
        parts.append('<div class="banner warn">Not signed. <span class="mono">aisdp-log review '
                     f'LOG --period {_e(review.period)} --sign "Name, Role"</span> records the '
                     "approval and the hash of every reviewed row in sheet Sign-off.</div>")
    else:
        lines = _signature_lines(review)
        banner = "ok" if lines["trusted"] else "warn"
        parts.append(f'<div class="banner {banner}">Signed by <strong>'
                     f"{_e(record.name_and_role)}</strong> at {_e(record.signed_at)} for "
                     f"{_e(record.period)}: {len(record.hashes)} rows, recorded in sheet "
                     f"Sign-off. {_e(lines['key'])} {_e(lines['verifies'])}</div>")
        parts.append(_table(["Experiment", "Row sha256"],
                            [[_e(i), f'<span class="mono">{_e(h["row"])}</span>']
                             for i, h in record.hashes.items()]))
    if review.signoff_history:
        parts.append("<h3>Earlier sign-offs of this log</h3>")
        parts.append(_table(["Period", "Signed by", "Signed at", "Signature"],
                            [[_e(p), _e(n), _e(a), _e(v)]
                             for p, n, a, v in review.signoff_history]))
    parts.append('<p class="note">A later edit of a signed row (except the tool-written '
                 "Reproducibility cell and the Rerun mark) makes <span class=\"mono\">aisdp-log "
                 "validate</span> report R006 at the changed cell.</p></section>")
    return "".join(parts)


# --------------------------------------------------------------------------- Markdown

def _md(value) -> str:
    """Cell text for a Markdown table: escaped as HTML, pipes and line breaks neutralised,
    and brackets escaped, so `![](https://...)` in a cell is no image that fetches."""
    escaped = html.escape(text(value), quote=False)
    for char in "\\|`[]":  # the backslash first, so a typed one cannot undo an escape
        escaped = escaped.replace(char, "\\" + char)
    return " ".join(escaped.split()) or "—"


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _md_heading(section: Section) -> str:
    return f"## {section.title} (Annex IV {annex_refs(section)})"


def render_markdown(review) -> str:
    """The review as Markdown: the same sections and numbers; figures are in the HTML."""

    first, last = period_bounds(review.period)
    counts = review.counts
    s = {x.anchor: x for x in SECTIONS}
    out = [f"# Model-selection review {review.period}", "",
           f"- Period: {review.period} ({first.isoformat()} to {last.isoformat()})",
           f"- Log: {_md(review.log_path)}",
           f"- Repository: {_md(review.repo)} at commit {_md(review.head_commit)}",
           f"- Generated: {review.generated_at.strftime('%Y-%m-%d %H:%M:%S UTC')} by aisdp-log "
           f"{review.tool_version}", ""]
    out.append("## Index")
    out.append("")
    out += _md_table(["Section", "Annex IV", "What it shows"],
                     [[x.title, annex_refs(x), x.answers] for x in SECTIONS])
    out += [f"- {t}" for t in spec.ANNEX_TEXT.values()] + [""]

    out += [_md_heading(s["summary"]), ""]
    out += _md_table(["Runs", "Selected", "Baselines", "Rejected", "Undecided", "Errors",
                      "Warnings"],
                     [[str(counts["runs"]), str(counts["selected"]), str(counts["baseline"]),
                       str(counts["rejected"]), str(counts["undecided"]), str(review.errors),
                       str(review.warnings)]])
    out.append(f"Validation ({review.validation_mode}: {_md(review.validation_note)}): "
               f"{review.errors} error(s), {review.warnings} warning(s) in the period's rows.")
    if coverage_text(review):
        out += ["", _md(coverage_text(review))]
    out.append("")
    if review.findings:
        out += _md_table(["Severity", "Code", "Cell", "Column", "Experiment", "Message"],
                         [[f.severity.value, f.code, _md(f"{f.sheet}!{f.cell}"), _md(f.column),
                           _md(f.experiment_id), _md(f.message)] for f in review.findings])

    out += [_md_heading(s["selection"]), "", "### Declared metrics", ""]
    out += _md_table(["Metric", "Goal", "Threshold", "Description"],
                     [[_md(m.name), m.goal, threshold_text(m), _md(m.description)]
                      for m in review.metrics])
    out += ["### Every candidate against the thresholds", ""]
    headers = ["Experiment", "Date", "Outcome"]
    for metric in review.metrics:
        headers += [_md(metric.name), "threshold"]
    headers.append("All thresholds")
    rows = []
    for c in review.candidates:
        row = [_md(c.experiment_id), _md(c.date), _md(c.outcome or "undecided")]
        for metric in review.metrics:
            row += [number(c.metrics.get(metric.name)), verdict(c.met.get(metric.name))]
        rows.append(row + [verdict(c.meets_all)])
    out += _md_table(headers, rows)
    out += ["### Selected model against the baseline", ""]
    if review.deltas:
        out += _md_table(["Selected", "Baseline", "Metric", "Selected value", "Baseline value",
                          "Delta", "Direction"],
                         [[_md(d.selected), _md(d.baseline), _md(d.metric),
                           number(d.selected_value), number(d.baseline_value), signed(d.delta),
                           _delta_word(d.better)] for d in review.deltas])
    else:
        out += ["No comparison: no selected row, or no baseline with the same metrics.", ""]
    out += ["### Hypotheses and rationale", ""]
    out += _md_table(["Experiment", "Outcome", "Hypothesis", "Rationale (Notes)"],
                     [[_md(c.experiment_id), _md(c.outcome or "undecided"), _md(c.hypothesis),
                       _md(c.notes)] for c in review.candidates])

    out += [_md_heading(s["provenance"]), ""]
    out += _md_table(["Experiment", "Code commit", "Data version", "Seed", "Environment",
                      "Artefact hash", "Files"],
                     [[_md(p.experiment_id), _md(p.code_commit), _md(p.data_version),
                       number(p.seed), _md(p.environment), _md(p.artefact_hash),
                       _md(_status_text(p.status) + (f" ({p.detail})" if p.detail else ""))]
                      for p in review.provenance])

    out += [_md_heading(s["figures"]), "",
            f"Figures ({len(review.plots)}) are embedded in review-{review.period}.html: "
            + "; ".join(_md(p.title) for p in review.plots) + ".", ""]
    out += ["### Parameter importance (Spearman rank correlation)", ""]
    if review.correlations:
        out += _md_table(["Parameter", "Metric", "n", "Spearman ρ", "p-value", "Note"],
                         [[_md(c.param), _md(c.metric), str(c.n),
                           "undefined" if c.rho is None else signed(c.rho, 3),
                           "—" if c.p_value is None else number(c.p_value, 3), _md(c.note)]
                          for c in review.correlations])
        out += [f"Over {review.correlation_scope}: {review.correlation_rows} runs.", ""]

    for group in review.together:
        out += [_md(together_text(group)) + ".", ""]
    if review.skipped_params:
        out += [f"Not ranked (not numeric): {_md(', '.join(review.skipped_params))}.", ""]

    out += [_md_heading(s["reproducibility"]), ""]
    if not review.repro:
        out += ["No selected model in the period.", ""]
    for item in review.repro:
        out += [f"### {_md(item.experiment_id)}: {item.level}", "", _md(item.level_detail), ""]
        out += _md_table(["Mechanism", "Recorded value"],
                         [["Random seed", number(item.seed)],
                          ["Code commit", _md(item.code_commit)],
                          ["DVC data version", _md(item.data_version)],
                          ["Environment", _md(item.environment)],
                          ["Lock file", _md(f"{item.lock_file} {item.lock_hash}"
                                            if item.lock_file else "none named")]])
        if item.evidence:
            out += ["Evidence (sheet Reproducibility):", ""]
            out += _md_table(["Date", "Mode", "Metric", "Runs", "Mean", "Std", "CI low",
                              "CI high", "Confidence", "Threshold", "Verdict"],
                             [[_md(i.date), _md(i.mode), _md(i.metric), number(i.runs), number(i.mean), number(i.std),
                               number(i.low), number(i.high),
                               "—" if i.confidence is None else f"{i.confidence:.0%}",
                               number(i.threshold), _md(i.verdict)] for i in item.evidence])
        if item.failed_runs:
            out += ["Failed reruns (sheet Reruns; the end of each run's stderr):", ""]
            out += _md_table(["Run", "stderr ends"],
                             [[_md(run), _md(" / ".join((error or "(nothing on stderr)")
                                                        .splitlines()))]
                              for run, error in item.failed_runs])
        out += ["Tolerance bounds:", ""]
        out += [f"- {_md(t)}" for t in item.tolerance] or \
            [f"- none established yet: run `aisdp-log rerun LOG --id {_md(item.experiment_id)}`"]
        out += ["", "Known limits:", ""] + [f"- {_md(t)}" for t in item.limits] + [""]

    lines = _changes_lines(review)
    out += [_md_heading(s["changes"]), ""]
    out += [f"Last signed review: {_md(lines['last'])}." if lines["last"] else
            "No earlier signed review: every row is new.", ""]
    changed = "; ".join(f"{i}: {', '.join(h)}" for i, h, _ in lines["changed"])
    outcomes = "; ".join(f"{i}: {o or 'undecided'} → {n or 'undecided'}"
                         for i, o, n in lines["outcomes"])
    deleted = ", ".join(i for i, _ in lines["deleted"])
    out += [f"- New rows ({len(lines['new'])}): {_md(', '.join(lines['new']) or 'none')}",
            f"- Changed signed rows ({len(lines['changed'])}): {_md(changed or 'none')}",
            f"- Changed outcomes ({len(lines['outcomes'])}): {_md(outcomes or 'none')}",
            f"- Signed rows no longer in the log ({len(lines['deleted'])}): "
            f"{_md(deleted or 'none')}", ""]

    out += [_md_heading(s["signoff"]), ""]
    record = review.signoff
    if record is None:
        out += [f"Not signed. `aisdp-log review LOG --period {review.period} --sign "
                "\"Name, Role\"` records the approval.", ""]
    else:
        lines = _signature_lines(review)
        out += [f"Signed by {_md(record.name_and_role)} at {_md(record.signed_at)} for "
                f"{_md(record.period)}: {len(record.hashes)} rows (sheet Sign-off). "
                f"{_md(lines['key'])} {_md(lines['verifies'])}", ""]
        out += _md_table(["Experiment", "Row sha256"],
                         [[_md(i), _md(h["row"])] for i, h in record.hashes.items()])
    if review.signoff_history:
        out += ["", "Earlier sign-offs of this log:", ""]
        out += _md_table(["Period", "Signed by", "Signed at", "Signature"],
                         [[_md(p), _md(n), _md(a), _md(v)]
                          for p, n, a, v in review.signoff_history])
    return "\n".join(out).rstrip() + "\n"
