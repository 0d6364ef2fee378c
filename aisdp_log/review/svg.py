"""A small SVG builder for the review's figures: shapes, escaped text, axes with "nice" ticks.

Every string that reaches the drawing goes through `text` (or `title`), which escapes it for
XML and drops the characters XML cannot hold, so cell text is always text, never markup. The
builder knows nothing about reviews; `plots` draws the figures with it.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field

FONT = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"
INK = "#222"
MUTED = "#555"
AXIS = "#8a949e"
GRID = "#e3e6ea"
#: XML 1.0 has no place for these (controls other than tab and newlines; lone surrogates).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(value: object) -> str:
    """Text as XML character data or an attribute value: markup characters escaped, and
    characters XML cannot carry replaced by U+FFFD."""
    return html.escape(_NOT_XML.sub("\ufffd", str(value)), quote=True)


def number(value: float) -> str:
    """A coordinate, short and exact enough (0.01 px)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def text_width(text: str, size: float) -> float:
    """About how wide `text` is at font size `size` (DejaVu Sans averages 0.6 em a glyph)."""
    return len(text) * size * 0.6


def shorten(text: object, limit: int) -> str:
    """Cell text on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


@dataclass
class Canvas:
    """One SVG document of `width` x `height` px, built element by element."""

    width: float
    height: float
    parts: list[str] = field(default_factory=list)

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str, width: float = 1,
             dash: str | None = None, opacity: float | None = None) -> None:
        extra = (f' stroke-dasharray="{dash}"' if dash else "") + \
            (f' stroke-opacity="{opacity}"' if opacity is not None else "")
        self.parts.append(
            f'<line x1="{number(x1)}" y1="{number(y1)}" x2="{number(x2)}" y2="{number(y2)}" '
            f'stroke="{colour}" stroke-width="{number(width)}"{extra}/>')

    def polyline(self, points: list[tuple[float, float]], colour: str, width: float = 1.4,
                 dash: str | None = None) -> None:
        coordinates = " ".join(f"{number(x)},{number(y)}" for x, y in points)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{colour}" '
            f'stroke-width="{number(width)}" stroke-linejoin="round"{extra}/>')

    def circle(self, x: float, y: float, radius: float, colour: str,
               edge: str | None = None) -> None:
        extra = f' stroke="{edge}" stroke-width="0.8"' if edge else ""
        self.parts.append(f'<circle cx="{number(x)}" cy="{number(y)}" r="{number(radius)}" '
                          f'fill="{colour}"{extra}/>')

    def rect(self, x: float, y: float, width: float, height: float, colour: str,
             opacity: float | None = None, edge: str | None = None) -> None:
        extra = (f' fill-opacity="{opacity}"' if opacity is not None else "") + \
            (f' stroke="{edge}" stroke-width="0.6"' if edge else "")
        self.parts.append(f'<rect x="{number(x)}" y="{number(y)}" width="{number(width)}" '
                          f'height="{number(height)}" fill="{colour}"{extra}/>')

    def text(self, x: float, y: float, content: object, size: float = 9, anchor: str = "start",
             colour: str = INK, bold: bool = False, rotate: bool = False,
             baseline: str = "auto") -> None:
        """`content` as escaped text; `baseline` "middle" centres it on `y`."""
        extra = (' font-weight="bold"' if bold else "") + \
            (f' transform="rotate(-90 {number(x)} {number(y)})"' if rotate else "") + \
            (' dominant-baseline="central"' if baseline == "middle" else "")
        self.parts.append(f'<text x="{number(x)}" y="{number(y)}" font-size="{number(size)}" '
                          f'text-anchor="{anchor}" fill="{colour}"{extra}>'
                          f'{escape(content)}</text>')

    def raw(self, element: str) -> None:
        """An element built by the caller from constants and numbers only (no cell text)."""
        self.parts.append(element)

    def document(self, title: str) -> str:
        """The SVG document, with `title` as its accessible name."""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{number(self.width)}" '
                f'height="{number(self.height)}" viewBox="0 0 {number(self.width)} '
                f'{number(self.height)}" font-family="{FONT}" role="img">'
                f'<title>{escape(title)}</title>'
                f'<rect width="100%" height="100%" fill="#ffffff"/>'
                + "".join(self.parts) + "</svg>\n")


@dataclass(frozen=True)
class Scale:
    """A linear map from data values `low`..`high` to pixels `start`..`end`, with its ticks."""

    low: float
    high: float
    start: float
    end: float
    ticks: tuple[float, ...]

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        return self.start + (value - self.low) / span * (self.end - self.start)


def nice_ticks(low: float, high: float, count: int = 7,
               integer: bool = False) -> tuple[float, ...]:
    """Round tick values (1, 2, 2.5 or 5 x 10^k apart) inside `low`..`high`."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return (low,) if math.isfinite(low) else ()
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    first = math.ceil(low / step - 1e-9)
    return tuple(round((first + n) * step, 12)
                 for n in range(int((high - low) / step) + 2)
                 if (first + n) * step <= high + step * 1e-9)


def scale(values: list[float], start: float, end: float, integer: bool = False,
          pad: float = 0.05) -> Scale:
    """A scale over `values` (finite ones), widened by `pad` of their span on both sides (as
    matplotlib's margins), with round ticks inside it."""
    finite = [v for v in values if math.isfinite(v)] or [0.0, 1.0]
    low, high = min(finite), max(finite)
    if high == low:
        half = abs(low) * 0.05 or 0.5
        low, high = low - half, high + half
    span = high - low
    low, high = low - span * pad, high + span * pad
    return Scale(low, high, start, end, nice_ticks(low, high, integer=integer))


def tick_text(value: float, ticks: tuple[float, ...]) -> str:
    """A tick label with as many decimals as the tick step needs (all ticks alike)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    if step < 1e-3 or max(abs(t) for t in ticks) >= 1e6:
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-9:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


def x_axis(canvas: Canvas, x: Scale, top: float, bottom: float, label: str = "",
           grid: bool = True) -> None:
    """Bottom axis of a plot area spanning `top`..`bottom`: grid, line, ticks, labels."""
    for tick in x.ticks:
        position = x(tick)
        if grid:
            canvas.line(position, top, position, bottom, GRID, 0.6)
        canvas.line(position, bottom, position, bottom + 4, AXIS, 0.8)
        canvas.text(position, bottom + 17, tick_text(tick, x.ticks), 11, "middle", MUTED)
    canvas.line(x.start, bottom, x.end, bottom, AXIS, 0.8)
    if label:
        canvas.text((x.start + x.end) / 2, bottom + 36, label, 12, "middle")


def y_axis(canvas: Canvas, y: Scale, left: float, right: float, label: str = "") -> None:
    """Left axis of a plot area spanning `left`..`right`: grid, line, ticks, labels."""
    for tick in y.ticks:
        position = y(tick)
        canvas.line(left, position, right, position, GRID, 0.6)
        canvas.line(left - 4, position, left, position, AXIS, 0.8)
        canvas.text(left - 7, position, tick_text(tick, y.ticks), 11, "end", MUTED,
                    baseline="middle")
    canvas.line(left, y.end, left, y.start, AXIS, 0.8)
    if label:
        canvas.text(left - 50, (y.start + y.end) / 2, label, 12, "middle", rotate=True)
