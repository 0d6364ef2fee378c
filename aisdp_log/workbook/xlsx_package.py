"""The .xlsx package as bytes: what the surgical writer edits, and nothing else.

The writer never loads a workbook into an object model and saves it again (openpyxl drops the
saved values of formulas and every part it does not know). It reads the zip members as bytes,
splices its changes into the few it must touch (one sheet's `<sheetData>` and the ranges that
grow over a new row, a table part, `styles.xml` when a new cell style is needed, and for a new
sheet `workbook.xml`, its rels and `[Content_Types].xml`), and copies every other member raw,
compressed bytes and all, into the new file.

No XML parser runs over the parts: regular expressions find the elements the writer needs, so
nothing else in a part (namespace prefixes, `mc:Ignorable`, `x14ac:dyDescent`, `<extLst>`, the
order of attributes) is ever re-serialised. No entity or DOCTYPE is ever expanded.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import AnyStr

from aisdp_log.errors import WorkbookError
from aisdp_log.spec import column_letters, column_number
from aisdp_log.workbook.package import normal_name

NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL_WORKSHEET = NS_REL + "/worksheet"
REL_STYLES = NS_REL + "/styles"
REL_SHARED_STRINGS = NS_REL + "/sharedStrings"
REL_TABLE = NS_REL + "/table"
CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"

_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


# --------------------------------------------------------------------------- small XML helpers

def matched(match: re.Match[AnyStr] | None, what: str) -> re.Match[AnyStr]:
    """`match`, where the code relies on the element being there: a part shaped unlike any
    spreadsheet program writes it stops the command with one line, not a traceback."""
    if match is None:
        raise WorkbookError(f"{what} is not shaped as aisdp-log expects")
    return match


def attributes(tag: bytes) -> dict[str, str]:
    """Attributes of an opening tag (or its attribute text) as decoded strings."""
    return {m.group(1).decode(): unescape_xml(m.group(2) if m.group(2) is not None
                                              else m.group(3))
            for m in _ATTR.finditer(tag)}


def unescape_xml(raw: bytes) -> str:
    """XML character data to text: the five named entities and numeric references."""
    text = raw.decode("utf-8", "replace")
    if "&" not in text:
        return text

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("#"):
            code = int(name[2:], 16) if name.startswith("#x") else int(name[1:])
            return chr(code) if code <= 0x10FFFF else match.group()
        return _NAMED[name]

    return _ENTITY.sub(one, text)


def escape_xml(text: str, *, attribute: bool = False) -> bytes:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attribute:
        text = text.replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
    return text.encode("utf-8")


def set_attribute(tag: bytes, name: str, value: str | None) -> bytes:
    """`tag` (an opening tag, `<x ...>` or `<x .../>`) with attribute `name` set (or removed
    when `value` is None); every other byte of the tag is kept."""
    pattern = re.compile(rb"\s" + re.escape(name.encode()) + rb"""\s*=\s*(?:"[^"]*"|'[^']*')""")
    found = pattern.search(tag)
    if value is None:
        return tag if found is None else tag[:found.start()] + tag[found.end():]
    new = b" " + name.encode() + b'="' + escape_xml(value, attribute=True) + b'"'
    if found is not None:
        return tag[:found.start()] + new + tag[found.end():]
    end = len(tag) - (2 if tag.endswith(b"/>") else 1)
    while end > 0 and tag[end - 1:end].isspace():
        end -= 1
    return tag[:end] + new + tag[end:]


_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)$")


