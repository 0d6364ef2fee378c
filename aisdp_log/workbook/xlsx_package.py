"""The .xlsx package the writer edits: zip members copied raw unless changed, XML parts parsed
(by lxml, hardened) when first edited and serialised only if an edit changed them, and the
package's relationships and content types, by which every part is found.

The writer never loads a workbook into an object model and saves it again (openpyxl drops the
saved values of formulas and every part it does not know): a part nobody edits keeps its
compressed bytes, and an edited part is its own tree, re-serialised with the prefixes and
declarations it was written with.
"""

from __future__ import annotations

import io
import itertools
import posixpath
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.package import (
    OFFICE_DOCUMENT,
    Relationship,
    SheetEntry,
    normal_name,
    parse_rels,
    rels_name,
    sheet_entries,
)
from aisdp_log.workbook.xmlpart import (
    NS_CT,
    NS_MAIN,
    NS_PKG_REL,
    NS_REL,
    XmlPart,
    parse_xml,
    prolog_of,
    qn,
    serialise,
    sub,
)

REL_WORKSHEET = NS_REL + "/worksheet"
REL_STYLES = NS_REL + "/styles"
REL_SHARED_STRINGS = NS_REL + "/sharedStrings"
REL_TABLE = NS_REL + "/table"
CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
CONTENT_TYPES = "[Content_Types].xml"
EMPTY_RELS = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
              b'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>')



@dataclass
class _Member:
    name: str
    info: zipfile.ZipInfo | None = None  # None: a new member
    raw_local: bytes | None = None  # local header + data (+ descriptor), copied as they are
    raw_central: bytes | None = None  # its central directory record
    original: bytes | None = None  # the content as read (cached)
    data: bytes | None = None  # new content: written compressed by us


class Package:
    """The zip members of one .xlsx by part name; `read`/`write` bytes, `xml` a parsed part;
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
        self._xml: dict[str, XmlPart] = {}
        self._removed = False

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
        """The part's bytes as they stand (a touched parsed part serialised)."""
        part = self._xml.get(name)
        if part is not None and part.dirty:
            return serialise(part.root, part.prolog)
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
        """Replace (or add) the part's bytes; a parsed tree of it is dropped."""
        self._xml.pop(name, None)
        member = self._members.get(name)
        if member is None:
            member = self._members[name] = _Member(name)
        elif member.data is None and member.info is not None and self.read(name) == data:
            return  # unchanged: keep copying it raw
        member.data = data

    def xml(self, name: str):
        """The root element of the XML part `name`, parsed once; call `touch(name)` after
        editing it, or the edit is not saved."""
        part = self._xml.get(name)
        if part is None:
            data = self.read(name)
            part = self._xml[name] = XmlPart(name, parse_xml(data, f"{self.name}: {name}"),
                                             prolog_of(data))
        return part.root

    def touch(self, name: str) -> None:
        self._xml[name].dirty = True

    def remove(self, name: str) -> None:
        """Leave the member `name` out of the saved package (no-op when absent)."""
        self._xml.pop(name, None)
        if self._members.pop(name, None) is not None:
            self._removed = True

    def changed(self) -> list[str]:
        self._flush()
        removed = ["(removed)"] if self._removed else []
        return [m.name for m in self._members.values() if m.data is not None] + removed

    def _flush(self) -> None:
        for name, part in list(self._xml.items()):
            if part.dirty:
                self.write(name, serialise(part.root, part.prolog))

    # ----------------------------------------------------------------- relationships

    def rels(self, source: str) -> list[Relationship]:
        """The relationships of part `source` (`""`: the package's own)."""
        name = rels_name(source)
        return parse_rels(self.xml(name), source) if self.has(name) else []

    def related(self, source: str, rel_type: str) -> list[str]:
        """The parts `source` relates to by `rel_type` that the package holds."""
        return [r.target for r in self.rels(source)
                if r.rel_type == rel_type and not r.external and self.has(r.target)]

    def add_relationship(self, source: str, rel_type: str, target: str) -> str:
        """Relate `source` to the part `target`; return the new relationship's Id."""
        name = rels_name(source)
        if not self.has(name):
            self.write(name, EMPTY_RELS)
        used = {r.rel_id for r in self.rels(source)}
        number = next(n for n in itertools.count(len(used) + 1) if f"rId{n}" not in used)
        relative = posixpath.relpath(target, posixpath.dirname(source) or ".")
        sub(self.xml(name), "Relationship", {"Id": f"rId{number}", "Type": rel_type,
                                             "Target": relative}, ns=NS_PKG_REL)
        self.touch(name)
        return f"rId{number}"

    def drop_part(self, source: str, rel_id: str, part: str) -> None:
        """Remove `part`, the relationship `rel_id` of `source` to it, its content type and
        its own relationships."""
        name = rels_name(source)
        if self.has(name):
            for element in self.xml(name).iter(qn("Relationship", NS_PKG_REL)):
                if element.get("Id") == rel_id:
                    element.getparent().remove(element)
                    self.touch(name)
                    break
        types = self.xml(CONTENT_TYPES)
        for element in types.iter(qn("Override", NS_CT)):
            if normal_name(element.get("PartName", "")) == part:
                types.remove(element)
                self.touch(CONTENT_TYPES)
        self.remove(part)
        self.remove(rels_name(part))

    # ----------------------------------------------------------------- content types

    def add_override(self, part: str, content_type: str) -> None:
        sub(self.xml(CONTENT_TYPES), "Override", {"PartName": "/" + part,
                                                  "ContentType": content_type}, ns=NS_CT)
        self.touch(CONTENT_TYPES)

    def ensure_default(self, extension: str, content_type: str) -> None:
        types = self.xml(CONTENT_TYPES)
        if not any(e.get("Extension", "").lower() == extension
                   for e in types.iter(qn("Default", NS_CT))):
            sub(types, "Default", {"Extension": extension, "ContentType": content_type},
                ns=NS_CT, index=0)
            self.touch(CONTENT_TYPES)

    def new_name(self, pattern: str) -> str:
        """The first free part name `pattern.format(n)`, n = 1, 2, ..."""
        names = {n.lower() for n in self._members}
        return next(pattern.format(n) for n in itertools.count(1)
                    if pattern.format(n).lower() not in names)

    def save(self, out) -> None:
        """Write the package to the binary file object `out`."""
        self._flush()
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


@dataclass
class PackageParts:
    """Where things are in this package (resolved once, through relationships)."""
    workbook: str
    styles: str | None
    shared_strings: str | None
    sheets: list[SheetEntry] = field(default_factory=list)


def locate_parts(package: Package) -> PackageParts:
    workbook = next((r.target for r in package.rels("") if r.rel_type.endswith(OFFICE_DOCUMENT)
                     and package.has(r.target)), None)
    if workbook is None:
        raise WorkbookError(f"{package.name}: has no workbook part (no officeDocument "
                            "relationship)")
    if package.xml(workbook).tag != qn("workbook", NS_MAIN):
        raise WorkbookError(f"{package.name}: a Strict Open XML workbook or another kind of "
                            "document, which aisdp-log cannot write; save it as Excel Workbook "
                            "(.xlsx), not Strict Open XML")
    styles = package.related(workbook, REL_STYLES)
    strings = package.related(workbook, REL_SHARED_STRINGS)
    return PackageParts(workbook, styles[0] if styles else None,
                        strings[0] if strings else None,
                        sheet_entries(package.xml(workbook), package.rels(workbook)))
