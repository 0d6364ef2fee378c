"""Check that a file is an .xlsx workbook safe to open, before any parser sees it.

The zip container is checked for what inflating it would cost: the declared sizes of its parts
against a budget, and the member count, so a zip bomb is stopped in well under a millisecond.
Encrypted workbooks, old .xls files, .xlsb, .ods, Word documents and text files are named as
what they are, each with the one step that makes them readable.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.package import Package, normal_name

# Limits for the zip container: what inflating would cost, judged from the declared sizes (the
# compression ratio says nothing of cost: a real 57 MB sheet deflates 121:1 as shipped and
# 250:1 re-deflated). A sheet formatted down to row 1,048,576 was measured at 61 MiB
# (Excel-style styled rows) to 395 MiB (17 styled empty cells per row). A part that declares
# less than it holds is cut at its declared size by every reader (zipfile, calamine).
MAX_MEMBERS = 10_000
MAX_TOTAL_UNCOMPRESSED = 1 << 30  # 1 GiB of XML is far beyond any log
MAX_PART_UNCOMPRESSED = 512 << 20  # one part: the sheet formatted to the last row fits

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def display_name(path: Path | str) -> str:
    """The path as error messages show it: quoted when it holds a line break or another
    control character, so the message stays one line."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def check_container(path: Path) -> zipfile.ZipFile:
    """Open `path` as an .xlsx zip after the safety checks; raise WorkbookError naming the cause."""
    name = display_name(path)
    if not path.exists():
        raise WorkbookError(f"{name}: no such file; check the path")
    if path.is_dir():
        raise WorkbookError(f"{name}: is a folder, not an .xlsx workbook; pass the workbook file")
    if not path.is_file():  # opening a pipe would wait for a writer forever
        raise WorkbookError(f"{name}: is a pipe, socket or device, not an .xlsx workbook; pass "
                            "the workbook file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if head == OLE_MAGIC:
                fh.seek(0)
                blob = fh.read(16 << 20)
                if "EncryptionInfo".encode("utf-16-le") in blob or \
                        "EncryptedPackage".encode("utf-16-le") in blob:
                    raise WorkbookError(
                        f"{name}: the workbook is encrypted (password-protected); save an "
                        "unprotected copy as .xlsx and validate that")
                raise WorkbookError(
                    f"{name}: an old Excel 97-2003 .xls file; open it and save it as "
                    "Excel Workbook (.xlsx)")
    except OSError as exc:
        raise WorkbookError(f"{name}: cannot be read ({exc.strerror or exc}); check its "
                            "permissions") from None
    if not head:
        raise WorkbookError(f"{name}: the file is empty, not an .xlsx workbook; restore it from a "
                            "backup, or write a new one with `aisdp-log template`")
    if not head.startswith(b"PK"):
        kind = _guess_text_kind(path)
        raise WorkbookError(f"{name}: {kind}, not an .xlsx workbook; open it in Excel or "
                            "LibreOffice and save it as Excel Workbook (.xlsx)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise WorkbookError(f"{name}: not a readable .xlsx workbook (damaged zip: "
                            f"{one_line(exc)}); restore it from a backup or re-save it in "
                            "Excel") from None
    try:
        _check_members(archive, name)
    except WorkbookError:
        archive.close()
        raise
    return archive


def _guess_text_kind(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            sample = fh.read(4096)
    except OSError:
        return "not a zip archive"
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return "not a zip archive"
    first = text.splitlines()[0] if text.strip() else ""
    if first.lstrip().startswith("<"):
        return "an XML or HTML file"
    if "," in first or ";" in first or "\t" in first:
        return "a CSV or text file"
    return "a text file"


def _check_members(archive: zipfile.ZipFile, name: str) -> None:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise WorkbookError(f"{name}: the zip holds {len(infos)} members (limit {MAX_MEMBERS}); "
                            "refusing to open a file built to exhaust memory; if it is a real "
                            "log, save a copy from Excel or LibreOffice")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise WorkbookError(f"{name}: the zip is encrypted; save an unprotected .xlsx copy")
        total += info.file_size
        if info.file_size > MAX_PART_UNCOMPRESSED:
            raise WorkbookError(
                f"{name}: {display_name(info.filename)} would inflate to "
                f"{info.file_size / 2**20:,.0f} MiB (limit {MAX_PART_UNCOMPRESSED >> 20} MiB a "
                "part; a zip bomb?); refusing to inflate it; if it is a real log, delete the "
                "stray cells and formatting outside the log and save it again")
    if total > MAX_TOTAL_UNCOMPRESSED:
        raise WorkbookError(f"{name}: the workbook would inflate to {total / 2**30:.1f} GiB "
                            "(limit 1 GiB); refusing to open it; keep one log per workbook")
    workbook = Package(archive).workbook
    names = {normal_name(info.filename) for info in infos}
    if workbook is not None and workbook.lower().endswith(".bin") or \
            workbook is None and "xl/workbook.bin" in names:
        raise WorkbookError(f"{name}: an Excel Binary Workbook (.xlsb), which aisdp-log cannot "
                            "read; open it in Excel and save it as Excel Workbook (.xlsx)")
    if workbook is None:
        if "mimetype" in names and "content.xml" in names:
            raise WorkbookError(f"{name}: an OpenDocument (.ods) spreadsheet; save it as Excel "
                                "Workbook (.xlsx)")
        if "word/document.xml" in names:
            raise WorkbookError(f"{name}: a Word document, not an .xlsx workbook; pass the "
                                "experiment log")
        raise WorkbookError(f"{name}: a zip archive but not an .xlsx workbook "
                            "(no workbook part: neither _rels/.rels nor xl/workbook.xml names "
                            "one); pass the experiment log, saved as Excel Workbook (.xlsx)")


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 200 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
