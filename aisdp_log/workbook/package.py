"""The .xlsx package as other tools write it: member names, relationships, the workbook part
and its sheets, found one way (relationships parsed by lxml), by the reader and the writer.

The Open Packaging Conventions name the workbook part through `_rels/.rels` (officeDocument),
not by a fixed path, and some writers store member names with backslashes (`xl\\workbook.xml`).
calamine reads backslash names, but looks for the workbook's relationships beside a part named
`workbook.xml`, and refuses a whole file over one sheet kind it does not know (an Excel 4.0
macro sheet, `xl/macrosheets/...`). For those files the reader gets `calamine_copy()`: the
same parts under normal names, the workbook at `xl/workbook.xml` and only the sheets it reads.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass

from lxml import etree

from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.xmlpart import NS_PKG_REL, NS_REL, local, parse_xml, qn

#: Relationship types of parts calamine reads as sheets; others (Excel 4.0 macro sheets,
#: international macro sheets) are left out of the copy calamine reads.
SHEET_TYPES = ("/worksheet", "/chartsheet", "/dialogsheet")
OFFICE_DOCUMENT = "/officeDocument"
#: The workbook part and its relationships are read whole; real ones are kilobytes.
MAX_WORKBOOK_PART = 16 << 20
_READ_ERRORS = (KeyError, zipfile.BadZipFile, OSError, NotImplementedError, EOFError,
                zlib.error, RuntimeError)


@dataclass
class Relationship:
    rel_id: str
    rel_type: str
    target: str  # the part's name inside the zip, resolved (as written when external)
    external: bool = False


@dataclass
class SheetEntry:
    title: str
    part: str
    sheet_id: int
    rel_id: str
    rel_type: str = ""

    @property
    def is_worksheet(self) -> bool:
        return self.rel_type.endswith("/worksheet")


def normal_name(name: str) -> str:
    """A member name as a part name: forward slashes, no leading slash."""
    return name.replace("\\", "/").lstrip("/")


def rels_name(part: str) -> str:
    """`xl/workbook.xml` -> `xl/_rels/workbook.xml.rels`; `""` -> `_rels/.rels`."""
    folder, _, name = part.rpartition("/")
    return f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"


def resolve(source_part: str, target: str) -> str:
    """A relationship target (relative to the source part's folder, or absolute) as a part."""
    target = target.replace("\\", "/")
    if target.startswith("/"):
        return posixpath.normpath(target).lstrip("/")
    folder = source_part.rpartition("/")[0]
    return posixpath.normpath(posixpath.join(folder, target)).lstrip("/")


def parse_rels(root, source: str) -> list[Relationship]:
    """The relationships of a parsed `.rels` part whose source is the part `source`."""
    found = []
    for element in root.iter(qn("Relationship", NS_PKG_REL)):
        target = element.get("Target", "")
        external = element.get("TargetMode", "").lower() == "external"
        found.append(Relationship(element.get("Id", ""), element.get("Type", ""),
                                  target if external or not target else resolve(source, target),
                                  external))
    return found


def sheet_entries(workbook_root, rels: list[Relationship]) -> list[SheetEntry]:
    """The `<sheet>` elements of a parsed workbook part, each with its part and kind."""
    by_id = {r.rel_id: r for r in rels if not r.external}
    entries = []
    for element in workbook_root.iter():
        if local(element) != "sheet" or local(element.getparent()) != "sheets":
            continue
        rel_id = next((v for k, v in element.attrib.items()
                       if etree.QName(k).localname == "id" and etree.QName(k).namespace), "")
        rel = by_id.get(rel_id)
        number = element.get("sheetId", "0")
        entries.append(SheetEntry(element.get("name", ""), rel.target if rel else "",
                                  int(number) if number.isdigit() else 0, rel_id,
                                  rel.rel_type if rel else ""))
    return entries


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
        self._dropped_ids: set[str] = set()
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

    def _xml(self, part: str):
        data = self.read(part)
        with contextlib.suppress(WorkbookError):
            return None if data is None else parse_xml(data, part)
        return None

    def relationships(self, part: str) -> list[Relationship]:
        """The internal relationships of `part` (`""`: the package's own, `_rels/.rels`)."""
        root = self._xml(rels_name(part))
        return [] if root is None else [r for r in parse_rels(root, part)
                                        if not r.external and r.target]

    def _workbook_part(self) -> str | None:
        for rel in self.relationships(""):
            if rel.rel_type.endswith(OFFICE_DOCUMENT) and rel.target in self.members:
                return rel.target
        return "xl/workbook.xml" if "xl/workbook.xml" in self.members else None

    def _read_sheets(self, part: str) -> None:
        workbook = self._xml(part)
        if workbook is None:
            return
        for entry in sheet_entries(workbook, self.relationships(part)):
            if not entry.part:
                continue
            if not entry.rel_type.endswith(SHEET_TYPES):
                self.unreadable.append((entry.title, entry.part,
                                        entry.rel_type.rpartition("/")[2]))
                self._dropped_ids.add(entry.rel_id)
                continue
            self.sheets.setdefault(entry.title, entry.part)

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
        moved = not folder
        workbook = f"{folder or 'xl'}/workbook.xml"
        skip = {self.workbook, rels_name(self.workbook), "_rels/.rels", workbook,
                rels_name(workbook)}
        skip.update(part for _, part, _ in self.unreadable)
        workbook_root, rels_root = self._xml(self.workbook), self._xml(rels_name(self.workbook))
        if workbook_root is None or rels_root is None:
            raise WorkbookError(f"{self.workbook}: the workbook part cannot be read")
        for element in list(workbook_root.iter()):
            if local(element) == "sheet" and any(
                    etree.QName(k).localname == "id" and etree.QName(k).namespace == NS_REL
                    and v in self._dropped_ids for k, v in element.attrib.items()):
                element.getparent().remove(element)
        for element in list(rels_root.iter(qn("Relationship", NS_PKG_REL))):
            if element.get("Id") in self._dropped_ids:
                element.getparent().remove(element)
            elif moved and element.get("TargetMode", "").lower() != "external":
                element.set("Target", "/" + resolve(self.workbook, element.get("Target", "")))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as copy:
            for part, info in self.members.items():
                if part in skip or part.endswith("/"):
                    continue
                with self.archive.open(info) as source, \
                        copy.open(part, "w", force_zip64=info.file_size > (1 << 30)) as target:
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
            root = etree.Element(qn("Relationships", NS_PKG_REL), nsmap={None: NS_PKG_REL})
            etree.SubElement(root, qn("Relationship", NS_PKG_REL), Id="rId1",
                             Type=NS_REL + OFFICE_DOCUMENT, Target=workbook)
            copy.writestr("_rels/.rels", etree.tostring(root, xml_declaration=True,
                                                        encoding="UTF-8", standalone=True))
            copy.writestr(workbook, etree.tostring(workbook_root, encoding="UTF-8"))
            copy.writestr(rels_name(workbook), etree.tostring(rels_root, encoding="UTF-8"))
        buffer.seek(0)
        return buffer
