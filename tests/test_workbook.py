"""workbook/ reading: the reader, and the hostile files it must turn away with one line (exit 2).

Every hostile file is run through the real CLI in a subprocess: exit code 2, exactly one line
on stderr naming the file and what to do, nothing on stdout, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from builders import BASE_ROW, init_repo, row, run_cli, write_log

import aisdp_log
from aisdp_log.errors import WorkbookError
from aisdp_log.workbook import container, sheet_scan
from aisdp_log.workbook import reader as workbook_module
from aisdp_log.workbook.container import MAX_MEMBERS, MAX_PART_UNCOMPRESSED, check_container
from aisdp_log.workbook.reader import Workbook, load_log
from aisdp_log.workbook.table import cell_ref, column_letter
from aisdp_log.workbook.writer import open_workbook_for_update, set_cell

# --------------------------------------------------------------------------- helpers

ADVICE = ("save", "check", "pass", "write", "restore", "add", "open", "keep")




def assert_refused(path: Path, cwd: Path) -> str:
    """The CLI refuses `path` the way docs/workbook-format.md says: exit 2, one line naming
    the file and advice."""
    result = run_cli("validate", str(path), "--offline", cwd=cwd)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "Traceback" not in line and "internal error" not in line
    assert line.startswith("aisdp-log: error: ")
    assert str(path) in line
    assert any(word in line.split(str(path), 1)[1] for word in ADVICE), line
    return line


FREE, END, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A minimal, well-formed OLE2 compound file (v3, 512-byte sectors) with `streams` at its
    root: the container of Excel 97-2003 .xls files and of encrypted Office documents."""
    fat, entries, data = [FATSECT, END], [], []
    next_sector = 2
    for name, content in streams.items():
        content = content.ljust(4096, b"\0")  # at the mini-stream cutoff: regular sectors
        count = -(-len(content) // 512)
        fat += [next_sector + i + 1 for i in range(count - 1)] + [END]
        data.append(content.ljust(count * 512, b"\0"))
        entries.append((name, next_sector, len(content)))
        next_sector += count
    fat += [FREE] * (128 - len(fat))

    def entry(name, kind, start, size, child=NOSTREAM, right=NOSTREAM):
        encoded = (name + "\0").encode("utf-16-le")
        return (encoded.ljust(64, b"\0") + struct.pack("<HBB", len(encoded), kind, 1)
                + struct.pack("<III", NOSTREAM, right, child) + b"\0" * 36
                + struct.pack("<IQ", start, size))

    directory = entry("Root Entry", 5, END, 0, child=1)
    for index, (name, start, size) in enumerate(entries, start=1):
        directory += entry(name, 2, start, size,
                           right=index + 1 if index < len(entries) else NOSTREAM)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<9I", 0, 1, 1, 0, 4096, END, 0, END, 0)
              + struct.pack("<I", 0) + struct.pack("<I", FREE) * 108)
    return header + struct.pack("<128I", *fat) + directory.ljust(512, b"\0") + b"".join(data)


