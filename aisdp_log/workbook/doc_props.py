"""The workbook's custom document properties (`docProps/custom.xml`), where the template
records which template version made a log (`aisdp-log template version`)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from aisdp_log.workbook.xlsx_package import (
    Package,
    add_content_type_override,
    add_relationship,
    attributes,
    escape_xml,
    insert_before_close,
    read_rels,
    unescape_xml,
)

CUSTOM_PART = "docProps/custom.xml"
REL_CUSTOM = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/" \
    "custom-properties"
CT_CUSTOM = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
TEMPLATE_VERSION_PROPERTY = "aisdp-log template version"
TOOL_VERSION_PROPERTY = "aisdp-log version"
_FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
_PROPERTY = re.compile(rb"<(?:\w+:)?property\b[^>]*>(.*?)</(?:\w+:)?property\s*>", re.DOTALL)
#: A custom properties part larger than this is not something a spreadsheet program wrote.
_MAX_PART = 1 << 20


def parse_properties(text: bytes) -> dict[str, str]:
    """Name -> value (as text) of every custom property in `text`."""
    found = {}
    for match in _PROPERTY.finditer(text):
        name = attributes(match.group()[:match.group().index(b">") + 1]).get("name")
        value = re.search(rb"<(?:\w+:)?\w+\b[^>]*>(.*?)</", match.group(1), re.DOTALL)
        if name is not None:
            found[name] = unescape_xml(value.group(1)).strip() if value else ""
    return found


def _custom_part(package_names: list[str], rels: list) -> str | None:
    for rel in rels:
        if rel.rel_type == REL_CUSTOM and rel.target in package_names:
            return rel.target
    return CUSTOM_PART if CUSTOM_PART in package_names else None


def read_properties(path: Path | str) -> dict[str, str]:
    """The custom properties of the workbook at `path` ({} where it has none or the part
    cannot be read). The caller has already checked the container is safe."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = next((i for i in archive.infolist() if i.filename == CUSTOM_PART), None)
            if info is None or info.file_size > _MAX_PART:
                return {}
            return parse_properties(archive.read(info))
    except (OSError, zipfile.BadZipFile, ValueError, KeyError):
        return {}


def package_properties(package: Package) -> dict[str, str]:
    part = _custom_part(package.names(), read_rels(package, ""))
    return parse_properties(package.read(part)) if part else {}


def set_properties(package: Package, values: dict[str, str]) -> None:
    """Set text custom properties (made, with the part, where absent); others are kept."""
    part = _custom_part(package.names(), read_rels(package, ""))
    if part is None:
        part = CUSTOM_PART
        package.write(part, b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                      b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/'
                      b'2006/custom-properties" xmlns:vt="http://schemas.openxmlformats.org/'
                      b'officeDocument/2006/docPropsVTypes"></Properties>')
        add_content_type_override(package, part, CT_CUSTOM)
        add_relationship(package, "", REL_CUSTOM, part)
    text = package.read(part)
    for name, value in values.items():
        new_value = b"<vt:lpwstr>" + escape_xml(value) + b"</vt:lpwstr>"
        for match in _PROPERTY.finditer(text):
            head = match.group()[:match.group().index(b">") + 1]
            if attributes(head).get("name") == name:
                element = head + new_value + match.group()[match.group().rindex(b"</"):]
                text = text[:match.start()] + element + text[match.end():]
                break
        else:
            pids = [int(p) for p in re.findall(rb'\spid="(\d+)"', text)]
            element = (b'<property fmtid="' + _FMTID.encode() + b'" pid="'
                       + str(max(pids, default=1) + 1).encode() + b'" name="'
                       + escape_xml(name, attribute=True) + b'">' + new_value + b"</property>")
            text = insert_before_close(text, b"Properties", element)
    package.write(part, text)


def older_template(version: str | None, current: str) -> bool:
    """Whether a log's template version (a whole number as text) is older than `current`."""
    if version is None or not version.strip().isdigit() or not current.isdigit():
        return False
    return int(version) < int(current)
