"""Cell styles of an .xlsx, read and extended in place: new entries only ever go at the end
of their list, so every index a cell already uses keeps meaning what it meant."""

from __future__ import annotations

import re

from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.xlsx_package import (
    Package,
    attributes,
    escape_xml,
    insert_before_close,
    matched,
    set_attribute,
)

#: Built-in number formats (ECMA-376 18.8.30) that aisdp-log may ask for by code.
BUILTIN_FORMATS = {0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00", 9: "0%",
                   10: "0.00%", 11: "0.00E+00", 12: "# ?/?", 13: "# ??/??", 14: "mm-dd-yy",
                   15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM",
                   19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 22: "m/d/yy h:mm",
                   37: "#,##0 ;(#,##0)", 38: "#,##0 ;[Red](#,##0)",
                   39: "#,##0.00;(#,##0.00)", 40: "#,##0.00;[Red](#,##0.00)", 45: "mm:ss",
                   46: "[h]:mm:ss", 47: "mmss.0", 48: "##0.0E+0", 49: "@"}
_BUILTIN_DATES = set(range(14, 23)) | set(range(27, 37)) | {45, 46, 47} | set(range(50, 59))

_XF = re.compile(rb"<(?:\w+:)?xf\b[^>]*?(?:/>|>.*?</(?:\w+:)?xf>)", re.DOTALL)
_FONT = re.compile(rb"<(?:\w+:)?font\b[^>]*?(?:/>|>.*?</(?:\w+:)?font>)", re.DOTALL)
_NUMFMT = re.compile(rb"<(?:\w+:)?numFmt\b[^>]*>")


def is_date_format(code: str) -> bool:
    """Whether a number format shows a date or time (as Excel decides it)."""
    if not code or code == "General":
        return False
    plain = re.sub(r'"[^"]*"|\\.|_.|\*.', "", code)
    plain = re.sub(r"\[(?!h\]|hh\]|m\]|mm\]|s\]|ss\])[^\]]*\]", "", plain, flags=re.IGNORECASE)
    plain = plain.split(";")[0]
    return bool(re.search(r"[dmyhs]", plain, re.IGNORECASE)) and not re.search(r"[0#?]", plain)


def _children(text: bytes, element: bytes, child: bytes) -> list[bytes]:
    found = _section(text, element)
    return re.findall(rb"<(?:\w+:)?" + child + rb"\b[^>]*?(?:/>|>.*?</(?:\w+:)?" + child
                      + rb">)", found.group(3) or b"", re.DOTALL) if found else []


def _section(text: bytes, element: bytes) -> re.Match[bytes] | None:
    return re.search(rb"<((?:\w+:)?" + element + rb")\b([^>]*?)(?:/>|>(.*?)</\1\s*>)", text,
                     re.DOTALL)


def _head(element: bytes) -> bytes:
    """The opening tag of an element of the styles part."""
    return matched(re.match(rb"<[^>]*>", element), "an element of the styles part").group()