def parse_range(text: str) -> tuple[int, int, int, int] | None:
    """'B2:D9' -> (min_col, min_row, max_col, max_row); None for what is not a cell range."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 2:
        return None
    refs = [r for r in (_REF.match(p) for p in parts) if r is not None]
    if len(refs) != len(parts):
        return None
    cols = [column_number(r.group(1)) for r in refs]
    rows = [int(r.group(2)) for r in refs]
    return min(cols), min(rows), max(cols), max(rows)


def format_range(bounds: tuple[int, int, int, int]) -> str:
    min_col, min_row, max_col, max_row = bounds
    first = f"{column_letters(min_col)}{min_row}"
    last = f"{column_letters(max_col)}{max_row}"
    return first if first == last else f"{first}:{last}"


def grow_sqref(sqref: str, new_row: int) -> str:
    """A space-separated range list with each range that ends on the row above `new_row`
    stretched down over it."""
    grown = []
    for item in sqref.split():
        bounds = parse_range(item)
        if bounds is not None and bounds[3] == new_row - 1 and bounds[1] <= new_row - 1:
            item = format_range((bounds[0], bounds[1], bounds[2], new_row))
        grown.append(item)
    return " ".join(grown)


# --------------------------------------------------------------------------- the zip

@dataclass
class _Member:
    name: str
    info: zipfile.ZipInfo | None = None  # None: a new member
    raw_local: bytes | None = None  # local header + data (+ descriptor), copied as they are
    raw_central: bytes | None = None  # its central directory record
    original: bytes | None = None  # the content as read (cached)
    data: bytes | None = None  # new content: written compressed by us


class Package:
    """The zip members of one .xlsx; `read`/`write` by member name, `save` copies untouched
    members raw."""

    def __init__(self, blob: bytes, name: str):
        self.name = name
        self._blob = blob
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(blob))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise WorkbookError(f"{name}: not a readable .xlsx workbook ({exc})") from None
        self._members: dict[str, _Member] = {}
        raw_central = self._central_records(len(infos))
        starts = sorted(i.header_offset for i in infos) + [getattr(self._zip, "start_dir",
                                                                    len(blob))]
        next_start = dict(zip(starts, starts[1:]))
        for position, info in enumerate(infos):
            member = _Member(info.filename, info)
            central = raw_central[position] if raw_central else None
            if central is not None and \
                    blob[info.header_offset:info.header_offset + 4] == b"PK\x03\x04":
                end = next_start[info.header_offset]
                member.raw_local = blob[info.header_offset:end]
                member.raw_central = central
            # by part name, as the reader finds parts (`xl\\styles.xml` is `xl/styles.xml`);
            # a member keeps its own name when saved
            self._members.setdefault(normal_name(info.filename), member)

    def _central_records(self, count: int) -> list[bytes | None] | None:
        """The raw central directory records in order, None for one that cannot be copied
        as it is (zip64); None in all when the directory is not where zipfile found it."""
        start = getattr(self._zip, "start_dir", None)
        if start is None:
            return None
        records: list[bytes | None] = []
        position = start
        for _ in range(count):
            head = self._blob[position:position + 46]
            if len(head) < 46 or head[:4] != b"PK\x01\x02":
                return None
            fields = struct.unpack("<IHHHHHHIIIHHHHHII", head)
            name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
            end = position + 46 + name_len + extra_len + comment_len
            record = self._blob[position:end]
            zip64 = 0xFFFFFFFF in (fields[8], fields[9], fields[16])
            records.append(None if zip64 else record)
            position = end
        return records

    def names(self) -> list[str]:
        return list(self._members)

    def has(self, name: str) -> bool:
        return name in self._members

    def read(self, name: str) -> bytes:
        member = self._members.get(name)
        if member is None:
            raise KeyError(name)
        if member.data is not None:
            return member.data
        if member.original is None:
            assert member.info is not None  # a new member always has `data`
            member.original = self._zip.read(member.info)
        return member.original

    def write(self, name: str, data: bytes) -> None:
        member = self._members.get(name)
        if member is None:
            member = self._members[name] = _Member(name)
        elif member.data is None and member.info is not None and self.read(name) == data:
            return  # unchanged: keep copying it raw
        member.data = data

    def remove(self, name: str) -> None:
        """Leave the member `name` out of the saved package (no-op when absent)."""
        if self._members.pop(name, None) is not None:
            self._removed = True

    def changed(self) -> list[str]:
        removed = ["(removed)"] if getattr(self, "_removed", False) else []
        return [m.name for m in self._members.values() if m.data is not None] + removed

    def save(self, out) -> None:
        """Write the package to the binary file object `out`."""
        central = []
        offset = 0
        for member in self._members.values():
            if member.data is None and member.raw_local is not None and \
                    member.raw_central is not None:
                local = member.raw_local
                record = member.raw_central[:42] + struct.pack("<I", offset) + \
                    member.raw_central[46:]
            else:
                if member.data is None and member.original is None and member.info:
                    member.original = self._zip.read(member.info)
                local, record = _new_entry(member, offset)
            out.write(local)
            central.append(record)
            offset += len(local)
            if offset > 0xFFFFFFFF:
                raise WorkbookError(f"{self.name}: too large to write (over 4 GB)")
        directory = b"".join(central)
        out.write(directory)
        count = len(central)
        if count > 0xFFFF:
            raise WorkbookError(f"{self.name}: too many parts to write ({count})")
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory),
                              offset, 0))


def _new_entry(member: _Member, offset: int) -> tuple[bytes, bytes]:
    data = member.data if member.data is not None else (
        member.original if member.original is not None else b"")
    name = member.name.encode("utf-8")
    flags = 0x800 if not member.name.isascii() else 0
    # Level 3: half the time of zlib's default 6 on a large sheet, for about 5% more bytes.
    compressor = zlib.compressobj(3, zlib.DEFLATED, -15)
    packed = compressor.compress(data) + compressor.flush()
    crc = zlib.crc32(data) & 0xFFFFFFFF
    when = member.info.date_time if member.info is not None else (1980, 1, 1, 0, 0, 0)
    dos_time = (when[3] << 11) | (when[4] << 5) | (when[5] // 2)
    dos_date = ((when[0] - 1980) << 9) | (when[1] << 5) | when[2]
    if len(packed) > 0xFFFFFFFF or len(data) > 0xFFFFFFFF:
        raise WorkbookError(f"{member.name}: a part over 4 GB cannot be written")
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, 8, dos_time, dos_date, crc,
                        len(packed), len(data), len(name), 0) + name + packed
    record = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, 8, dos_time,
                         dos_date, crc, len(packed), len(data), len(name), 0, 0, 0, 0, 0,
                         offset) + name
    return local, record


# --------------------------------------------------------------------------- relationships

@dataclass
class Relationship:
    rel_id: str
    rel_type: str
    target: str  # the part's name inside the zip, resolved
    external: bool = False


def rels_name(part: str) -> str:
    folder, base = posixpath.split(part)
    return posixpath.join(folder, "_rels", base + ".rels")


_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")


def read_rels(package: Package, part: str) -> list[Relationship]:
    name = rels_name(part)
    if not package.has(name):
        return []
    found = []
    for match in _RELATIONSHIP.finditer(package.read(name)):
        attrs = attributes(match.group())
        target = attrs.get("Target", "")
        external = attrs.get("TargetMode", "") == "External"
        if not external:
            target = resolve_target(part, target)
        found.append(Relationship(attrs.get("Id", ""), attrs.get("Type", ""), target, external))
    return found


def resolve_target(source: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), target))


def add_relationship(package: Package, part: str, rel_type: str, target: str) -> str:
    """Add a relationship from `part` to the part named `target`; return its new Id."""
    name = rels_name(part)
    text = package.read(name) if package.has(name) else (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
        b'"http://schemas.openxmlformats.org/package/2006/relationships"></Relationships>')
    used = {r.rel_id for r in read_rels(package, part)}
    numbers = [int(found.group(1)) for found in (re.fullmatch(r"rId(\d+)", i) for i in used)
               if found]
    number = 1 + max(numbers, default=0)
    rel_id = f"rId{number}"
    while rel_id in used:
        number += 1
        rel_id = f"rId{number}"
    relative = posixpath.relpath(target, posixpath.dirname(part) or ".")
    entry = (f'<Relationship Id="{rel_id}" Type="{rel_type}" Target="{relative}"/>').encode()
    package.write(name, insert_before_close(text, b"Relationships", entry))
    return rel_id


def insert_before_close(text: bytes, element: bytes, entry: bytes) -> bytes:
    """`entry` inserted just before the closing tag of `element` (any prefix); a
    self-closing element is opened up."""
    closing = re.search(rb"</(?:\w+:)?" + element + rb"\s*>", text)
    if closing is not None:
        return text[:closing.start()] + entry + text[closing.start():]
    empty = re.search(rb"<((?:\w+:)?" + element + rb")\b([^>]*?)/>", text)
    if empty is None:
        raise WorkbookError(f"no <{element.decode()}> element to add to")
    return (text[:empty.start()] + b"<" + empty.group(1) + empty.group(2) + b">" + entry
            + b"</" + empty.group(1) + b">" + text[empty.end():])


def add_content_type_override(package: Package, part: str, content_type: str) -> None:
    text = package.read("[Content_Types].xml")
    entry = f'<Override PartName="/{part}" ContentType="{content_type}"/>'.encode()
    package.write("[Content_Types].xml", insert_before_close(text, b"Types", entry))


def office_document(package: Package) -> str:
    for rel in read_rels(package, ""):
        if rel.rel_type.endswith("/officeDocument"):
            return rel.target
    return "xl/workbook.xml"


@dataclass
class SheetEntry:
    title: str
    part: str
    sheet_id: int
    rel_id: str
    is_worksheet: bool = True


_SHEET_TAG = re.compile(rb"<(?:\w+:)?sheet\b[^>]*>")


def workbook_sheets(package: Package, workbook_part: str) -> list[SheetEntry]:
    rels = {r.rel_id: r for r in read_rels(package, workbook_part)}
    text = package.read(workbook_part)
    sheets = re.search(rb"<(?:\w+:)?sheets\b[^>]*?(?:/>|>.*?</(?:\w+:)?sheets\s*>)", text,
                       re.DOTALL)
    entries = []
    for match in _SHEET_TAG.finditer(sheets.group() if sheets else b""):
        attrs = attributes(match.group())
        rel_id = next((v for k, v in attrs.items() if k.endswith(":id") or k == "id"), "")
        rel = rels.get(rel_id)
        sheet_id = int(attrs.get("sheetId", "0") or 0) if attrs.get("sheetId", "0").isdigit() \
            else 0
        entries.append(SheetEntry(attrs.get("name", ""), rel.target if rel else "", sheet_id,
                                  rel_id, bool(rel and rel.rel_type == REL_WORKSHEET)))
    return entries


def relationships_prefix(text: bytes) -> bytes | None:
    found = re.search(rb'xmlns:(\w+)\s*=\s*["\']' + re.escape(NS_REL.encode()) + rb'["\']',
                      text)
    return found.group(1) if found else None


@dataclass
class PackageParts:
    """Where things are in this package (resolved once)."""
    workbook: str
    styles: str | None
    shared_strings: str | None
    sheets: list[SheetEntry] = field(default_factory=list)


def locate_parts(package: Package) -> PackageParts:
    workbook = office_document(package)
    if not package.has(workbook):
        raise WorkbookError(f"{package.name}: has no workbook part ({workbook})")
    rels = read_rels(package, workbook)
    styles = next((r.target for r in rels if r.rel_type == REL_STYLES), None)
    strings = next((r.target for r in rels if r.rel_type == REL_SHARED_STRINGS), None)
    return PackageParts(workbook, styles if styles and package.has(styles) else None,
                        strings if strings and package.has(strings) else None,
                        workbook_sheets(package, workbook))
