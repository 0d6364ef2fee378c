"""Cut a worksheet's XML into the sheet without its rows and the rows of `<sheetData>`, so a
large sheet is not parsed whole to append one row.

lxml parses the rest of the sheet (every element but the rows) and each row the writer reads
or changes; rows nobody touches keep their bytes. The cut itself follows XML's grammar: it
skips comments, CDATA sections, processing instructions and quoted attribute values (which may
hold `>`) before `<sheetData>`, and where the rows hold anything but elements and white space
(a comment, a CDATA section: then a `<` need not start a tag) it gives up, and the caller
parses the whole sheet with lxml instead. Every row it cuts is an element whose end tag is the
first `</name` after its start tag: inside a row without comments or CDATA every `<` starts a
tag (text and attribute values cannot hold a raw `<`), and rows do not nest.
"""

from __future__ import annotations

from dataclasses import dataclass

_SPACE = b" \t\r\n"
_SKIPS = ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>"), (b"<!", b">"))
_REFERENCES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


@dataclass
class RawRow:
    number: int | None  # its `r`, None where it has none
    start: int  # where the element starts in the sheet's bytes
    end: int  # just after it


@dataclass
class Cut:
    """The sheet's bytes cut at `<sheetData>`'s content: `data[:start]` ends with its start
    tag (`self_closing`: it was `<sheetData/>`), `data[end:]` starts with its end tag."""
    start: int
    end: int
    qname: bytes
    self_closing: bool
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


def attributes(tag: bytes) -> dict[str, str]:
    """The attributes of one start tag (`<name a="1" b='2'>`), their references resolved."""
    found: dict[str, str] = {}
    position = len(_qname(tag, 0)) + 1
    while True:
        equals = tag.find(b"=", position)
        if equals < 0:
            return found
        name = tag[position:equals].strip(_SPACE).decode("utf-8", "replace")
        start = equals + 1
        while tag[start:start + 1] in (b" ", b"\t", b"\r", b"\n"):
            start += 1
        quote = tag[start:start + 1]
        end = tag.find(quote, start + 1) if quote in (b'"', b"'") else -1
        if end < 0:
            return found
        found[name] = resolve_references(tag[start + 1:end].decode("utf-8", "replace"))
        position = end + 1


def resolve_references(text: str) -> str:
    if "&" not in text:
        return text
    pieces = text.split("&")
    out = [pieces[0]]
    for piece in pieces[1:]:
        name, semicolon, rest = piece.partition(";")
        if semicolon and name.startswith("#x"):
            out.append(chr(int(name[2:], 16)) + rest)
        elif semicolon and name.startswith("#"):
            out.append(chr(int(name[1:])) + rest)
        elif semicolon and name in _REFERENCES:
            out.append(_REFERENCES[name] + rest)
        else:
            out.append("&" + piece)
    return "".join(out)


def find_sheet_data(data: bytes) -> tuple[int, int, bytes] | None:
    """(start, end) of `<sheetData>`'s start tag and its qualified name, found by walking
    the markup before it; None where there is none."""
    position = data.find(b"<")
    while 0 <= position < len(data):
        for opening, closing in _SKIPS:
            if data.startswith(opening, position):
                end = data.find(closing, position + len(opening))
                if end < 0:
                    return None
                position = data.find(b"<", end + len(closing))
                break
        else:
            end = tag_end(data, position)
            if end < 0:
                return None
            name = _qname(data, position)
            if name.rpartition(b":")[2] == b"sheetData" and not name.startswith(b"/"):
                return position, end, name
            position = data.find(b"<", end)
    return None


def cut_rows(data: bytes) -> Cut | None:
    """The rows of the sheet XML `data`, or None where the rows cannot be cut exactly."""
    found = find_sheet_data(data)
    if found is None:
        return None
    tag_start, position, qname = found
    if data[position - 2:position] == b"/>":
        return Cut(position, position, qname, True, [])
    rows: list[RawRow] = []
    closing = b"</" + qname
    while True:
        start = data.find(b"<", position)
        if start < 0 or data[position:start].strip(_SPACE):
            return None  # text between rows
        if data.startswith(closing, start):
            after = data[start + len(closing):start + len(closing) + 1]
            return Cut(found[1], start, qname, False, rows) if after in (b">", b" ", b"\t",
                                                                         b"\r", b"\n") else None
        if data[start + 1:start + 2] in (b"!", b"?", b"/"):
            return None  # a comment, CDATA or PI among the rows, or a stray end tag
        head_end = tag_end(data, start)
        if head_end < 0:
            return None
        head = data[start:head_end]
        name = _qname(data, start)
        if head.endswith(b"/>"):
            end = head_end
        else:
            close = data.find(b"</" + name, head_end)
            if close < 0 or data.find(b"<!", head_end, close) >= 0 or \
                    data.find(b"<?", head_end, close) >= 0:
                return None
            end = data.find(b">", close) + 1
            if end <= 0 or data[close + 2 + len(name):end - 1].strip(_SPACE):
                return None
        number = attributes(head).get("r")
        rows.append(RawRow(int(number) if number and number.strip().isdigit() else None,
                           start, end))
        position = end
