"""The workbook's custom document properties (`docProps/custom.xml`, found by the package's
relationship), where the template records which template version made a log
(`aisdp-log template version`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.package import Package as ReadPackage
from aisdp_log.workbook.xlsx_package import Package
from aisdp_log.workbook.xmlpart import local, parse_xml, sub

CUSTOM_PART = "docProps/custom.xml"
NS_CUSTOM = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
NS_VT = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
REL_CUSTOM = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/" \
    "custom-properties"
CT_CUSTOM = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
TEMPLATE_VERSION_PROPERTY = "aisdp-log template version"
TOOL_VERSION_PROPERTY = "aisdp-log version"
_FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
#: A custom properties part larger than this is not something a spreadsheet program wrote.
_MAX_PART = 1 << 20


def parse_properties(root) -> dict[str, str]:
    """Name -> value (as text) of every custom property under the parsed part `root`."""
    found = {}
    for element in root:
        name = element.get("name")
        if local(element) == "property" and name is not None:
            value = next((v for v in element if isinstance(v.tag, str)), None)
            found[name] = "".join(value.itertext()).strip() if value is not None else ""
    return found


def read_properties(path: Path | str) -> dict[str, str]:
    """The custom properties of the workbook at `path` ({} where it has none or the part
    cannot be read). The caller has already checked the container is safe."""
    try:
        with zipfile.ZipFile(path) as archive:
            package = ReadPackage(archive)
            part = next((r.target for r in package.relationships("")
                         if r.rel_type == REL_CUSTOM), None)
            data = package.read(part, _MAX_PART) if part else None
            return parse_properties(parse_xml(data, CUSTOM_PART)) if data else {}
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, WorkbookError):
        return {}


def package_properties(package: Package) -> dict[str, str]:
    parts = package.related("", REL_CUSTOM)
    return parse_properties(package.xml(parts[0])) if parts else {}


def set_properties(package: Package, values: dict[str, str]) -> None:
    """Set text custom properties (made, with the part, where absent); others are kept."""
    part = next(iter(package.related("", REL_CUSTOM)), None)
    if part is None:
        part = CUSTOM_PART if not package.has(CUSTOM_PART) else \
            package.new_name("docProps/custom{}.xml")
        package.write(part, b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                      b'<Properties xmlns="' + NS_CUSTOM.encode() + b'" xmlns:vt="' +
                      NS_VT.encode() + b'"/>')
        package.add_override(part, CT_CUSTOM)
        package.add_relationship("", REL_CUSTOM, part)
    root = package.xml(part)
    properties = {e.get("name"): e for e in root if local(e) == "property"}
    pids = [int(e.get("pid")) for e in properties.values() if (e.get("pid") or "").isdigit()]
    for name, value in values.items():
        element = properties.get(name)
        if element is None:
            pid = max(pids, default=1) + 1
            pids.append(pid)
            element = sub(root, "property", {"fmtid": _FMTID, "pid": str(pid), "name": name})
        for child in list(element):
            element.remove(child)
        sub(element, "lpwstr", ns=NS_VT).text = value
    package.touch(part)


def older_template(version: str | None, current: str) -> bool:
    """Whether a log's template version (a whole number as text) is older than `current`."""
    if version is None or not version.strip().isdigit() or not current.isdigit():
        return False
    return int(version) < int(current)
