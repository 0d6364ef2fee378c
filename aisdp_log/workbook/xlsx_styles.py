"""Cell styles of an .xlsx, read and extended as an lxml tree: new entries only ever go at the
end of their list, so every index a cell already uses keeps meaning what it meant."""

from __future__ import annotations

import copy
import re

from aisdp_log.workbook.xlsx_package import Package
from aisdp_log.workbook.xmlpart import graft, local, parse_xml, place, qn, shape, sub

#: Built-in number formats (ECMA-376 18.8.30) that aisdp-log may ask for by code.
BUILTIN_FORMATS = {0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00", 9: "0%",
                   10: "0.00%", 11: "0.00E+00", 12: "# ?/?", 13: "# ??/??", 14: "mm-dd-yy",
                   15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM",
                   19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 22: "m/d/yy h:mm",
                   37: "#,##0 ;(#,##0)", 38: "#,##0 ;[Red](#,##0)",
                   39: "#,##0.00;(#,##0.00)", 40: "#,##0.00;[Red](#,##0.00)", 45: "mm:ss",
                   46: "[h]:mm:ss", 47: "mmss.0", 48: "##0.0E+0", 49: "@"}
_BUILTIN_DATES = set(range(14, 23)) | set(range(27, 37)) | {45, 46, 47} | set(range(50, 59))
#: CT_Stylesheet's children in order: a list made where absent goes in its place.
STYLESHEET_ORDER = ("numFmts", "fonts", "fills", "borders", "cellStyleXfs", "cellXfs",
                    "cellStyles", "dxfs", "tableStyles", "colors", "extLst")


def is_date_format(code: str) -> bool:
    """Whether a number format shows a date or time (as Excel decides it)."""
    if not code or code == "General":
        return False
    plain = re.sub(r'"[^"]*"|\\.|_.|\*.', "", code)
    plain = re.sub(r"\[(?!h\]|hh\]|m\]|mm\]|s\]|ss\])[^\]]*\]", "", plain, flags=re.IGNORECASE)
    plain = plain.split(";")[0]
    return bool(re.search(r"[dmyhs]", plain, re.IGNORECASE)) and not re.search(r"[0#?]", plain)


def _number(value: str | None, default: int = 0) -> int:
    return int(value) if value and value.isdigit() else default