class Styles:
    """`styles.xml`: the cell formats (`cellXfs`), number formats and fonts."""

    def __init__(self, package: Package, part: str | None):
        self.package, self.part = package, part
        self._text = package.read(part) if part else b""
        self._derived: dict[tuple, int] = {}
        self._load()

    def _load(self) -> None:
        text = self._text
        xfs = _section(text, b"cellXfs")
        self.xfs = [m.group() for m in _XF.finditer(xfs.group(3) or b"")] if xfs else []
        self._keys = {self._key(xf): index for index, xf in reversed(list(enumerate(self.xfs)))}
        formats = _section(text, b"numFmts")
        self.formats = dict(BUILTIN_FORMATS)
        for match in _NUMFMT.finditer((formats.group(3) or b"") if formats else b""):
            attrs = attributes(match.group())
            if attrs.get("numFmtId", "").isdigit():
                self.formats[int(attrs["numFmtId"])] = attrs.get("formatCode", "")
        fonts = _section(text, b"fonts")
        self.fonts = [m.group() for m in _FONT.finditer(fonts.group(3) or b"")] if fonts else []
        dxfs = _section(text, b"dxfs")
        self.dxfs = re.findall(rb"<(?:\w+:)?dxf\b[^>]*?(?:/>|>.*?</(?:\w+:)?dxf>)",
                               dxfs.group(3) or b"", re.DOTALL) if dxfs else []

    @staticmethod
    def _key(xf: bytes) -> tuple:
        head = _head(xf)
        inner = xf[len(head):]
        inner = re.sub(rb"</(?:\w+:)?xf>$", b"", inner)
        return tuple(sorted(attributes(head).items())), inner.strip()

    # ----------------------------------------------------------------- reading

    def xf_attrs(self, index: int) -> dict[str, str]:
        if 0 <= index < len(self.xfs):
            return attributes(_head(self.xfs[index]))
        return {}

    def number_format(self, index: int) -> str:
        number_id = self.xf_attrs(index).get("numFmtId", "0")
        return self.formats.get(int(number_id), "General") if number_id.isdigit() else "General"

    def is_date(self, index: int) -> bool:
        number_id = self.xf_attrs(index).get("numFmtId", "0")
        if number_id.isdigit() and int(number_id) in _BUILTIN_DATES:
            return True
        return is_date_format(self.number_format(index))

    def quote_prefix(self, index: int) -> bool:
        return self.xf_attrs(index).get("quotePrefix", "0") in ("1", "true")

    def dxf_number_format(self, dxf_index: int) -> str | None:
        if not 0 <= dxf_index < len(self.dxfs):
            return None
        found = _NUMFMT.search(self.dxfs[dxf_index])
        return attributes(found.group()).get("formatCode") if found else None

    # ----------------------------------------------------------------- extending

    def derive(self, base: int, *, number_format: str | None = None,
               quote_prefix: bool | None = None, bold: bool = False) -> int:
        """The index of a cell format like `base` but with these changes; an existing equal
        one is reused, else one is appended."""
        if not self.part or not self.xfs:
            return base
        base = base if 0 <= base < len(self.xfs) else 0
        wish = (base, number_format, quote_prefix, bold)
        if wish not in self._derived:
            try:
                self._derived[wish] = self._derive(base, number_format, quote_prefix, bold)
            except (AttributeError, ValueError, KeyError, IndexError, WorkbookError):
                # A styles part shaped unlike any spreadsheet program writes: the value is
                # still written, in the style it would have had anyway.
                self._derived[wish] = base
        return self._derived[wish]

    def _derive(self, base: int, number_format: str | None, quote_prefix: bool | None,
                bold: bool) -> int:
        xf = self.xfs[base]
        head = _head(xf)
        new_head = head
        if number_format is not None:
            new_head = set_attribute(new_head, "numFmtId", str(self._format_id(number_format)))
            new_head = set_attribute(new_head, "applyNumberFormat", "1")
        if quote_prefix is not None:
            new_head = set_attribute(new_head, "quotePrefix", "1" if quote_prefix else None)
        if bold:
            font = int(self.xf_attrs(base).get("fontId", "0") or 0)
            new_head = set_attribute(new_head, "fontId", str(self._bold_font(font)))
            new_head = set_attribute(new_head, "applyFont", "1")
        new_xf = new_head + xf[len(head):]
        index = self._keys.get(self._key(new_xf))
        if index is None:
            index = len(self.xfs)
            self._append(b"cellXfs", new_xf)
            self.xfs.append(new_xf)
            self._keys[self._key(new_xf)] = index
        return index

    def _format_id(self, code: str) -> int:
        for number_id, known in self.formats.items():
            if known == code:
                return number_id
        number_id = max([163, *(i for i in self.formats if i >= 164)]) + 1
        entry = (b'<numFmt numFmtId="' + str(number_id).encode() + b'" formatCode="'
                 + escape_xml(code, attribute=True) + b'"/>')
        if _section(self._text, b"numFmts") is None:
            root = matched(re.search(rb"<(?:\w+:)?styleSheet\b[^>]*>", self._text),
                           self._where(b"styleSheet"))
            prefix = matched(re.match(rb"<(\w+:)?", root.group()), self._where(b"styleSheet")
                             ).group(1) or b""
            block = b"<" + prefix + b'numFmts count="1">' + entry.replace(
                b"<numFmt", b"<" + prefix + b"numFmt") + b"</" + prefix + b"numFmts>"
            self._text = self._text[:root.end()] + block + self._text[root.end():]
        else:
            self._append(b"numFmts", entry)
        self.formats[number_id] = code
        return number_id

    def _bold_font(self, font: int) -> int:
        source = self.fonts[font] if 0 <= font < len(self.fonts) else b"<font/>"
        if re.search(rb"<(?:\w+:)?b\s*/>|<(?:\w+:)?b\s+val=\"(?:1|true)\"", source):
            return font
        prefix = matched(re.match(rb"<(\w+:)?", source), self._where(b"font")).group(1) or b""
        if source.endswith(b"/>"):
            bold = source[:-2] + b"><" + prefix + b"b/></" + prefix + b"font>"
        else:
            head = _head(source)
            bold = head + b"<" + prefix + b"b/>" + source[len(head):]
        if bold in self.fonts:
            return self.fonts.index(bold)
        self._append(b"fonts", bold)
        self.fonts.append(bold)
        return len(self.fonts) - 1

    def _append(self, element: bytes, entry: bytes) -> None:
        """Append `entry` at the end of `element`'s children and raise its `count`."""
        child = {b"cellXfs": b"xf", b"numFmts": b"numFmt", b"fonts": b"font", b"fills": b"fill",
                 b"borders": b"border"}[element]
        found = matched(_section(self._text, element), self._where(element))
        prefix = matched(re.match(rb"(\w+:)?", found.group(1)), self._where(element)
                         ).group(1) or b""
        if prefix and not entry.startswith(b"<" + prefix):
            entry = re.sub(rb"<(/?)(?=\w)", rb"<\1" + prefix, entry)
        text = insert_before_close(self._text[:found.end()], element, entry) \
            + self._text[found.end():]
        found = matched(_section(text, element), self._where(element))
        head_end = found.start() + len(b"<" + found.group(1) + found.group(2)) + 1
        head = text[found.start():head_end]
        count = len(re.findall(rb"<(?:\w+:)?" + child + rb"\b", found.group(3) or b""))
        if re.search(rb"\scount\s*=", head):
            head = set_attribute(head, "count", str(count))
        self._text = text[:found.start()] + head + text[head_end:]

    def import_xf(self, source: Styles, index: int) -> int:
        """The index of a cell format here that looks like `source`'s format `index` (its
        font, fill, border, number format and alignment copied over, appended at the end of
        their lists); an equal existing one is reused. Used to copy a sheet between
        workbooks (the template's Guide)."""
        if not self.part or not self.xfs or not 0 <= index < len(source.xfs):
            return 0
        xf = source.xfs[index]
        attrs = source.xf_attrs(index)
        head = _head(xf)
        new_head = head
        for element, child, name in ((b"fonts", b"font", "fontId"), (b"fills", b"fill", "fillId"),
                                     (b"borders", b"border", "borderId")):
            wanted = _children(source._text, element, child)
            at = int(attrs.get(name, "0") or 0)
            if at < len(wanted):
                mine = _children(self._text, element, child)
                if wanted[at] in mine:
                    new_id = mine.index(wanted[at])
                else:
                    self._append(element, wanted[at])
                    new_id = len(mine)
                    if element == b"fonts":
                        self.fonts.append(wanted[at])
                new_head = set_attribute(new_head, name, str(new_id))
        number_id = attrs.get("numFmtId", "0")
        if number_id.isdigit() and int(number_id) >= 164:
            code = source.formats.get(int(number_id), "General")
            new_head = set_attribute(new_head, "numFmtId", str(self._format_id(code)))
        new_head = set_attribute(new_head, "xfId", "0")
        new_xf = new_head + xf[len(head):]
        found = self._keys.get(self._key(new_xf))
        if found is None:
            found = len(self.xfs)
            self._append(b"cellXfs", new_xf)
            self.xfs.append(new_xf)
            self._keys[self._key(new_xf)] = found
        return found

    def dxf_index(self, dxf: bytes) -> int | None:
        """The index of the differential format `dxf` (a `<dxf>` element, unprefixed), as
        conditional formats refer to it; appended to `<dxfs>` (made when absent) unless an
        equal one exists. None when the workbook has no styles part."""
        if not self.part:
            return None
        root = re.search(rb"<(?:\w+:)?styleSheet\b[^>]*>", self._text)
        prefix = matched(re.match(rb"<(\w+:)?", root.group()), self._where(b"styleSheet")
                         ).group(1) or b"" if root else b""
        if prefix:
            dxf = re.sub(rb"<(/?)(?=\w)", rb"<\1" + prefix, dxf)
        if dxf in self.dxfs:
            return self.dxfs.index(dxf)
        found = _section(self._text, b"dxfs")
        if found is None:
            # CT_Stylesheet order: ... cellStyles, dxfs, tableStyles, colors, extLst
            block = b"<" + prefix + b'dxfs count="1">' + dxf + b"</" + prefix + b"dxfs>"
            after = re.search(rb"<(?:\w+:)?(?:tableStyles|colors|extLst)\b|</(?:\w+:)?"
                              rb"styleSheet\s*>", self._text)
            at = after.start() if after else len(self._text)
            self._text = self._text[:at] + block + self._text[at:]
        else:
            text = insert_before_close(self._text[:found.end()], b"dxfs", dxf) + \
                self._text[found.end():]
            found = matched(_section(text, b"dxfs"), self._where(b"dxfs"))
            head_end = found.start() + len(b"<" + found.group(1) + found.group(2)) + 1
            head = set_attribute(text[found.start():head_end], "count", str(len(self.dxfs) + 1))
            self._text = text[:found.start()] + head + text[head_end:]
        self.dxfs.append(dxf)
        return len(self.dxfs) - 1

    def _where(self, element: bytes) -> str:
        """`element` of this styles part, as an error message names it."""
        return f"{self.package.name}: <{element.decode()}> in {self.part}"

    def save(self) -> None:
        if self.part:
            self.package.write(self.part, self._text)