def rewrite_member(source: Path, target: Path, member: str, change) -> Path:
    """Copy a zip, passing one member's bytes through `change`."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, change(data) if info.filename == member else data)
    return target


# --------------------------------------------------------------------------- hostile files

def _not_a_zip(path):
    path.write_bytes(bytes(range(256)) * 8)


def _old_xls(path):
    # BIFF8 starts its Workbook stream with a BOF record (0x0809)
    path.write_bytes(compound_file({"Workbook": b"\x09\x08\x10\x00\x00\x06\x05\x00"}))


def _encrypted_ole(path):
    path.write_bytes(compound_file({"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00",
                                    "EncryptedPackage": os.urandom(6000)}))


def _csv_renamed(path):
    path.write_text("Experiment ID,Date,Hypothesis\nEXP-001,2026-07-14,Adam beats SGD\n")


def _html_renamed(path):
    path.write_text("<html><body><table><tr><td>EXP-001</td></tr></table></body></html>")


def _missing(path):
    pass


def _folder(path):
    path.mkdir()


def _empty(path):
    path.write_bytes(b"")


def _truncated_zip(path):
    write_log(path, [row()])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _ods(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", "<manifest/>")
        archive.writestr("content.xml", "<office:document-content/>")


def _docx(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")


def _plain_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")


def _too_many_members(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for index in range(MAX_MEMBERS + 1):
            archive.writestr(f"xl/media/{index}.bin", b"")


def _no_experiments_sheet(path):
    workbook = xlsxwriter.Workbook(str(path))
    workbook.add_worksheet("Runs").write_row(0, 0, list(BASE_ROW))
    workbook.close()


def _billion_laughs(member):
    entities = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10))
    doctype = b"<!DOCTYPE lolz [" + entities + b"]>"

    def build(path):
        def poison(xml: bytes) -> bytes:
            head, sep, rest = xml.partition(b"?>")
            rest = rest.replace(b"<t>Adam beats SGD</t>", b"<t>&lol9;</t>")
            rest = re.sub(rb'<c r="C2" t="s"><v>\d+</v></c>',
                          b'<c r="C2" t="inlineStr"><is><t>&lol9;</t></is></c>', rest)
            return head + sep + doctype + rest

        source = write_log(path.with_name("source.xlsx"), [row()])
        rewrite_member(source, path, member, poison)
    return build


def _stray_cell_far_away(path):
    # a person pressed Ctrl+Right, Ctrl+Down and typed: calamine would allocate 17 billion cells
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Experiments"
    sheet.append(list(BASE_ROW))
    sheet.append(list(row().values()))
    sheet["XFD1048576"] = "oops"
    book.save(path)


def _cell_beyond_the_last_row(path):
    # a hand-made file: one cell at row 99,999,999, out of order, and a dimension that lies
    source = write_log(path.with_name("source.xlsx"), [row()])
    rewrite_member(source, path, "xl/worksheets/sheet1.xml",
                   lambda xml: xml.replace(b'<c r="A2"', b'<c r="A99999999"'))


def _far_cell_behind_a_sheet_name(spelling: bytes):
    # calamine reads `&#69;xperiments` as Experiments, and of two sheets of one name the first:
    # the cell limit must apply to the part calamine reads, whatever the name's spelling
    def build(path):
        source = write_log(path.with_name("source.xlsx"), [row()])
        far = path.with_name("far.xlsx")
        rewrite_member(source, far, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(
            b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'))
        rewrite_member(far, path, "xl/workbook.xml",
                       lambda xml: xml.replace(b'<sheet name="Experiments"', spelling))
    return build


HOSTILE = {
    "far-cell-behind-a-character-reference": _far_cell_behind_a_sheet_name(
        b'<sheet name="&#69;xperiments"'),
    "far-cell-behind-a-repeated-sheet-name": _far_cell_behind_a_sheet_name(
        b'<sheet name="Experiments" sheetId="1" r:id="rId1"/>'
        b'<sheet name="Experiments" sheetId="9" r:id="rId2"/><sheet name="Old"'),
    "stray-cell-far-away": _stray_cell_far_away,
    "cell-beyond-the-last-row": _cell_beyond_the_last_row,
    "not-a-zip": _not_a_zip,
    "old-xls": _old_xls,
    "encrypted": _encrypted_ole,
    "csv-renamed": _csv_renamed,
    "html-renamed": _html_renamed,
    "missing": _missing,
    "folder": _folder,
    "empty": _empty,
    "truncated-zip": _truncated_zip,
    "ods": _ods,
    "docx": _docx,
    "plain-zip": _plain_zip,
    "too-many-members": _too_many_members,
    "no-experiments-sheet": _no_experiments_sheet,
    "billion-laughs-shared-strings": _billion_laughs("xl/sharedStrings.xml"),
    "billion-laughs-sheet": _billion_laughs("xl/worksheets/sheet1.xml"),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_file_is_one_line_and_exit_2(tmp_path, kind):
    path = tmp_path / f"{kind} log.xlsx"  # a space in the name, as people write them
    HOSTILE[kind](path)
    started = time.perf_counter()
    assert_refused(path, tmp_path)
    assert time.perf_counter() - started < 10  # billion laughs must not hang


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_file_raises_workbook_error_in_the_library(tmp_path, kind):
    path = tmp_path / f"{kind}.xlsx"
    HOSTILE[kind](path)
    with pytest.raises(WorkbookError, match="^" + re.escape(str(path))):
        aisdp_log.validate(path, offline=True)


def test_real_encrypted_workbook(tmp_path):
    """A workbook encrypted by Office's own scheme (msoffcrypto writes what Excel writes)."""
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")
    plain = write_log(tmp_path / "plain.xlsx", [row()])
    encrypted = tmp_path / "locked.xlsx"
    with open(plain, "rb") as source, open(encrypted, "wb") as target:
        ooxml.OOXMLFile(source).encrypt("secret", target)
    assert "encrypted" in assert_refused(encrypted, tmp_path)


def test_old_xls_and_encrypted_files_are_told_apart(tmp_path):
    _old_xls(tmp_path / "a.xlsx")
    _encrypted_ole(tmp_path / "b.xlsx")
    with pytest.raises(WorkbookError, match="97-2003"):
        check_container(tmp_path / "a.xlsx")
    with pytest.raises(WorkbookError, match="encrypted"):
        check_container(tmp_path / "b.xlsx")