class Styles:
    """`styles.xml`: the cell formats (`cellXfs`), number formats, fonts and `dxfs`."""

    def __init__(self, package: Package, part: str | None):
        self.package, self.part = package, part
        self.root = package.xml(part) if part else None
        self._derived: dict[tuple, int] = {}
        self.formats = dict(BUILTIN_FORMATS)
        for element in self._items("numFmts", "numFmt"):
            if element.get("numFmtId", "").isdigit():
                self.formats[int(element.get("numFmtId"))] = element.get("formatCode", "")

    def _list(self, name: str, create: bool = False):
        if self.root is None:
            return None
        found = self.root.find(qn(name, _ns(self.root)))
        if found is None and create:
            found = place(self.root, name, STYLESHEET_ORDER, {"count": "0"})
        return found

    def _items(self, name: str, child: str) -> list:
        found = self._list(name)
        return [] if found is None else [e for e in found if local(e) == child]

    @property
    def xfs(self) -> list:
        return self._items("cellXfs", "xf")

    def _append(self, name: str, child: str, element=None, source=None) -> int:
        """Append `element` (of this tree) or a copy of `source` (another tree's) to the
        list `name`, raise its count, and return the new index."""
        parent = self._list(name, create=True)
        graft(parent, source) if source is not None else parent.append(element)
        count = len([e for e in parent if local(e) == child])
        parent.set("count", str(count))
        assert self.part is not None
        self.package.touch(self.part)
        return count - 1

    # ----------------------------------------------------------------- reading

    def xf_attrs(self, index: int) -> dict[str, str]:
        xfs = self.xfs
        return dict(xfs[index].attrib) if 0 <= index < len(xfs) else {}

    def number_format(self, index: int) -> str:
        return self.formats.get(_number(self.xf_attrs(index).get("numFmtId")), "General")

    def is_date(self, index: int) -> bool:
        number_id = _number(self.xf_attrs(index).get("numFmtId"))
        return number_id in _BUILTIN_DATES or is_date_format(self.number_format(index))

    def quote_prefix(self, index: int) -> bool:
        return self.xf_attrs(index).get("quotePrefix", "0") in ("1", "true")

    def dxf_number_format(self, dxf_index: int) -> str | None:
        dxfs = self._items("dxfs", "dxf")
        if not 0 <= dxf_index < len(dxfs):
            return None
        found = next((e for e in dxfs[dxf_index] if local(e) == "numFmt"), None)
        return None if found is None else found.get("formatCode")

    # ----------------------------------------------------------------- extending

    def derive(self, base: int, *, number_format: str | None = None,
               quote_prefix: bool | None = None, bold: bool = False) -> int:
        """The index of a cell format like `base` but with these changes; an existing equal
        one is reused, else one is appended."""
        xfs = self.xfs
        if not xfs:
            return base
        base = base if 0 <= base < len(xfs) else 0
        wish = (base, number_format, quote_prefix, bold)
        if wish not in self._derived:
            xf = copy.deepcopy(xfs[base])
            if number_format is not None:
                xf.set("numFmtId", str(self._format_id(number_format)))
                xf.set("applyNumberFormat", "1")
            if quote_prefix:
                xf.set("quotePrefix", "1")
            elif quote_prefix is not None:
                xf.attrib.pop("quotePrefix", None)
            if bold:
                xf.set("fontId", str(self._bold_font(_number(xf.get("fontId")))))
                xf.set("applyFont", "1")
            self._derived[wish] = self._xf_index(xf)
        return self._derived[wish]

    def _reuse_or_append(self, name: str, child: str, element=None, source=None) -> int:
        """The index of the first entry of list `name` equal to `element` (of this tree) or
        `source` (another tree's), which is appended where none is."""
        wanted = shape(element if element is not None else source)
        for index, existing in enumerate(self._items(name, child)):
            if shape(existing) == wanted:
                return index
        return self._append(name, child, element, source)

    def _xf_index(self, xf) -> int:
        return self._reuse_or_append("cellXfs", "xf", xf)

    def _format_id(self, code: str) -> int:
        for number_id, known in self.formats.items():
            if known == code:
                return number_id
        number_id = max([163, *(i for i in self.formats if i >= 164)]) + 1
        element = self._list("numFmts", create=True).makeelement(qn("numFmt", _ns(self.root)),
                                                                 {})
        element.set("numFmtId", str(number_id))
        element.set("formatCode", code)
        self._append("numFmts", "numFmt", element)
        self.formats[number_id] = code
        return number_id

    def _bold_font(self, font: int) -> int:
        fonts = self._items("fonts", "font")
        if not 0 <= font < len(fonts):
            return font
        if any(local(e) == "b" and e.get("val", "1") in ("1", "true") for e in fonts[font]):
            return font
        bold = copy.deepcopy(fonts[font])
        for element in [e for e in bold if local(e) == "b"]:
            bold.remove(element)
        sub(bold, "b", index=0)
        return self._reuse_or_append("fonts", "font", bold)

    def import_xf(self, source: Styles, index: int) -> int:
        """The index of a cell format here that looks like `source`'s format `index` (its
        font, fill, border, number format and alignment copied over, appended at the end of
        their lists); an equal existing one is reused. Used to copy a sheet between
        workbooks (the template's Guide)."""
        if not self.xfs or not 0 <= index < len(source.xfs):
            return 0
        xf = copy.deepcopy(source.xfs[index])
        for name, child, attribute in (("fonts", "font", "fontId"), ("fills", "fill", "fillId"),
                                       ("borders", "border", "borderId")):
            wanted = source._items(name, child)
            at = _number(xf.get(attribute))
            if at < len(wanted):
                xf.set(attribute, str(self._reuse_or_append(name, child, source=wanted[at])))
        number_id = _number(xf.get("numFmtId"))
        if number_id >= 164:
            xf.set("numFmtId", str(self._format_id(source.formats.get(number_id, "General"))))
        xf.set("xfId", "0")
        holder = self._list("cellXfs", create=True)
        copied = graft(holder, xf)
        holder.remove(copied)
        return self._xf_index(copied)

    def dxf_index(self, dxf: bytes) -> int | None:
        """The index of the differential format `dxf` (a `<dxf>` element in the main
        namespace), as conditional formats refer to it; appended to `<dxfs>` (made when
        absent) unless an equal one exists. None when the workbook has no styles part."""
        if self.root is None:
            return None
        wanted = parse_xml(b'<dxf xmlns="' + _ns(self.root).encode() + b'">' +
                           dxf[len(b"<dxf>"):], "a differential format")
        return self._reuse_or_append("dxfs", "dxf", source=wanted)


def _ns(root) -> str:
    return root.tag.partition("}")[0].lstrip("{")
