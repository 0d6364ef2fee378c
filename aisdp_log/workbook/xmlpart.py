"""XML parts as the writer edits them: parsed by lxml, edited as trees with namespace-qualified
names, serialised with the part's own XML declaration. lxml keeps prefixes and declarations
as written (Excel's `mc:Ignorable` needs that; ElementTree renames them). The parser resolves
no entity, loads no DTD, reaches no network, keeps libxml2's size limits (`huge_tree` off) and
a DOCTYPE is refused; sizes were checked before inflating (`workbook.container`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from aisdp_log.errors import WorkbookError
from aisdp_log.spec import column_letters, column_number

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
NS_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
NS_X14 = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"
NS_XM = "http://schemas.microsoft.com/office/excel/2006/main"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                          load_dtd=False, dtd_validation=False, remove_blank_text=False)


def qn(local: str, ns: str = NS_MAIN) -> str:
    """`{namespace}local`, lxml's qualified name."""
    return f"{{{ns}}}{local}"


def local(element) -> str:
    """An element's name without its namespace ('' for comments and PIs)."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def parse_xml(data: bytes, where: str):
    """The root element of `data`, parsed by the hardened parser; WorkbookError naming
    `where` for what is not well-formed XML or holds a DOCTYPE."""
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise WorkbookError(f"{where}: not well-formed XML ({reason})") from None
    if root.getroottree().docinfo.doctype:
        raise WorkbookError(f"{where}: holds a DOCTYPE, which no spreadsheet program writes; "
                            "refusing to read it")
    return root


_DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml\b[^>]*\?>\s*")


def prolog_of(data: bytes) -> bytes:
    """The XML declaration (and the white space after it) as the part wrote it; a fresh one
    where the part declared another encoding than UTF-8 (the writer writes UTF-8)."""
    found = _DECLARATION.match(data)
    if found is None:
        return b""
    declaration = found.group()
    encoding = re.search(rb"""encoding\s*=\s*["']([^"']+)""", declaration)
    if encoding and encoding.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    return declaration.lstrip(b"\xef\xbb\xbf")


def serialise(root, prolog: bytes) -> bytes:
    """A tree as part bytes: the original declaration, then lxml's UTF-8 serialisation
    (comments and processing instructions around the root included)."""
    return prolog + etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=False)


@dataclass
class XmlPart:
    """One parsed part: its tree, and whether an edit changed it (only then is it written)."""
    name: str
    root: object
    prolog: bytes
    dirty: bool = False


def sub(parent, name: str, attrs: dict[str, str] | None = None, *, ns: str | None = None,
        index: int | None = None):
    """A new child `name` of `parent`, in `parent`'s namespace unless `ns` is given; lxml
    writes the prefix the file declares for it. Inserted at `index` (default: last)."""
    namespace = ns if ns is not None else etree.QName(parent).namespace
    tag = qn(name, namespace) if namespace else name
    element = parent.makeelement(tag, attrs or {})
    parent.insert(len(parent) if index is None else index, element)
    return element


def graft(parent, source, index: int | None = None):
    """A copy of `source` (an element from another tree, e.g. a template) as a child of
    `parent`, each element re-created in `parent`'s tree so it takes the prefixes declared
    there instead of carrying its own declarations."""
    namespace = etree.QName(source).namespace
    element = sub(parent, etree.QName(source).localname, dict(source.attrib),
                  ns=namespace or "", index=index)
    element.text = source.text
    for child in source:
        if isinstance(child.tag, str):
            graft(element, child).tail = child.tail
    return element


def shape(element) -> tuple:
    """What an element says, independent of prefixes: to tell equal styles apart."""
    return (element.tag, tuple(sorted(element.attrib.items())), (element.text or "").strip(),
            tuple(shape(c) for c in element if isinstance(c.tag, str)))


def place(parent, name: str, order: tuple[str, ...], attrs: dict[str, str] | None = None):
    """A new child `name` of `parent` placed where the schema's child `order` wants it:
    before the first existing child that must follow it."""
    later = set(order[order.index(name) + 1:])
    index = next((i for i, child in enumerate(parent) if local(child) in later), None)
    return sub(parent, name, attrs, index=index)


def rich_text(element) -> str:
    """The text of an `<si>`, `<is>` or `<comment>`'s `<text>`: its `<t>` and runs' `<t>`,
    without phonetic hints (`<rPh>`)."""
    parts = []
    for child in element:
        name = local(child)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            parts.extend(t.text or "" for t in child if local(t) == "t")
        elif name == "text":
            parts.append(rich_text(child))
    return decode_ooxml("".join(parts))


# --------------------------------------------------------------------------- OOXML text

_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
#: Characters an XML 1.0 document cannot hold (and CR, which XML readers turn into LF),
#: written with OOXML's `_xHHHH_` escape as Excel does.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: A literal `_xHHHH_` in user text, which a reader would otherwise decode.
_LOOKS_ESCAPED = re.compile(r"_(x[0-9A-Fa-f]{4}_)")


def decode_ooxml(text: str) -> str:
    """Undo OOXML's `_xHHHH_` escape, as Excel, LibreOffice and calamine read it."""
    return _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text \
        else text


def escape_ooxml(text: str) -> str:
    """Text as OOXML stores it: a literal `_xHHHH_` becomes `_x005F_xHHHH_`, and a character
    XML cannot hold (C0 controls other than tab and newline, CR, U+FFFE, U+FFFF, a lone
    surrogate) becomes `_xHHHH_`. Every reader opens the result; Excel and LibreOffice
    show the text meant, calamine decodes all but U+FFFE, U+FFFF and surrogates (it shows
    their escape), openpyxl shows the escape text as stored. A lone surrogate is no
    character, so nothing can show it: LibreOffice shows `?`."""
    text = _LOOKS_ESCAPED.sub(r"_x005F_\1", text)
    return _UNWRITABLE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def set_text(t, text: str) -> None:
    """`text` (already OOXML-escaped) into a `<t>`, keeping its spaces where they matter."""
    t.text = text
    if text != text.strip() or "\n" in text or "\t" in text:
        t.set(XML_SPACE, "preserve")


def set_inline_string(cell, text: str) -> None:
    """Make the `<c>` `cell` an inline string holding `text` (already OOXML-escaped)."""
    cell.set("t", "inlineStr")
    set_text(sub(sub(cell, "is"), "t"), text)


# --------------------------------------------------------------------------- cell ranges

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


def grow_attribute(element, name: str, row: int) -> bool:
    """Grow the range list in `element`'s attribute `name` over `row`; whether it changed."""
    value = element.get(name)
    if value is None:
        return False
    grown = grow_sqref(value, row)
    if grown != value:
        element.set(name, grown)
        return True
    return False
