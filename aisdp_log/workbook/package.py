"""The .xlsx package as other tools write it: member names, the workbook part and its sheets.

The Open Packaging Conventions name the workbook part through `_rels/.rels` (officeDocument),
not by a fixed path, and some writers store member names with backslashes (`xl\\workbook.xml`).
calamine reads backslash names, but looks for the workbook's relationships beside a part named
`workbook.xml`, and refuses a whole file over one sheet kind it does not know (an Excel 4.0
macro sheet, `xl/macrosheets/...`). For those files the reader gets `calamine_copy()`: the
same parts under normal names, the workbook at `xl/workbook.xml` and only the sheets it reads.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib

#: Relationship types of parts calamine reads as sheets; others (Excel 4.0 macro sheets,
#: international macro sheets) are left out of the copy calamine reads.
SHEET_TYPES = ("/worksheet", "/chartsheet", "/dialogsheet")
OFFICE_DOCUMENT = "/officeDocument"
#: The workbook part and its relationships are read whole; real ones are kilobytes.
MAX_WORKBOOK_PART = 16 << 20

_RELATIONSHIP = re.compile(rb'<(?:\w+:)?Relationship\b[^>]*?>', re.S)
_SHEET_TAG = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?/?>', re.S)
_ATTR = re.compile(rb"""([\w:]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_READ_ERRORS = (KeyError, zipfile.BadZipFile, OSError, NotImplementedError, EOFError,
                zlib.error, RuntimeError)


def attrs(tag: bytes) -> dict[bytes, bytes]:
    """The attributes of one XML start tag, as bytes."""
    return {name: double or single for name, double, single in _ATTR.findall(tag)}


def attribute_text(value: bytes) -> str:
    """An XML attribute's text, its references (`&amp;`, `&#69;`) resolved in one pass, as
    calamine resolves them: the sheet names must match calamine's."""
    text = value.decode("utf-8", "replace")
    if "&" not in text:
        return text
    import html  # only for the rare name holding a reference

    return html.unescape(text)


def escape_attribute(text: str) -> str:
    """`text` as a double-quoted XML attribute value."""
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def normal_name(name: str) -> str:
    """A member name as a part name: forward slashes, no leading slash."""
    return name.replace("\\", "/").lstrip("/")


def rels_of(part: str) -> str:
    """`xl/workbook.xml` -> `xl/_rels/workbook.xml.rels`."""
    folder, _, name = part.rpartition("/")
    return f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"


def resolve(source_part: str, target: str) -> str:
    """A relationship target (relative to the source part's folder, or absolute) as a part."""
    target = target.replace("\\", "/")
    if target.startswith("/"):
        return posixpath.normpath(target).lstrip("/")
    folder = source_part.rpartition("/")[0]
    return posixpath.normpath(posixpath.join(folder, target)).lstrip("/")


class Package:
    """The parts of an opened zip by normal name, the workbook part and its sheets."""

    def __init__(self, archive: zipfile.ZipFile):
        self.archive = archive
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            self.members.setdefault(normal_name(info.filename), info)
        self.workbook = self._workbook_part()
        #: sheet name -> part, as calamine lists them (the first sheet of a name wins)
        self.sheets: dict[str, str] = {}
        #: (sheet name, part, relationship type) of sheets calamine cannot read
        self.unreadable: list[tuple[str, str, str]] = []
        self._workbook_xml = self._rels_xml = b""
        self._dropped_ids: set[bytes] = set()
        self._moved = False
        if self.workbook is not None:
            self._read_sheets(self.workbook)

    # -- reading parts
    def read(self, part: str, limit: int = MAX_WORKBOOK_PART) -> bytes | None:
        """A small part's bytes, or None where it is absent, too big or unreadable."""
        info = self.members.get(part)
        if info is None or info.file_size > limit:
            return None
        try:
            with self.archive.open(info) as stream:
                return stream.read(limit + 1)[:limit]
        except _READ_ERRORS:
            return None

    def relationships(self, part: str) -> list[tuple[bytes, str, str]]:
        """(Id, type, target part) of each internal relationship of `part` (`""`: the
        package's own, `_rels/.rels`)."""
        xml = self.read(rels_of(part) if part else "_rels/.rels")
        if xml is None:
            return []
        found = []
        for tag in _RELATIONSHIP.findall(xml):
            values = attrs(tag)
            target = attribute_text(values.get(b"Target", b""))
            if not target or values.get(b"TargetMode", b"").lower() == b"external":
                continue
            found.append((values.get(b"Id", b""), attribute_text(values.get(b"Type", b"")),
                          resolve(part, target)))
        return found

    def _workbook_part(self) -> str | None:
        for _, kind, target in self.relationships(""):
            if kind.endswith(OFFICE_DOCUMENT) and target in self.members:
                return target
        return "xl/workbook.xml" if "xl/workbook.xml" in self.members else None

    def _read_sheets(self, part: str) -> None:
        workbook = self.read(part)
        rels = self.read(rels_of(part))
        if workbook is None or rels is None:
            return
        self._workbook_xml, self._rels_xml = workbook, rels
        targets = {rid: (kind, target) for rid, kind, target in self.relationships(part)}
        for tag in _SHEET_TAG.findall(workbook):
            values = attrs(tag)
            rid = next((v for k, v in values.items() if k.endswith(b":id")), b"")
            if rid not in targets:
                continue
            kind, target = targets[rid]
            name = attribute_text(values.get(b"name", b""))
            if not kind.endswith(SHEET_TYPES):
                self.unreadable.append((name, target, kind.rpartition("/")[2]))
                self._dropped_ids.add(rid)
                continue
            self.sheets.setdefault(name, target)

    # -- what calamine reads
    @property
    def needs_copy(self) -> bool:
        """Whether calamine cannot read the file as it is: a workbook part not named
        `workbook.xml`, or a sheet kind it refuses."""
        if self.workbook is None:
            return False
        return not self.workbook.endswith("/workbook.xml") or bool(self.unreadable)

    def calamine_copy(self) -> io.BytesIO:
        """The package with normal member names, the workbook part renamed `workbook.xml` in
        its own folder (calamine finds the shared strings and styles relative to it) and only
        the sheets calamine reads."""
        assert self.workbook is not None
        folder = self.workbook.rpartition("/")[0]
        # a workbook at the package root would move into xl/: its targets become absolute
        self._moved = not folder
        workbook = f"{folder or 'xl'}/workbook.xml"
        skip = {self.workbook, rels_of(self.workbook), "_rels/.rels", workbook,
                rels_of(workbook)}
        skip.update(part for _, part, _ in self.unreadable)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as copy:
            for part, info in self.members.items():
                if part in skip or part.endswith("/"):
                    continue
                with self.archive.open(info) as source, \
                        copy.open(part, "w", force_zip64=info.file_size > (1 << 30)) as target:
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
            copy.writestr("_rels/.rels", (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
                'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                'officeDocument/2006/relationships/officeDocument" '
                f'Target="{escape_attribute(workbook)}"/></Relationships>'))
            copy.writestr(workbook, _SHEET_TAG.sub(self._keep_sheet, self._workbook_xml))
            copy.writestr(rels_of(workbook), _RELATIONSHIP.sub(self._relationship,
                                                               self._rels_xml))
        buffer.seek(0)
        return buffer

    def _keep_sheet(self, match: re.Match) -> bytes:
        values = attrs(match.group())
        rid = next((v for k, v in values.items() if k.endswith(b":id")), b"")
        return b"" if rid in self._dropped_ids else match.group()

    def _relationship(self, match: re.Match) -> bytes:
        tag = match.group()
        values = attrs(tag)
        if values.get(b"Id", b"") in self._dropped_ids:
            return b""
        target = values.get(b"Target")
        if not self._moved or target is None or self.workbook is None or \
                values.get(b"TargetMode", b"").lower() == b"external":
            return tag
        part = resolve(self.workbook, attribute_text(target))
        new = escape_attribute("/" + part).encode("utf-8")
        return re.sub(rb"""(\bTarget\s*=\s*)(?:"[^"]*"|'[^']*')""",
                      lambda m: m.group(1) + b'"' + new + b'"', tag, count=1)
