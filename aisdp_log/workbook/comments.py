"""Notes (legacy comments) on one worksheet, edited in place: `xl/commentsN.xml`, its VML
drawing `xl/drawings/vmlDrawingN.vml`, the sheet's relationships and `<legacyDrawing>`.

The tool's notes are told from a person's by their author (`aisdp-log`) or, where a
spreadsheet program dropped the authors on saving (LibreOffice does), by the marker line the
tool ends each note with. A person's notes keep their bytes: tool notes are spliced in and out
of the comments part and the VML drawing, never re-serialised with the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aisdp_log.workbook.xlsx_package import (
    NS_REL,
    Package,
    Relationship,
    add_content_type_override,
    add_relationship,
    attributes,
    escape_xml,
    insert_before_close,
    matched,
    parse_range,
    read_rels,
    relationships_prefix,
    rels_name,
    set_attribute,
    unescape_xml,
)
from aisdp_log.workbook.xlsx_text import rich_text

REL_COMMENTS = NS_REL + "/comments"
REL_VML = NS_REL + "/vmlDrawing"
CT_COMMENTS = "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"
CT_VML = "application/vnd.openxmlformats-officedocument.vmlDrawing"
TOOL_AUTHOR = "aisdp-log"
#: The last line of every tool note starts with this: how a note is recognised as the tool's
#: once a program that drops comment authors (LibreOffice) has saved the workbook.
MARKER = "[aisdp-log validate --annotate"

#: CT_Worksheet's child order after <sheetData>: a new element goes before the first
#: existing one that must follow it.
WORKSHEET_ORDER = (
    "sheetData", "sheetCalcPr", "sheetProtection", "protectedRanges", "scenarios",
    "autoFilter", "sortState", "dataConsolidate", "customSheetViews", "mergeCells",
    "phoneticPr", "conditionalFormatting", "dataValidations", "hyperlinks", "printOptions",
    "pageMargins", "pageSetup", "headerFooter", "rowBreaks", "colBreaks",
    "customProperties", "cellWatches", "ignoredErrors", "smartTags", "drawing",
    "legacyDrawing", "legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls",
    "webPublishItems", "tableParts", "extLst")

_COMMENT = re.compile(rb"<(?:\w+:)?comment\b[^>]*?(?:/>|>.*?</(?:\w+:)?comment\s*>)", re.DOTALL)
_AUTHOR = re.compile(rb"<(?:\w+:)?author\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?author\s*>)", re.DOTALL)
_SHAPE = re.compile(rb"<v:shape\b[^>]*>.*?</v:shape\s*>", re.DOTALL)
_LEGACY = re.compile(rb"<(?:\w+:)?legacyDrawing\b[^>]*>")


def insert_in_worksheet(text: bytes, name: str, element: bytes) -> bytes:
    """Sheet XML with `element` (a `<name ...>` element) placed where CT_Worksheet's order
    wants it: after the last element that precedes it, before the first that follows."""
    later = WORKSHEET_ORDER[WORKSHEET_ORDER.index(name) + 1:]
    start = sheet_data_end(text)
    pattern = re.compile(rb"<(?:\w+:)?(" + b"|".join(n.encode() for n in later) + rb")[\s>/]")
    found = pattern.search(text, start)
    if found is None:
        found = re.search(rb"</(?:\w+:)?worksheet\s*>", text)
    if found is None:
        raise ValueError("the sheet has no </worksheet>")
    root = re.search(rb"<(\w+:)?worksheet\b", text)
    prefix = root.group(1) or b"" if root else b""
    if prefix:
        element = re.sub(rb"<(/?)(?=\w)", rb"<\1" + prefix, element)
    return text[:found.start()] + element + text[found.start():]


def sheet_data_end(text: bytes) -> int:
    """Where the sheet XML after `<sheetData>` starts (a byte search from the end: the rows
    of a large sheet are never scanned)."""
    at = text.rfind(b"sheetData")
    return text.find(b">", at) + 1 if at >= 0 else 0


@dataclass
class Note:
    ref: str
    author: str
    text: str
    raw: bytes  # the <comment> element as stored

    @property
    def is_tool_note(self) -> bool:
        return self.author == TOOL_AUTHOR or MARKER in self.text




def _cell_position(ref: str) -> tuple[int, int] | None:
    """'P3' -> (row 2, column 15), both 0-based as VML wants them."""
    bounds = parse_range(ref)
    return None if bounds is None else (bounds[1] - 1, bounds[0] - 1)


class SheetNotes:
    """The notes of one worksheet part."""

    def __init__(self, package: Package, sheet_part: str):
        self.package, self.sheet_part = package, sheet_part
        rels = read_rels(package, sheet_part)
        self.comments_rel = next((r for r in rels if r.rel_type == REL_COMMENTS
                                  and package.has(r.target)), None)
        self.vml_rel = next((r for r in rels if r.rel_type == REL_VML
                             and package.has(r.target)), None)

    # ----------------------------------------------------------------- reading

    def notes(self) -> list[Note]:
        if self.comments_rel is None:
            return []
        text = self.package.read(self.comments_rel.target)
        authors = [unescape_xml(m.group(1) or b"") for m in _AUTHOR.finditer(
            _block(text, b"authors"))]
        found = []
        for match in _COMMENT.finditer(_block(text, b"commentList")):
            raw = match.group()
            attrs = attributes(raw[:raw.index(b">") + 1])
            author_id = attrs.get("authorId", "")
            author = authors[int(author_id)] if author_id.isdigit() and \
                int(author_id) < len(authors) else ""
            found.append(Note(attrs.get("ref", ""), author, rich_text(raw), raw))
        return found

    # ----------------------------------------------------------------- writing

    def replace_tool_notes(self, wanted: dict[str, str]) -> tuple[list[str], list[str]]:
        """Remove every tool note, then add one note per `wanted` cell (ref -> text, which
        the caller has put in OOXML's `_xHHHH_` escape where XML cannot hold it). Returns
        (cells noted, cells skipped because a person's note is already there). Each part is
        rewritten once, however many notes change."""
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
        if self.comments_rel is None:  # no comments part: no note to remove
            return
        part = self.comments_rel.target
        text = self.package.read(part)
        dropped = {n.raw for n in notes}
        self.package.write(part, _COMMENT.sub(
            lambda m: b"" if m.group() in dropped else m.group(), text))
        positions = {_cell_position(n.ref) for n in notes} - {None}
        if self.vml_rel is None or not positions:
            return
        vml = self.package.read(self.vml_rel.target)
        self.package.write(self.vml_rel.target, _SHAPE.sub(
            lambda m: b"" if _is_note(m.group()) and _shape_position(m.group()) in positions
            else m.group(), vml))

    def _add(self, wanted: dict[str, str]) -> None:
        comments_rel, vml_rel = self._ensure_parts()
        part = comments_rel.target
        text = self.package.read(part)
        authors = [unescape_xml(m.group(1) or b"") for m in _AUTHOR.finditer(
            _block(text, b"authors"))]
        if TOOL_AUTHOR in authors:
            author_id = authors.index(TOOL_AUTHOR)
        else:
            author_id = len(authors)
            text = _insert(text, b"authors", b"<author>" + TOOL_AUTHOR.encode() + b"</author>")
        vml = self.package.read(vml_rel.target)
        numbers = [int(n) for n in re.findall(rb'id="_x0000_s(\d+)"', vml)]
        idmap = re.search(rb'<o:idmap\b[^>]*\sdata="(\d+)', vml)
        shape_id = max(numbers, default=(int(idmap.group(1)) if idmap else 1) * 1024)
        comments, shapes = [], []
        for ref, body in wanted.items():
            position = _cell_position(ref)
            if position is None:  # replace_tool_notes passes cell references only
                continue
            lines = body.split("\n")
            runs = b'<r><rPr><b/><sz val="9"/><rFont val="Tahoma"/></rPr><t>' + \
                escape_xml(lines[0]) + b"</t></r>"
            if len(lines) > 1:
                runs += (b'<r><rPr><sz val="9"/><rFont val="Tahoma"/></rPr>'
                         b'<t xml:space="preserve">' + escape_xml("\n" + "\n".join(lines[1:]))
                         + b"</t></r>")
            comments.append(b'<comment ref="' + ref.encode() + b'" authorId="'
                            + str(author_id).encode() + b'"><text>' + runs
                            + b"</text></comment>")
            row, column = position
            shape_id += 1
            top = max(row - 1, 0)
            shapes.append(_NOTE_SHAPE.format(
                shape_id=shape_id, row=row, column=column,
                anchor=f"{column + 1}, 15, {top}, 10, {column + 4}, 15, {top + 5}, 4").encode())
        self.package.write(part, _insert(text, b"commentList", b"".join(comments)))
        self.package.write(vml_rel.target, _insert_vml(vml, b"".join(shapes)))

    def _ensure_parts(self) -> tuple[Relationship, Relationship]:
        """The comments part's and the VML drawing's relationships, each made when absent."""
        package = self.package
        names = set(package.names())
        if self.comments_rel is None:
            number = 1
            while f"xl/comments{number}.xml" in names:
                number += 1
            part = f"xl/comments{number}.xml"
            package.write(part, NEW_COMMENTS)
            add_content_type_override(package, part, CT_COMMENTS)
            rel_id = add_relationship(package, self.sheet_part, REL_COMMENTS, part)
            self.comments_rel = next(r for r in read_rels(package, self.sheet_part)
                                     if r.rel_id == rel_id)
        if self.vml_rel is None:
            number = 1
            while f"xl/drawings/vmlDrawing{number}.vml" in names:
                number += 1
            part = f"xl/drawings/vmlDrawing{number}.vml"
            idmaps = [int(n) for name in names if name.lower().endswith(".vml")
                      for n in re.findall(rb'<o:idmap\b[^>]*\sdata="(\d+)', package.read(name))]
            package.write(part, NEW_VML.replace(b"{idmap}", str(max(idmaps, default=0) + 1)
                                                .encode()))
            types = package.read("[Content_Types].xml")
            if not re.search(rb'Extension="vml"', types, re.IGNORECASE):
                entry = f'<Default Extension="vml" ContentType="{CT_VML}"/>'.encode()
                package.write("[Content_Types].xml",
                              insert_before_close(types, b"Types", entry))
            rel_id = add_relationship(package, self.sheet_part, REL_VML, part)
            self.vml_rel = next(r for r in read_rels(package, self.sheet_part)
                                if r.rel_id == rel_id)
            sheet = package.read(self.sheet_part)
            legacy = _LEGACY.search(sheet, sheet_data_end(sheet))
            if legacy is not None:  # pointing at a part that is gone: repoint it
                sheet = sheet[:legacy.start()] + sheet[legacy.end():]
            # Only a declaration on the root counts: openpyxl declares the prefix locally on
            # <tablePart>, where it does not reach a new <legacyDrawing>.
            root = matched(re.search(rb"<(?:\w+:)?worksheet\b[^>]*>", sheet),
                           f"{package.name}: <worksheet> in {self.sheet_part}")
            prefix = relationships_prefix(root.group())
            if prefix is None:
                sheet = sheet[:root.start()] + set_attribute(root.group(), "xmlns:r", NS_REL) \
                    + sheet[root.end():]
                prefix = b"r"
            element = b"<legacyDrawing " + prefix + b':id="' + rel_id.encode() + b'"/>'
            package.write(self.sheet_part, insert_in_worksheet(sheet, "legacyDrawing", element))
        return self.comments_rel, self.vml_rel

    def _drop_empty_parts(self) -> None:
        """A comments part left with no comment, and a VML drawing left with no shape, go
        (with their relationships, content type and `<legacyDrawing>`)."""
        package = self.package
        if self.comments_rel is not None and not _COMMENT.search(
                package.read(self.comments_rel.target)):
            _remove_part(package, self.sheet_part, self.comments_rel.rel_id,
                         self.comments_rel.target)
            self.comments_rel = None
        if self.vml_rel is not None and not _SHAPE.search(package.read(self.vml_rel.target)):
            _remove_part(package, self.sheet_part, self.vml_rel.rel_id, self.vml_rel.target)
            sheet = package.read(self.sheet_part)
            for legacy in _LEGACY.finditer(sheet, sheet_data_end(sheet)):
                attrs = attributes(legacy.group())
                if any(k.endswith(":id") and v == self.vml_rel.rel_id for k, v in attrs.items()):
                    package.write(self.sheet_part, sheet[:legacy.start()] + sheet[legacy.end():])
                    break
            self.vml_rel = None


def _remove_part(package: Package, source: str, rel_id: str, part: str) -> None:
    package.remove(part)
    name = rels_name(source)
    text = package.read(name)
    for match in re.finditer(rb"<(?:\w+:)?Relationship\b[^>]*>", text):
        if attributes(match.group()).get("Id") == rel_id:
            text = text[:match.start()] + text[match.end():]
            break
    package.write(name, text)
    types = package.read("[Content_Types].xml")
    override = re.search(rb'<(?:\w+:)?Override\b[^>]*PartName="/' + re.escape(part.encode())
                         + rb'"[^>]*>', types)
    if override is not None:
        package.write("[Content_Types].xml", types[:override.start()] + types[override.end():])
    rels_of_part = rels_name(part)
    if package.has(rels_of_part):
        package.remove(rels_of_part)


def _block(text: bytes, element: bytes) -> bytes:
    found = re.search(rb"<((?:\w+:)?" + element + rb")\b[^>]*?(?:/>|>(.*?)</\1\s*>)", text,
                      re.DOTALL)
    return (found.group(2) or b"") if found else b""


def _insert(text: bytes, element: bytes, entry: bytes) -> bytes:
    """`entry` added as the last child of `element` (made before `commentList` for authors,
    before the end of the root for commentList), in the part's namespace prefix."""
    root = re.search(rb"<(\w+:)?comments\b", text)
    prefix = (root.group(1) or b"") if root else b""
    if prefix:
        entry = re.sub(rb"<(/?)(?=\w)", rb"<\1" + prefix, entry)
    if re.search(rb"<(?:\w+:)?" + element + rb"\b", text):
        return insert_before_close(text, element, entry)
    block = b"<" + prefix + element + b">" + entry + b"</" + prefix + element + b">"
    if element == b"authors":
        before = re.search(rb"<(?:\w+:)?commentList\b", text)
        at = before.start() if before else matched(re.search(
            rb"</(?:\w+:)?comments\s*>", text), "a comments part (its </comments>)").start()
    else:
        at = matched(re.search(rb"</(?:\w+:)?comments\s*>", text),
                     "a comments part (its </comments>)").start()
    return text[:at] + block + text[at:]


def _insert_vml(vml: bytes, shape: bytes) -> bytes:
    if not re.search(rb'<v:shapetype\b[^>]*id="_x0000_t202"', vml):
        shape = _NOTE_SHAPETYPE + shape
    closing = vml.rfind(b"</xml>")
    if closing < 0:
        raise ValueError("a VML drawing without </xml>")
    return vml[:closing] + shape + vml[closing:]


def _shape_position(shape: bytes) -> tuple[int, int] | None:
    row = re.search(rb"<x:Row>\s*(\d+)\s*</x:Row>", shape)
    column = re.search(rb"<x:Column>\s*(\d+)\s*</x:Column>", shape)
    return (int(row.group(1)), int(column.group(1))) if row and column else None


def _is_note(shape: bytes) -> bool:
    return re.search(rb'ObjectType\s*=\s*"Note"', shape) is not None


NEW_COMMENTS = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                b'<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b"<authors><author>" + TOOL_AUTHOR.encode() + b"</author></authors>"
                b"<commentList></commentList></comments>")

NEW_VML = (b'<xml xmlns:v="urn:schemas-microsoft-com:vml" '
           b'xmlns:o="urn:schemas-microsoft-com:office:office" '
           b'xmlns:x="urn:schemas-microsoft-com:office:excel">'
           b'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{idmap}"/>'
           b"</o:shapelayout></xml>")

_NOTE_SHAPETYPE = (b'<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" '
                   b'path="m,l,21600r21600,l21600,xe"><v:stroke joinstyle="miter"/>'
                   b'<v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>')

_NOTE_SHAPE = (
    '<v:shape id="_x0000_s{shape_id}" type="#_x0000_t202" style="position:absolute;'
    'margin-left:80pt;margin-top:2pt;width:240pt;height:80pt;z-index:1;visibility:hidden" '
    'fillcolor="#ffffe1" o:insetmode="auto"><v:fill color2="#ffffe1"/>'
    '<v:shadow on="t" color="black" obscured="t"/><v:path o:connecttype="none"/>'
    '<v:textbox style="mso-direction-alt:auto"><div style="text-align:left"></div>'
    '</v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
    '<x:Anchor>{anchor}</x:Anchor><x:AutoFill>False</x:AutoFill>'
    '<x:Row>{row}</x:Row><x:Column>{column}</x:Column></x:ClientData></v:shape>')
