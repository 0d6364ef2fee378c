"""Text as a workbook's XML holds it: the shared string table (each string decoded when first
asked for), rich text runs without phonetic hints, and OOXML's `_xHHHH_` escape."""

from __future__ import annotations

import re

from aisdp_log.workbook.xlsx_package import unescape_xml

_T = re.compile(rb"<(?:\w+:)?t\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?t\s*>)", re.DOTALL)
_PHONETIC = re.compile(rb"<(?:\w+:)?rPh\b.*?</(?:\w+:)?rPh\s*>", re.DOTALL)
_SI = re.compile(rb"<(?:\w+:)?si\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?si\s*>)", re.DOTALL)
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def decode_ooxml(text: str) -> str:
    """Undo OOXML's `_xHHHH_` escape, as Excel, LibreOffice and calamine read it."""
    return _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text \
        else text


class SharedStrings:
    """The shared string table, each `<si>` decoded when first asked for: a large sheet's
    table holds hundreds of thousands, and a write reads a few."""

    def __init__(self, text: bytes):
        self._text = text
        self._starts = [m.start() for m in _SI_START.finditer(text)]
        end = re.search(rb"</(?:\w+:)?sst\s*>", text)
        self._starts.append(end.start() if end else len(text))
        self._cache: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._starts) - 1

    def __getitem__(self, index: int) -> str:
        if index not in self._cache:
            if not 0 <= index < len(self):
                raise IndexError(index)
            found = _SI.match(self._text, self._starts[index], self._starts[index + 1])
            self._cache[index] = rich_text(found.group(1) or b"") if found else ""
        return self._cache[index]


_SI_START = re.compile(rb"<(?:\w+:)?si[\s>/]")


def rich_text(inner: bytes) -> str:
    """The text of an `<si>` or `<is>`: its `<t>` runs, without phonetic hints."""
    inner = _PHONETIC.sub(b"", inner)
    return decode_ooxml("".join(unescape_xml(m.group(1) or b"") for m in _T.finditer(inner)))