# --------------------------------------------------------------------------- zip bomb

@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """A workbook whose sheet XML inflates to 1 GiB from about 1 MB (deflate at level 9)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.xlsx"
    source = write_log(path.with_name("source.xlsx"), [row()])
    chunk = b" " * (4 << 20)  # white space between XML tags: valid, and deflates 1000-fold
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED,
                                                          compresslevel=9) as zout:
        for info in zin.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                zout.writestr(info.filename, zin.read(info))
        with zout.open("xl/worksheets/sheet1.xml", "w") as sheet:
            for _ in range(256):  # 256 x 4 MiB = 1 GiB, written in chunks
                sheet.write(chunk)
    return path


@pytest.mark.slow
def test_zip_bomb_is_rejected_fast_without_inflating(zip_bomb, tmp_path, monkeypatch):
    info = zipfile.ZipFile(zip_bomb).getinfo("xl/worksheets/sheet1.xml")
    assert info.file_size >= 1 << 30
    assert zip_bomb.stat().st_size < 2 << 20
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    started = time.perf_counter()
    with pytest.raises(WorkbookError, match="zip bomb"):
        check_container(zip_bomb)
    assert time.perf_counter() - started < 0.05
    assert opened == []  # no member was even opened, let alone inflated
    with pytest.raises(WorkbookError, match="zip bomb"):
        aisdp_log.validate(zip_bomb, offline=True)
    assert "xl/worksheets/sheet1.xml" not in opened
    monkeypatch.undo()
    assert_refused(zip_bomb, tmp_path)


def lie_about_size(source: Path, target: Path, member: str, declared: int) -> Path:
    """A copy of the zip whose headers declare `member` `declared` bytes long: a bomb that
    passes every check of declared sizes and ratios."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo(member)
    assert data[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    entry = data.find(b"PK\x01\x02")
    while entry != -1:
        name_length = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46:entry + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, entry + 24, declared)
        entry = data.find(b"PK\x01\x02", entry + 4)
    target.write_bytes(bytes(data))
    return target


@pytest.mark.slow
def test_zip_bomb_that_lies_about_its_size_is_refused_fast(zip_bomb, tmp_path):
    liar = lie_about_size(zip_bomb, tmp_path / "liar.xlsx", "xl/worksheets/sheet1.xml", 60_000)
    check_container(liar).close()  # the declared sizes look harmless...
    started = time.perf_counter()
    assert_refused(liar, tmp_path)  # ...but calamine stops reading at the declared size
    assert time.perf_counter() - started < 5


def test_declared_total_over_the_limit_is_rejected(tmp_path, monkeypatch):
    # Many members that each compress modestly but add up: the total limit, not the ratio.
    monkeypatch.setattr(container, "MAX_TOTAL_UNCOMPRESSED", 1 << 20)
    rows = [row(hypothesis=os.urandom(15_000).hex()) for _ in range(40)]
    path = write_log(tmp_path / "big.xlsx", rows)
    with pytest.raises(WorkbookError, match="inflate"):
        check_container(path)


# --------------------------------------------------------------------------- big but honest

def formatted_to_last_row(path: Path, rows: list[dict]) -> Path:
    """A log whose Experiments sheet is formatted down to row 1,048,576, as Excel writes it
    when whole rows are formatted: one styled, empty <row> element per row."""
    source = write_log(path.with_name("source-" + path.name), rows)
    member = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename != member:
                zout.writestr(info.filename, data)
                continue
            head, sep, tail = data.partition(b"</sheetData>")
            with zout.open(member, "w", force_zip64=True) as sheet:
                sheet.write(head)
                first = len(rows) + 2
                for start in range(first, 1_048_577, 50_000):
                    sheet.write(b"".join(
                        b'<row r="%d" spans="1:13" s="1" customFormat="1" ht="15"/>' % number
                        for number in range(start, min(start + 50_000, 1_048_577))))
                sheet.write(sep + tail)
    return path


