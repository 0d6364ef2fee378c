"""Notes (legacy comments) on one worksheet, edited as lxml trees: the comments part, its VML
drawing, the sheet's relationships and `<legacyDrawing>`, all found through relationships.

The tool's notes are told from a person's by their author (`aisdp-log`) or, where a
spreadsheet program dropped the authors on saving (LibreOffice does), by the marker line the
tool ends each note with. A person's notes stay as they were: only the tool's `<comment>` and
VML `<v:shape>` elements are removed and added."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.package import Relationship
from aisdp_log.workbook.xlsx_package import Package
from aisdp_log.workbook.xlsx_sheet import Sheet
from aisdp_log.workbook.xmlpart import (
    NS_REL,
    graft,
    local,
    parse_range,
    parse_xml,
    qn,
    rich_text,
    set_text,
    sub,
)

REL_COMMENTS = NS_REL + "/comments"
REL_VML = NS_REL + "/vmlDrawing"
CT_COMMENTS = "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"
CT_VML = "application/vnd.openxmlformats-officedocument.vmlDrawing"
NS_V = "urn:schemas-microsoft-com:vml"
NS_O = "urn:schemas-microsoft-com:office:office"
NS_X = "urn:schemas-microsoft-com:office:excel"
TOOL_AUTHOR = "aisdp-log"
#: The last line of every tool note starts with this: how a note is recognised as the tool's
#: once a program that drops comment authors (LibreOffice) has saved the workbook.
MARKER = "[aisdp-log validate --annotate"


@dataclass
class Note:
    ref: str
    author: str
    text: str
    element: Any  # the <comment> element

    @property
    def is_tool_note(self) -> bool:
        return self.author == TOOL_AUTHOR or MARKER in self.text


def _cell_position(ref: str) -> tuple[int, int] | None:
    """'P3' -> (row 2, column 15), both 0-based as VML wants them."""
    bounds = parse_range(ref)
    return None if bounds is None else (bounds[1] - 1, bounds[0] - 1)


def _child(parent, name: str):
    return next((e for e in parent if local(e) == name), None)


class SheetNotes:
    """The notes of one worksheet."""

    def __init__(self, sheet: Sheet):
        self.sheet = sheet
        self.package = sheet.book.package
        rels = self.package.rels(sheet.part)
        self.comments_rel = next((r for r in rels if r.rel_type == REL_COMMENTS
                                  and self.package.has(r.target)), None)
        self.vml_rel = next((r for r in rels if r.rel_type == REL_VML
                             and self.package.has(r.target)), None)

    # ----------------------------------------------------------------- reading

    def notes(self) -> list[Note]:
        if self.comments_rel is None:
            return []
        root = self.package.xml(self.comments_rel.target)
        authors_list = _child(root, "authors")
        authors = ["".join(a.itertext()) for a in (authors_list if authors_list is not None
                                                    else []) if local(a) == "author"]
        found = []
        for element in (e for e in root.iter() if local(e) == "comment"):
            author_id = element.get("authorId", "")
            author = authors[int(author_id)] if author_id.isdigit() and \
                int(author_id) < len(authors) else ""
            found.append(Note(element.get("ref", ""), author, rich_text(element), element))
        return found

    # ----------------------------------------------------------------- writing

    def replace_tool_notes(self, wanted: dict[str, str]) -> tuple[list[str], list[str]]:
        """Remove every tool note, then add one note per `wanted` cell (ref -> text, which
        the caller has put in OOXML's `_xHHHH_` escape where XML cannot hold it). Returns
        (cells noted, cells skipped because a person's note is already there)."""
        notes = self.notes()
        people = {n.ref.upper() for n in notes if not n.is_tool_note}
        tool_notes = [n for n in notes if n.is_tool_note]
        if tool_notes:
            self._remove(tool_notes)
        added = [ref for ref in wanted if ref.upper() not in people
                 and _cell_position(ref) is not None]
        skipped = [ref for ref in wanted if ref.upper() in people]
        if added:
            self._add({ref: wanted[ref] for ref in added})
        self._drop_empty_parts()
        return added, skipped

    def _remove(self, notes: list[Note]) -> None:
        assert self.comments_rel is not None  # notes were read from it
        for note in notes:
            note.element.getparent().remove(note.element)
        self.package.touch(self.comments_rel.target)
        positions = {_cell_position(n.ref) for n in notes} - {None}
        if self.vml_rel is None or not positions:
            return
        vml = self.package.xml(self.vml_rel.target)
        for shape in list(vml.iter(qn("shape", NS_V))):
            if _note_position(shape) in positions:
                shape.getparent().remove(shape)
                self.package.touch(self.vml_rel.target)

    def _add(self, wanted: dict[str, str]) -> None:
        comments_rel, vml_rel = self._ensure_parts()
        root = self.package.xml(comments_rel.target)
        authors = _child(root, "authors")
        if authors is None:
            authors = sub(root, "authors", index=0)
        names = ["".join(a.itertext()) for a in authors if local(a) == "author"]
        if TOOL_AUTHOR not in names:
            sub(authors, "author").text = TOOL_AUTHOR
            names.append(TOOL_AUTHOR)
        comment_list = _child(root, "commentList")
        if comment_list is None:
            comment_list = sub(root, "commentList", index=root.index(authors) + 1)
        vml = self.package.xml(vml_rel.target)
        ids = [s.get("id", "").partition("_x0000_s")[2] for s in vml.iter(qn("shape", NS_V))]
        shape_id = max([int(i) for i in ids if i.isdigit()],
                       default=_block(self.package, vml_rel.target) * 1024)
        if not any(s.get("id") == "_x0000_t202" for s in vml.iter(qn("shapetype", NS_V))):
            graft(vml, parse_xml(_NOTE_SHAPETYPE, "a note shape type"))
        for ref, body in wanted.items():
            position = _cell_position(ref)
            if position is None:  # replace_tool_notes passes cell references only
                continue
            comment = sub(comment_list, "comment", {"ref": ref,
                                                    "authorId": str(names.index(TOOL_AUTHOR))})
            text = sub(comment, "text")
            first, _, rest = body.partition("\n")  # the first line bold, as Excel writes it
            for line, run in ((first, _BOLD_RUN), ("\n" + rest if rest else "", _RUN)):
                if line:
                    set_text(graft(text, parse_xml(run, "a note's run"))[-1], line)
            row, column = position
            shape_id += 1
            top = max(row - 1, 0)
            graft(vml, parse_xml(_NOTE_SHAPE.format(
                shape_id=shape_id, row=row, column=column,
                anchor=f"{column + 1}, 15, {top}, 10, {column + 4}, 15, {top + 5}, 4").encode(),
                "a note shape"))
        self.package.touch(comments_rel.target)
        self.package.touch(vml_rel.target)

    def _ensure_parts(self) -> tuple[Relationship, Relationship]:
        """The comments part's and the VML drawing's relationships, each made when absent."""
        package, part = self.package, self.sheet.part
        if self.comments_rel is None:
            name = package.new_name("xl/comments{}.xml")
            package.write(name, NEW_COMMENTS)
            package.add_override(name, CT_COMMENTS)
            rel_id = package.add_relationship(part, REL_COMMENTS, name)
            self.comments_rel = Relationship(rel_id, REL_COMMENTS, name)
        if self.vml_rel is None:
            name = package.new_name("xl/drawings/vmlDrawing{}.vml")
            blocks = [_block(package, other) for other in package.names()
                      if other.lower().endswith(".vml")]
            package.write(name, NEW_VML.replace(b"{idmap}",
                                                str(max(blocks, default=0) + 1).encode()))
            package.ensure_default("vml", CT_VML)
            rel_id = package.add_relationship(part, REL_VML, name)
            self.vml_rel = Relationship(rel_id, REL_VML, name)
            root = self.sheet.root_for_edit()
            for legacy in root.findall(qn("legacyDrawing")):  # pointing at a part that is gone
                root.remove(legacy)
            legacy = self.sheet.add_element("legacyDrawing")
            if NS_REL not in legacy.nsmap.values():
                fresh = legacy.makeelement(legacy.tag, nsmap={"r": NS_REL})
                legacy.getparent().replace(legacy, fresh)
                legacy = fresh
            legacy.set(qn("id", NS_REL), rel_id)
        return self.comments_rel, self.vml_rel

    def _drop_empty_parts(self) -> None:
        """A comments part left with no comment, and a VML drawing left with no shape, go
        (with their relationships, content type and `<legacyDrawing>`)."""
        package = self.package
        if self.comments_rel is not None and not any(
                local(e) == "comment" for e in package.xml(self.comments_rel.target).iter()):
            package.drop_part(self.sheet.part, self.comments_rel.rel_id,
                              self.comments_rel.target)
            self.comments_rel = None
        if self.vml_rel is not None and not any(
                True for _ in package.xml(self.vml_rel.target).iter(qn("shape", NS_V))):
            package.drop_part(self.sheet.part, self.vml_rel.rel_id, self.vml_rel.target)
            root = self.sheet.root_for_edit()
            for legacy in root.findall(qn("legacyDrawing")):
                if legacy.get(qn("id", NS_REL)) == self.vml_rel.rel_id:
                    root.remove(legacy)
            self.vml_rel = None


def _block(package: Package, part: str) -> int:
    """A VML drawing's shape id block (`<o:idmap data=...>`; 1 where it has none, and a
    drawing of another sheet that is no XML, as old Excel wrote some, counts as block 1)."""
    try:
        idmap = next(package.xml(part).iter(qn("idmap", NS_O)), None)
    except WorkbookError:
        return 1
    first = (idmap.get("data", "1") if idmap is not None else "1").split(",")[0]
    return int(first) if first.isdigit() else 1


def _note_position(shape) -> tuple[int, int] | None:
    data = next(shape.iter(qn("ClientData", NS_X)), None)
    if data is None or data.get("ObjectType") != "Note":
        return None
    row, column = (next(data.iter(qn(name, NS_X)), None) for name in ("Row", "Column"))
    if row is None or column is None or not (row.text or "").strip().isdigit() or \
            not (column.text or "").strip().isdigit():
        return None
    return int(row.text), int(column.text)


_VML_NAMESPACES = (b'xmlns:v="urn:schemas-microsoft-com:vml" '
                   b'xmlns:o="urn:schemas-microsoft-com:office:office" '
                   b'xmlns:x="urn:schemas-microsoft-com:office:excel"')
_RUN = (b'<r xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><rPr>'
        b'<sz val="9"/><rFont val="Tahoma"/></rPr><t/></r>')
_BOLD_RUN = _RUN.replace(b"<rPr>", b"<rPr><b/>")
NEW_COMMENTS = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                b'<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b"<authors><author>" + TOOL_AUTHOR.encode() + b"</author></authors>"
                b"<commentList></commentList></comments>")

NEW_VML = (b'<xml xmlns:v="urn:schemas-microsoft-com:vml" '
           b'xmlns:o="urn:schemas-microsoft-com:office:office" '
           b'xmlns:x="urn:schemas-microsoft-com:office:excel">'
           b'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{idmap}"/>'
           b"</o:shapelayout></xml>")

_NOTE_SHAPETYPE = (b"<v:shapetype " + _VML_NAMESPACES +
                   b' id="_x0000_t202" coordsize="21600,21600" o:spt="202" '
                   b'path="m,l,21600r21600,l21600,xe"><v:stroke joinstyle="miter"/>'
                   b'<v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>')

_NOTE_SHAPE = (
    '<v:shape ' + _VML_NAMESPACES.decode() +
    ' id="_x0000_s{shape_id}" type="#_x0000_t202" style="position:absolute;'
    'margin-left:80pt;margin-top:2pt;width:240pt;height:80pt;z-index:1;visibility:hidden" '
    'fillcolor="#ffffe1" o:insetmode="auto"><v:fill color2="#ffffe1"/>'
    '<v:shadow on="t" color="black" obscured="t"/><v:path o:connecttype="none"/>'
    '<v:textbox style="mso-direction-alt:auto"><div style="text-align:left"></div>'
    '</v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
    '<x:Anchor>{anchor}</x:Anchor><x:AutoFill>False</x:AutoFill>'
    '<x:Row>{row}</x:Row><x:Column>{column}</x:Column></x:ClientData></v:shape>')
