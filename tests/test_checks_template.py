"""S012 as `validate` reports it: a log made by an older template than this aisdp-log writes is
a warning at A1 (an error with --strict) until `template --upgrade` (test_upgrade.py)."""

from __future__ import annotations

from builders import assert_findings
from conftest import template_version

import aisdp_log


def test_an_older_template_is_s012_at_a1(old_log):
    assert template_version(old_log) == "1"
    report = aisdp_log.validate(old_log, offline=True)
    assert_findings(report, [("S012", "A1")])
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
