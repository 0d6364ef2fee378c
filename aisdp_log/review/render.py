"""Render a `Review` as one self-contained HTML file (print-ready) and as Markdown.

The documents are Jinja2 templates in `templates/` (jinja2 is imported only when rendering).
Cell text is untrusted: every value a template prints passes through its environment's one
escaping rule, `html_cell` (HTML, with autoescape on besides) or `md_cell` (Markdown, which
GitHub renders as HTML too), so no caller escapes by hand. The HTML references nothing outside
itself: CSS is inline, figures are `data:` URIs, fonts are the reader's own.
"""

from __future__ import annotations

import functools
import html
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

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


TEMPLATES = Path(__file__).resolve().parent / "templates"


def render(review) -> tuple[str, str]:
    """(HTML, Markdown) for `review`; draws the figures once, when they are not drawn yet."""
    if not review.plots:
        review.plots = plots.draw(review)
    return render_html(review), render_markdown(review)


def render_html(review) -> str:
    """The review as one self-contained HTML document."""
    return _environment("html").get_template("review.html.j2").render(_context(review))


def render_markdown(review) -> str:
    """The review as Markdown: the same sections and numbers; figures are in the HTML."""
    text = _environment("markdown").get_template("review.md.j2").render(_context(review))
    return text.rstrip() + "\n"


def render_verify(context: dict) -> str:
    """VERIFY.md of an evidence bundle (see `review/bundle.py` for the context's keys)."""
    return _environment("markdown").get_template("verify.md.j2").render(context)


@functools.cache
def _environment(kind: str):
    """The Jinja2 environment of one document kind, with its one escaping rule as `finalize`
    (applied to every value a template prints); block tags leave no blank lines behind."""
    import jinja2

    html_kind = kind == "html"
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=html_kind,
        finalize=html_cell if html_kind else md_cell, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.globals.update(
        number=number, signed=signed, verdict=verdict, short=short, percent=percent,
        annex_refs=annex_refs, threshold_text=threshold_text, status_text=_status_text,
        delta_word=_delta_word, together_text=together_text)
    if not html_kind:
        environment.filters.update(shell=shell, code=code, codes=codes, powershell=powershell)
    return environment


def _context(review) -> dict:
    first, last = period_bounds(review.period)
    return {
        "review": review, "sections": SECTIONS,
        "sections_by_anchor": {s.anchor: s for s in SECTIONS},
        "annex_text": list(spec.ANNEX_TEXT.values()),
        "first": first, "last": last, "counts": review.counts,
        "generated": review.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "coverage": coverage_text(review), "changes": _changes_lines(review),
        "signature": _signature_lines(review) if review.signoff is not None else None,
        "missing_curves": [m.name for m in review.metrics if not review.curves.get(m.name)],
    }


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


def percent(value) -> str:
    return "—" if value is None else f"{value:.0%}"


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
    lines = {
        "last": None if last is None else
        f"{last.period} signed by {last.name_and_role} at {last.signed_at}",
        "new": changes.new_ids,
        "changed": [(c.experiment_id, c.headers, c.record.period) for c in changes.changed],
        "deleted": [(c.experiment_id, c.record.period) for c in changes.deleted],
        "outcomes": [(c.experiment_id, c.old_outcome, c.new_outcome)
                     for c in changes.outcome_changes],
    }
    # the Markdown's one-line forms (the HTML has tables)
    lines["changed_text"] = "; ".join(f"{i}: {', '.join(h)}" for i, h, _ in lines["changed"])
    lines["outcomes_text"] = "; ".join(f"{i}: {o or 'undecided'} → {n or 'undecided'}"
                                       for i, o, n in lines["outcomes"])
    lines["deleted_text"] = ", ".join(i for i, _ in lines["deleted"])
    return lines


# --------------------------------------------------------------------------- escaping

def html_cell(value):
    """The HTML rule, for every value a template prints: its text (`—` for None), escaped
    with `html.escape` (quotes too, as attribute values need; the same bytes as before the
    templates). Our macros' output is markup already and passes as it is. The result is
    markup, so autoescape does not escape it twice."""
    from markupsafe import Markup

    if isinstance(value, Markup):
        return value
    return Markup(html.escape(text(value), quote=True))


class Verbatim(str):
    """Markdown a filter made safe for its place (a shell-quoted command line, a code span):
    `md_cell` prints it as it is."""


def shell(words) -> Verbatim:
    """A command line from its words, each quoted for a POSIX shell where it needs it, for a
    fenced `sh` block: a file or key name is one argument however it is spelled."""
    return Verbatim(" ".join(shlex.quote(" ".join(str(word).split())) for word in words))


def powershell(value) -> Verbatim:
    """A PowerShell single-quoted string of `value` (a list of words: the Windows command
    line `Start-Process -ArgumentList` passes, each word quoted by Windows' rules)."""
    import subprocess

    words = [" ".join(str(word).split()) for word in value] if isinstance(value, list) \
        else None
    content = subprocess.list2cmdline(words) if words is not None else \
        " ".join(str(value).split())
    return Verbatim("'" + content.replace("'", "''") + "'")


def code(value) -> Verbatim:
    """An inline code span of `value` on one line, fenced with more backticks than it holds,
    so no text can end the span early."""
    content = " ".join(text(value).split())
    fence = "`" * (1 + max((len(run) for run in re.findall("`+", content)), default=0))
    padding = " " if content.startswith("`") or content.endswith("`") else ""
    return Verbatim(f"{fence}{padding}{content}{padding}{fence}")


def codes(values) -> Verbatim:
    """Code spans, comma-separated."""
    return Verbatim(", ".join(code(value) for value in values))


def md_cell(value) -> str:
    """The Markdown rule, for every value a template prints: escaped as HTML, pipes and line
    breaks neutralised, and brackets escaped, so `![](https://...)` in a cell is no image that
    fetches; empty text shows as a dash. A `Verbatim` (a filter's safe output) passes."""
    if isinstance(value, Verbatim):
        return str(value)
    escaped = html.escape(text(value), quote=False)
    for char in "\\|`[]":  # the backslash first, so a typed one cannot undo an escape
        escaped = escaped.replace(char, "\\" + char)
    return " ".join(escaped.split()) or "—"


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