@pytest.mark.slow
def test_sheet_formatted_to_the_last_row_is_read_fast_with_normal_findings(tmp_path):
    path = formatted_to_last_row(tmp_path / "formatted.xlsx",
                                 [row(), row(experiment_id="EXP-002", random_seed=-5)])
    info = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml")
    # about 55 MB of XML: well within the budget of a part
    assert 16 << 20 < info.file_size < MAX_PART_UNCOMPRESSED / 4
    started = time.perf_counter()
    report = aisdp_log.validate(path, offline=True)
    elapsed = time.perf_counter() - started
    assert report.codes() == [("S007", "G3")]
    assert report.rows == 2
    assert elapsed < 3, elapsed


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 22])
def test_formula_and_error_scan_is_the_same_whatever_the_chunk_size(tmp_path, monkeypatch,
                                                                     chunk):
    path = tmp_path / "scan.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Experiments")
    for number in range(200):
        sheet.write_row(number, 0, [f"text {number}", number, number / 3])
        if number % 7 == 0:
            sheet.write_formula(number, 3, "=1/0", None, "#DIV/0!")
        if number % 11 == 0:
            sheet.write_formula(number, 4, "=B1", None, "")  # no saved result
    book.close()
    monkeypatch.setattr(sheet_scan, "SCAN_CHUNK", chunk)
    with zipfile.ZipFile(path) as archive:
        scan = sheet_scan.scan_sheet(archive, "xl/worksheets/sheet1.xml")
        missing, errors = scan.missing, scan.errors
    assert errors == {f"D{n + 1}": "#DIV/0!" for n in range(0, 200, 7)}
    assert missing == {f"E{n + 1}" for n in range(0, 200, 11)}


def test_a_wide_log_is_measured_and_read(tmp_path):
    """Past column DA the extent is measured exactly: 150 columns are fine."""
    extra = {f"Extra {n}": n for n in range(140)}
    path = write_log(tmp_path / "wide.xlsx", [row(**extra), row(experiment_id="EXP-002",
                                                                random_seed=-1, **extra)])
    with zipfile.ZipFile(path) as archive:
        assert sheet_scan.scan_sheet(archive, "xl/worksheets/sheet1.xml").might_be_huge()
        assert sheet_scan.exact_extent(archive, "xl/worksheets/sheet1.xml") == \
            (3, 153, "EW3")
    assert aisdp_log.validate(path, offline=True).codes() == [("S007", "G3")]


# --------------------------------------------------------------------------- awkward content

