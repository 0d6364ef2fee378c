"""Cut a worksheet's XML into the sheet without its rows and the rows of `<sheetData>`, so a
large sheet is not parsed whole to append one row: lxml parses the rest and each row a write
reads or changes, and rows nobody touches keep their bytes.

Each row cut is an element whose end tag is the first `</name` after its start tag (quoted
values skipped): rows do not nest, and without comments or CDATA every `<` starts a tag. Where
the rows hold anything but elements and white space, or a row's start tag a single-quoted value
or a reference, the cut gives up and the caller parses the sheet whole; lxml checks every cut
(the rows' placeholder must land as the only child of the worksheet's `<sheetData>`)."""

from __future__ import annotations

from dataclasses import dataclass

_SPACE = b" \t\r\n"


@dataclass
class RawRow:
    number: int | None  # its `r`, None where it has none
    start: int  # where the element starts in the sheet's bytes
    end: int  # just after it


@dataclass
class Cut:
    """The sheet's bytes cut at `<sheetData>`'s content: `data[:start]` ends with its start
    tag, `data[end:]` starts with its end tag."""
    start: int
    end: int
    rows: list[RawRow]


def tag_end(data: bytes, at: int) -> int:
    """Just after the `>` closing the tag that starts at `at`, skipping quoted values."""
    position = at
    while True:
        close = data.find(b">", position)
        if close < 0:
            return -1
        quotes = [q for q in (data.find(b'"', position, close), data.find(b"'", position, close))
                  if q >= 0]
        if not quotes:
            return close + 1
        quote = min(quotes)
        position = data.find(data[quote:quote + 1], quote + 1) + 1
        if position <= 0:
            return -1


def _qname(data: bytes, at: int) -> bytes:
    end = at + 1
    while end < len(data) and data[end:end + 1] not in b" \t\r\n/>":
        end += 1
    return data[at + 1:end]


def find_sheet_data(data: bytes) -> tuple[int, int, bytes] | None:
    """(start, end) of the first `<sheetData>` (any prefix) start tag and its qualified name;
    None where there is none. A look-alike inside a comment or CDATA section before it is
    caught by the caller, which checks where lxml puts the rows' placeholder."""
    at = data.find(b"sheetData")
    while at > 0:
        start = data.rfind(b"<", 0, at)
        name = data[start + 1:at + len(b"sheetData")]
        if start >= 0 and data[at + 9:at + 10] in _DELIMITERS and \
                (name == b"sheetData" or name[:-9].rstrip(b":").isalnum() and name[-10:-9] == b":"):
            end = tag_end(data, start)
            return (start, end, name) if end > 0 else None
        at = data.find(b"sheetData", at + 1)
    return None


def _first_markup(data: bytes, start: int, mark: bytes) -> int:
    """Where the first `<` + `mark` (`!`: comment, CDATA; `?`: PI) after `start` is, or
    len(data). `mark` alone is rare in a sheet and found at memchr speed; `<` is everywhere."""
    at = data.find(mark, start)
    while at > 0 and data[at - 1:at] != b"<":
        at = data.find(mark, at + 1)
    return at - 1 if at > 0 else len(data)


def _number(head: bytes) -> int | None:
    """A row start tag's `r` (0: the tag is not read this way, so the sheet is parsed
    whole): its values double-quoted, no reference in them."""
    if b"'" in head or b"&" in head:
        return 0
    parts = head.split(b'"')
    value = next((parts[i + 1] for i in range(0, len(parts) - 1, 2)
                  if parts[i].rstrip(b"= \t\r\n").rsplit(None, 1)[-1] == b"r"), b"")
    return int(value) if value.strip().isdigit() else None


def cut_rows(data: bytes) -> Cut | None:
    """The rows of the sheet XML `data`, or None where the rows cannot be cut exactly."""
    found = find_sheet_data(data)
    if found is None:
        return None
    tag_start, position, qname = found
    if data[position - 2:position] == b"/>":
        return None  # <sheetData/>: nothing to cut, the sheet is small
    # Rows must end before the first comment, CDATA section or PI after <sheetData>.
    limit = min(_first_markup(data, position, b"!"), _first_markup(data, position, b"?"))
    rows: list[RawRow] = []
    closing = b"</" + qname
    name = b""
    while True:
        start = data.find(b"<", position)
        if start < 0 or start >= limit or data[position:start].strip(_SPACE):
            return None  # text or markup between rows
        if data.startswith(closing, start):
            after = data[start + len(closing):start + len(closing) + 1]
            return Cut(found[1], start, rows) if after in (b">", b" ", b"\t",
                                                                         b"\r", b"\n") else None
        if data[start + 1:start + 2] == b"/":
            return None  # a stray end tag
        head_end = tag_end(data, start)
        if head_end < 0:
            return None
        head = data[start:head_end]
        if not (name and head.startswith(name) and head[len(name):len(name) + 1] in _DELIMITERS):
            name = b"<" + _qname(data, start)
        if head.endswith(b"/>"):
            end = head_end
        else:
            close = data.find(b"</" + name[1:], head_end)
            end = data.find(b">", close) + 1
            if close < 0 or end <= 0 or end > limit or \
                    data[close + 1 + len(name):end - 1].strip(_SPACE):
                return None
        number = _number(head)
        if number == 0:
            return None
        rows.append(RawRow(number, start, end))
        position = end


_DELIMITERS = (b" ", b">", b"/", b"\t", b"\r", b"\n")
