"""The review HTML in a real browser: headless Chromium renders it to PNG and prints it to PDF."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_review import make_project

from aisdp_log.review.write import write_review

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get "
                       "install chromium; .ci/run installs it)"),
]


def chromium(tmp_path: Path, page: Path, *args: str) -> None:
    """Run headless Chromium on `page` with networking features off and a throwaway profile."""
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args,
         page.resolve().as_uri()],
        check=True, capture_output=True, timeout=120)


@pytest.fixture
def review_html(tmp_path: Path) -> Path:
    project = make_project(tmp_path)
    return write_review(project.log, output_dir=tmp_path / "out").html_path


def test_screenshot_shows_the_styled_report(review_html, tmp_path):
    import matplotlib.image

    shot = tmp_path / "review.png"
    chromium(tmp_path, review_html, f"--screenshot={shot}", "--window-size=1200,3000")
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (3000, 1200)
    # The header band is the report's accent colour (#1f3a5f): the inline CSS applied.
    assert [round(v * 255) for v in pixels[20, 20][:3]] == [0x1F, 0x3A, 0x5F]
    # Not a blank page: plenty of distinct shades (text, tables, badges).
    assert len({tuple(p) for p in pixels[::7, ::7, :3].reshape(-1, 3).tolist()}) > 50


def test_prints_to_a_multi_page_pdf(review_html, tmp_path):
    pdf = tmp_path / "review.pdf"
    chromium(tmp_path, review_html, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert 3 <= pages <= 12, pages