def openpyxl_log(rows: list[dict]):
    """(workbook, Experiments sheet) written by openpyxl: BASE_ROW's headers, `rows`, and a
    Metrics sheet declaring accuracy; the caller adds formulas or merges and saves."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Experiments"
    sheet.append(list(BASE_ROW))
    for values in rows:
        sheet.append([values.get(h) for h in BASE_ROW])
    metrics = book.create_sheet("Metrics")
    metrics.append(["Metric", "Goal"])
    metrics.append(["accuracy", "max"])
    return book, sheet


def test_formulas_with_and_without_saved_values(tmp_path):
    path = tmp_path / "f.xlsx"
    book, sheet = openpyxl_log([row(), row(experiment_id="EXP-002")])
    sheet["G3"] = "=G2*2"          # openpyxl saves no result
    sheet["J5"] = "=CONCAT(J2)"    # a row holding only a never-calculated formula
    book.save(path)
    with Workbook(path) as workbook:
        table = workbook.table("Experiments")
    assert table.unsaved_formulas == {"G3", "J5"}
    assert [r.number for r in table.rows] == [2, 3, 5]
    found = set(aisdp_log.validate(path, offline=True).codes())
    assert {("S003", "G3"), ("S003", "J5")} <= found

    saved = tmp_path / "saved.xlsx"  # xlsxwriter saves the results it is given
    book = xlsxwriter.Workbook(str(saved))
    sheet = book.add_worksheet("Experiments")
    sheet.write_row(0, 0, list(BASE_ROW))
    sheet.write_row(1, 0, list(row().values()))
    sheet.write_formula("G2", "=40+2", None, 42)
    sheet.write_formula("C2", '="Adam "&"beats SGD"', None, "Adam beats SGD")
    book.add_worksheet("Metrics").write_row(0, 0, ["Metric", "Goal"])
    book.get_worksheet_by_name("Metrics").write_row(1, 0, ["accuracy", "max"])
    book.close()
    with Workbook(saved) as workbook:
        assert workbook.table("Experiments").unsaved_formulas == set()
    assert aisdp_log.validate(saved, offline=True).codes() == []


@pytest.mark.parametrize("error", ["#DIV/0!", "#N/A", "#VALUE!", "#REF!", "#NAME?", "#NUM!",
                                   "#NULL!"])
def test_excel_error_cells_are_s003_findings(tmp_path, error):
    path = tmp_path / "e.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Experiments")
    sheet.write_row(0, 0, list(BASE_ROW))
    sheet.write_row(1, 0, list(row().values()))
    sheet.write_formula("I2", "=A1/0", None, error)   # calamine reads it as ''
    book.add_worksheet("Metrics").write_row(0, 0, ["Metric", "Goal"])
    book.get_worksheet_by_name("Metrics").write_row(1, 0, ["accuracy", "max"])
    book.close()
    with Workbook(path) as workbook:
        table = workbook.table("Experiments")
    assert table.rows[0].values[8] is None
    assert table.error_cells == {"I2": error}
    assert aisdp_log.validate(path, offline=True).codes() == [("S003", "I2")]


def test_merged_cells_in_the_data_area(tmp_path):
    path = tmp_path / "m.xlsx"
    book, sheet = openpyxl_log([row(experiment_id=f"EXP-00{n}") for n in range(1, 4)])
    sheet.merge_cells("K3:K4")   # one environment for two runs
    sheet.merge_cells("M2:M4")   # one note for three
    book.save(path)
    assert set(aisdp_log.validate(path, offline=True).codes()) == {
        ("S010", "K3"), ("S002", "K4"), ("S010", "M2")}


def test_unicode_and_emoji_everywhere(tmp_path):
    rows = [row(hypothesis="Ünïcödé ✓ 🚀 模型", notes="😀 " * 50, environment="torch 🔥",  # noqa
                **{"Kommentar 💬": "ja"}),
            row(experiment_id="EXP-ß", hypothesis="🙂")]
    path = write_log(tmp_path / "ünïcode 🚀.xlsx", rows,
                     extra_sheets={"Notizen ✍": [["ä", "ö"], ["🚀", 1]]})
    assert set(aisdp_log.validate(path, offline=True).codes()) == {("S005", "A3")}
    result = run_cli("validate", str(path), "--offline", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == ""
    assert "EXP-ß" in result.stdout


def test_very_long_text_is_checked_and_messages_stay_short(tmp_path):
    long_text = "x" * 32_767  # Excel's limit for one cell
    values = {h: long_text for h in BASE_ROW}
    path = write_log(tmp_path / "long.xlsx", [values],
                     headers=list(BASE_ROW) + ["params.huge"])
    report = aisdp_log.validate(path, offline=True)
    # date, data version (> 255 characters), commit, seed, duration, metric, hash; outcome
    assert set(report.codes()) == {
        ("S003", "B2"), ("S003", "E2"), ("S003", "F2"), ("S003", "G2"), ("S003", "H2"),
        ("S003", "I2"), ("S003", "J2"), ("S006", "L2")}
    assert all(len(f.message) < 300 for f in report.findings)


def test_booleans_in_every_column(tmp_path):
    headers = list(BASE_ROW) + ["Other params", "Rerun", "Reproducibility"]
    path = write_log(tmp_path / "bool.xlsx", [{h: True for h in headers},
                                              {h: False for h in headers}], headers=headers)
    report = aisdp_log.validate(path, offline=True)
    found = set(report.codes())
    for number in (2, 3):
        # ID, date, commit, seed, duration, metric, hash: wrong type; outcome: not allowed
        assert {(code, f"{col}{number}") for code, col in [
            ("S003", "A"), ("S003", "B"), ("S003", "F"), ("S003", "G"), ("S003", "H"),
            ("S003", "I"), ("S003", "J"), ("S006", "L")]} <= found
    result = run_cli("validate", str(path), "--offline", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_an_empty_experiments_sheet_is_findings_not_a_crash(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "e.xlsx"))
    book.add_worksheet("Experiments")
    book.close()
    report = aisdp_log.validate(tmp_path / "e.xlsx", offline=True)
    assert report.rows == 0
    assert {(code, cell) for code, cell in report.codes()} == {("S001", "A1")}


# --------------------------------------------------------------------------- the reader

def test_table_keeps_sheet_row_numbers_and_skips_empty_rows(tmp_path):
    path = tmp_path / "gaps.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Experiments")
    sheet.write_row(0, 0, ["  Experiment   ID ", None, "Date", 42])
    sheet.write_row(3, 0, ["EXP-001", None, "  2026-07-14 "])
    sheet.write_string(4, 0, "   ")          # white space only: empty
    sheet.write_row(6, 0, [None, None, None, 1.0])
    book.close()
    with Workbook(path) as workbook:
        table = workbook.table("Experiments")
    assert [(c.index, c.header) for c in table.columns] == [(0, "Experiment ID"), (2, "Date"),
                                                            (3, "42")]
    assert [(r.number, r.values) for r in table.rows] == [
        (4, ["EXP-001", None, "2026-07-14", None]), (7, [None, None, None, 1])]
    assert table.column("experiment id").index == 0
    assert table.first_empty_header == "B1"


def test_find_sheet_ignores_case_and_spacing(tmp_path):
    path = write_log(tmp_path / "s.xlsx", [row()], metrics=False,
                     extra_sheets={"  METRICS ": [["Metric"]]})
    with Workbook(path) as workbook:
        assert workbook.find_sheet("Metrics") == "  METRICS "
        assert workbook.find_sheet("Experiments") == "Experiments"
        assert workbook.find_sheet("Reruns") is None


def test_load_log_resolves_columns(tmp_path):
    headers = list(BASE_ROW) + ["params.batch size", "Notes", "GPU"]
    log = load_log(write_log(tmp_path / "l.xlsx", [row()], headers=headers))
    try:
        assert set(log.params) == {"learning_rate", "batch size"}
        assert set(log.metrics) == {"accuracy"}
        assert [c.header for c in log.unknown] == ["GPU"]
        assert [c.letter for c in log.duplicates] == ["O"]
        first = log.rows[0]
        assert log.typed(first, "random_seed") == 42
        assert log.typed(first, "date") == dt.date(2026, 7, 14)
        assert log.typed(first, "metrics.accuracy") == 0.91
        assert log.experiment_id(first) == "EXP-001"
    finally:
        log.workbook.close()


@pytest.mark.parametrize("index, letters", [(0, "A"), (25, "Z"), (26, "AA"), (51, "AZ"),
                                            (52, "BA"), (701, "ZZ"), (702, "AAA"),
                                            (16383, "XFD")])
def test_column_letter(index, letters):
    assert column_letter(index) == letters
    assert cell_ref(7, index) == f"{letters}7"


def test_scan_reads_single_quoted_and_namespace_prefixed_cells(tmp_path):
    sheet = (b"<?xml version='1.0'?><x:worksheet xmlns:x='urn:x'><x:sheetData>"
             b"<x:row r='2'><x:c r='A2' t='e'><x:f>1/0</x:f><x:v>#DIV/0!</x:v></x:c>"
             b"<x:c r='B2'><x:f>A2</x:f></x:c><x:c r='C2'><x:v>1</x:v></x:c></x:row>"
             b"</x:sheetData></x:worksheet>")
    path = tmp_path / "prefixed.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("sheet.xml", sheet)
    with zipfile.ZipFile(path) as archive:
        scan = sheet_scan.scan_sheet(archive, "sheet.xml")
        assert (scan.missing, scan.errors) == ({"B2"}, {"A2": "#DIV/0!"})


def test_fast_row_normalisation_equals_values_normalise():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from aisdp_log.domain.values import normalise

    cells = st.one_of(st.none(), st.text(max_size=8), st.floats(), st.integers(), st.booleans(),
                      st.dates(), st.sampled_from(["", " ", 2.0**53, -2.0**53, 2.0**53 - 1]))

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(cells, max_size=12))
    def check(raw):
        fast = workbook_module._normalise_row(raw)
        slow = [normalise(v) for v in raw]
        assert [(type(a), a) for a in fast if a == a] == [(type(b), b) for b in slow if b == b]

    check()


def test_a_file_name_with_a_line_break_still_gives_one_line(tmp_path):
    path = tmp_path / "two\nlines.xlsx"
    path.write_text("Experiment ID,Date\n")
    result = run_cli("validate", str(path), "--offline", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "two\\nlines.xlsx" in result.stderr


# --------------------------------------------------------------------------- other tools' files

SHEET = "xl/worksheets/sheet1.xml"


def repack(source: Path, target: Path, *, rename=lambda name: name,
           change: dict | None = None, add: dict | None = None, level: int = 6) -> Path:
    """A copy of the zip `source`: members renamed by `rename`, a member's bytes passed
    through `change[name]` (None drops it), and `add` members written at the end."""
    change = change or {}
    with zipfile.ZipFile(source) as zin, \
            zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename in change:
                if change[info.filename] is None:
                    continue
                data = change[info.filename](data)
            zout.writestr(rename(info.filename), data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return target


def cell_xml(sheet_xml: bytes, ref: str, new: bytes) -> bytes:
    """`sheet_xml` with the cell `ref` replaced by `new`."""
    replaced, count = re.subn(rb'<c r="%s"[^>]*?(?:/>|>.*?</c>)' % ref.encode(), new,
                              sheet_xml, count=1, flags=re.S)
    assert count == 1, ref
    return replaced


def finding_pairs(path: Path) -> tuple[list, list]:
    """((code, cell) of validate --offline, (code, cell) of read_log), each sorted."""
    report = aisdp_log.validate(path, offline=True)
    frame = aisdp_log.read_log(path, errors="attach")
    return (sorted(report.codes()),
            sorted((f["code"], f["cell"]) for f in frame.attrs["failures"]))


def test_a_formula_whose_saved_result_is_the_empty_string_is_an_empty_value(tmp_path):
    source = write_log(tmp_path / "source.xlsx", [row(), row(experiment_id="EXP-002")])
    outcome = cell_ref(2, list(BASE_ROW).index("Outcome"))
    unsaved = cell_ref(3, list(BASE_ROW).index("Outcome"))

    def excel_formulas(xml: bytes) -> bytes:
        # as Excel saves =IF(...,"selected","") when the test fails: a string result, empty
        xml = cell_xml(xml, outcome, b'<c r="%s" t="str"><f>IF(1&gt;2,"selected","")</f>'
                       b'<v></v></c>' % outcome.encode())
        # and a formula never calculated: no <v> at all
        return cell_xml(xml, unsaved, b'<c r="%s"><f>IF(1&gt;2,"selected","")</f></c>'
                        % unsaved.encode())

    path = repack(source, tmp_path / "excel.xlsx", change={SHEET: excel_formulas})
    with Workbook(path) as workbook:
        assert workbook.table("Experiments").unsaved_formulas == {unsaved}
    by_validate, by_read_log = finding_pairs(path)
    # the unsaved one is a value to recalculate, in both; the empty result an empty outcome
    # (an undecided row: R001, a review warning read_log does not make)
    assert [f for f in by_validate if f[0].startswith("S")] == by_read_log == \
        [("S003", unsaved)]
    assert ("R001", outcome) in by_validate


def test_a_header_row_of_one_name_in_all_16384_columns(tmp_path):
    header = b"".join(b'<c r="%s1" t="inlineStr"><is><t>Notes</t></is></c>'
                      % column_letter(i).encode() for i in range(16_384))
    source = write_log(tmp_path / "source.xlsx", [row()])
    path = repack(source, tmp_path / "wide.xlsx", change={SHEET: lambda xml: re.sub(
        rb"<sheetData>.*</sheetData>", b'<sheetData><row r="1">' + header
        + b"</row></sheetData>", re.sub(rb"<dimension [^>]*/>", b"", xml), flags=re.S)})
    started = time.perf_counter()
    report = aisdp_log.validate(path, offline=True)
    validate_s = time.perf_counter() - started
    repeated = [f for f in report.findings if f.code == "S011"]
    assert [(f.code, f.cell) for f in repeated] == [("S011", "B1")]
    assert "16,384 times" in repeated[0].message
    assert {f.cell for f in report.findings if f.code == "S001"} == {"B1"}  # not XFE1
    started = time.perf_counter()
    frame = aisdp_log.read_log(path, errors="attach")
    read_s = time.perf_counter() - started
    assert list(frame.columns) == ["Notes"]
    # was 32 s idle (a list membership test per column); linear now, well under a second
    assert validate_s < 10 and read_s < 10, (validate_s, read_s)


def test_the_zip_budget_is_what_inflating_costs_not_the_ratio(tmp_path):
    source = write_log(tmp_path / "source.xlsx", [row()])
    padding = b" " * (57 << 20)  # white space between rows: valid XML, deflates ~1000-fold
    path = repack(source, tmp_path / "padded.xlsx", level=9, change={
        SHEET: lambda xml: xml.replace(b"</sheetData>", padding + b"</sheetData>")})
    info = zipfile.ZipFile(path).getinfo(SHEET)
    assert info.file_size > 57 << 20 and info.file_size / info.compress_size > 250
    assert aisdp_log.validate(path, offline=True).codes() == []
    # the same file declaring a 2 GiB sheet is refused from its headers, without inflating
    liar = lie_about_size(path, tmp_path / "huge.xlsx", SHEET, 2 << 30)
    started = time.perf_counter()
    with pytest.raises(WorkbookError, match="zip bomb"):
        check_container(liar)
    assert time.perf_counter() - started < 0.05
    assert_refused(liar, tmp_path)


def _other_workbook_part(source: Path, target: Path, folder: str) -> Path:
    """The package with its workbook part at `<folder>/main.xml` (named only by
    `_rels/.rels`) and every other xl/ part under `<folder>/`."""
    def move(name: str) -> str:
        if name == "xl/workbook.xml":
            return f"{folder}/main.xml"
        if name == "xl/_rels/workbook.xml.rels":
            return f"{folder}/_rels/main.xml.rels"
        return folder + name[2:] if name.startswith("xl/") else name
    return repack(source, target, rename=move, change={
        "_rels/.rels": lambda xml: xml.replace(b"xl/workbook.xml", f"{folder}/main.xml".encode()),
        "[Content_Types].xml": lambda xml: xml.replace(b"/xl/", f"/{folder}/".encode())})


def test_valid_packages_with_other_member_names_are_read(tmp_path):
    source = write_log(tmp_path / "source.xlsx", [row(), row(experiment_id="EXP-002",
                                                             random_seed=-1)])
    expected = [("S007", "G3")]
    backslashes = repack(source, tmp_path / "backslash.xlsx",
                         rename=lambda name: name.replace("/", "\\"))
    assert aisdp_log.validate(backslashes, offline=True).codes() == expected
    for folder in ("xl", "spreadsheet"):
        moved = _other_workbook_part(source, tmp_path / f"moved-{folder}.xlsx", folder)
        assert aisdp_log.validate(moved, offline=True).codes() == expected
        assert aisdp_log.read_log(moved, errors="attach").index.tolist() == [2, 3]


def test_a_package_the_reader_accepts_the_writer_accepts_too(tmp_path):
    # backslash member names: validate reads the log, so add / rerun / sign-off must write it
    source = write_log(tmp_path / "source.xlsx", [row()])
    backslashes = repack(source, tmp_path / "backslash.xlsx",
                         rename=lambda name: name.replace("/", "\\"))
    with open_workbook_for_update(backslashes) as workbook:
        set_cell(workbook["Experiments"], 2, "Notes", "checked")
    assert aisdp_log.validate(backslashes, offline=True).codes() == []
    with zipfile.ZipFile(backslashes) as archive:  # untouched members keep their names
        assert "xl\\styles.xml" in archive.namelist()
    assert aisdp_log.read_log(backslashes).loc[2, "Notes"] == "checked"


def test_an_excel_4_macro_sheet_elsewhere_does_not_make_the_log_unreadable(tmp_path):
    source = write_log(tmp_path / "source.xlsx", [row(), row(experiment_id="EXP-002",
                                                             random_seed=-1)])
    macro = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<xm:macrosheet '
             b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
             b'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData>'
             b'<row r="1"><c r="A1"><f>HALT()</f></c></row></sheetData></xm:macrosheet>')
    path = repack(source, tmp_path / "macro.xlsx", change={
        "xl/workbook.xml": lambda xml: xml.replace(
            b"</sheets>", b'<sheet name="Macro1" sheetId="9" r:id="rId90"/></sheets>'),
        "xl/_rels/workbook.xml.rels": lambda xml: xml.replace(
            b"</Relationships>", b'<Relationship Id="rId90" Type="http://schemas.microsoft.'
            b'com/office/2006/relationships/xlMacrosheet" Target="macrosheets/sheet1.xml"/>'
            b"</Relationships>")},
        add={"xl/macrosheets/sheet1.xml": macro})
    assert aisdp_log.validate(path, offline=True).codes() == [("S007", "G3")]


def test_an_xlsb_is_named_as_such(tmp_path):
    path = tmp_path / "log.xlsb"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.bin"/>'
            "</Relationships>"))
        archive.writestr("xl/workbook.bin", b"\x83\x01\x00\x84\x01\x00")
    with pytest.raises(WorkbookError, match=r"Excel Binary Workbook \(\.xlsb\)"):
        check_container(path)
    assert "Excel Binary Workbook (.xlsb)" in assert_refused(path, tmp_path)


@pytest.mark.parametrize("member,cut", [("xl/workbook.xml", b"</sheets>"),
                                        (SHEET, b"</c>")])
def test_a_reader_error_names_the_file_and_a_cause_never_a_bare_word(tmp_path, member, cut):
    source = write_log(tmp_path / "source.xlsx", [row()])
    path = repack(source, tmp_path / "cut.xlsx",
                  change={member: lambda xml: xml[:xml.index(cut) + len(cut)]})
    line = assert_refused(path, tmp_path)
    assert not re.search(r"\(\w+\)", line), line  # e.g. "(workbook)" or "(c)" alone
    assert "never closed" in line


@pytest.mark.parametrize("where", ["outside", "repository"])
def test_a_pipe_named_as_the_log_is_refused_not_waited_on(tmp_path, where):
    """A FIFO would block a reader until something writes to it: refused in one line, in a
    repository too, where the result store hashes the workbook before any check runs."""
    folder = tmp_path / "project"
    folder.mkdir()
    if where == "repository":
        init_repo(folder)
    pipe = folder / "log.xlsx"
    os.mkfifo(pipe)
    done = subprocess.run([sys.executable, "-m", "aisdp_log", "validate", str(pipe),
                           *(["--offline"] if where == "outside" else [])],
                          cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("aisdp-log: error: ") and "pipe" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert_refused(pipe, folder)
