"""domain/values.py: cell parsers. Each returns the typed value or raises ValueError (an S003)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from aisdp_log.domain import values


@pytest.mark.parametrize("raw, expected", [
    (None, None), ("", None), ("   ", None), (" a ", "a"), (3.0, 3), (-0.0, 0), (2.5, 2.5),
    (float(2**53), float(2**53)), (math.inf, math.inf), (True, True),
    (dt.date(2026, 7, 14), dt.date(2026, 7, 14)),
])
def test_normalise(raw, expected):
    result = values.normalise(raw)
    assert result == expected and type(result) is type(expected)


def test_normalise_keeps_nan_a_float():
    assert math.isnan(values.normalise(math.nan))


@pytest.mark.parametrize("raw, text", [
    (3.0, "3"), (0.912, "0.912"), (dt.datetime(2026, 7, 14), "2026-07-14"),
    (dt.datetime(2026, 7, 14, 9, 30), "2026-07-14T09:30:00"), (dt.date(2026, 7, 14), "2026-07-14"),
    (dt.time(1, 2, 3), "01:02:03"), (True, "True"), ("x", "x"),
])
def test_as_text(raw, text):
    assert values.as_text(raw) == text


@pytest.mark.parametrize("raw, expected", [
    (dt.date(2026, 7, 14), dt.date(2026, 7, 14)),
    (dt.datetime(2026, 7, 14, 23, 59), dt.date(2026, 7, 14)),
    ("2026-07-14", dt.date(2026, 7, 14)), ("2026-07-14 10:00", dt.date(2026, 7, 14)),
    ("2026-07-14T10:00:05.5", dt.date(2026, 7, 14)),
])
def test_parse_date(raw, expected):
    assert values.parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["14/07/2026", "2026-7-14", "July 14", "2026-02-30", 46000,
                                 True, dt.time(1, 0), "2026-07-14x"])
def test_parse_date_rejects(raw):
    with pytest.raises(ValueError):
        values.parse_date(raw)


def test_a_text_date_gets_a_hint_how_to_write_it():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        values.parse_date("14/07/2026")


@pytest.mark.parametrize("raw, expected", [(0, 0), (42, 42), ("4294967295", 4294967295),
                                           ("-1", -1), (2**40, 2**40)])
def test_parse_seed(raw, expected):
    assert values.parse_seed(raw) == expected  # the range is S007's business


@pytest.mark.parametrize("raw", [1.5, True, "forty", "1e3", "", math.nan])
def test_parse_seed_rejects(raw):
    with pytest.raises(ValueError):
        values.parse_seed(raw)


@pytest.mark.parametrize("raw, minutes", [
    (12.5, 12.5), (0, 0.0), ("12.5", 12.5), ("12.5 min", 12.5), ("12 minutes", 12.0),
    ("1:30", 90.0), ("1:30:30", 90.5), ("100:00:00", 6000.0),
    (dt.timedelta(hours=2), 120.0), (dt.time(0, 12, 30), 12.5),
])
def test_parse_duration(raw, minutes):
    assert values.parse_duration(raw) == pytest.approx(minutes)


@pytest.mark.parametrize("raw", [-1, "-5", math.inf, math.nan, "inf", "soon", True,
                                 "1:75:00", dt.date(2026, 1, 1)])
def test_parse_duration_rejects(raw):
    with pytest.raises(ValueError):
        values.parse_duration(raw)


@pytest.mark.parametrize("raw, number", [(1, 1.0), (0.5, 0.5), ("0.912", 0.912),
                                         ("1,234.5", 1234.5), ("-2e-3", -0.002)])
def test_parse_number(raw, number):
    assert values.parse_number(raw) == number


@pytest.mark.parametrize("raw", [True, "high", "nan", "inf", math.inf, math.nan, "1,2,3x",
                                 dt.date(2026, 1, 1)])
def test_parse_number_rejects(raw):
    with pytest.raises(ValueError):
        values.parse_number(raw)


@pytest.mark.parametrize("raw, commit", [("9C1E4B7", "9c1e4b7"), ("a" * 40, "a" * 40),
                                         (1234567, "1234567")])
def test_parse_commit(raw, commit):
    assert values.parse_commit(raw) == commit


@pytest.mark.parametrize("raw", ["9c1e4b", "a" * 41, "9c1e4bz", "HEAD", 12.5, True])
def test_parse_commit_rejects(raw):
    with pytest.raises(ValueError):
        values.parse_commit(raw)


def test_parse_artefact_hash():
    assert values.parse_artefact_hash("sha256:" + "A" * 64) == "sha256:" + "a" * 64
    assert values.parse_artefact_hash("b" * 64) == "sha256:" + "b" * 64
    # Excel users type SHA256: as readily as sha256:
    assert values.parse_artefact_hash("SHA256:" + "C" * 64) == "sha256:" + "c" * 64
    for bad in ("sha256:" + "a" * 63, "md5:" + "a" * 32, "sha256: " + "a" * 64, 5):
        with pytest.raises(ValueError):
            values.parse_artefact_hash(bad)


@pytest.mark.parametrize("raw, ok", [("3f2a9c1e", True), ("3f2a9c1e.dir", True),
                                     ("v1.0", True), ("a b", False), ("x" * 256, False),
                                     ("tab\there", False)])
def test_parse_data_version(raw, ok):
    if ok:
        assert values.parse_data_version(raw) == raw
    else:
        with pytest.raises(ValueError):
            values.parse_data_version(raw)


def test_parse_id():
    assert values.parse_id(17) == "17"
    assert values.parse_id("EXP-001") == "EXP-001"
    for bad in (True, dt.date(2026, 1, 1), dt.time(1, 0), dt.timedelta(1)):
        with pytest.raises(ValueError):
            values.parse_id(bad)


def test_parse_choice_and_rerun_mark():
    assert values.parse_choice(" Selected ", ("selected", "rejected")) == "selected"
    with pytest.raises(ValueError):
        values.parse_choice("chosen", ("selected",))
    assert values.parse_rerun_mark("X") is True and values.parse_rerun_mark(1) is True
    assert values.parse_rerun_mark("no") is False and values.parse_rerun_mark(False) is False
    with pytest.raises(ValueError):
        values.parse_rerun_mark("maybe")


def test_parse_other_params():
    assert values.parse_other_params("a=1; b = two ;\nc=") == {"a": "1", "b": "two", "c": ""}
    for bad in ("dropout", "=1", "a=1; b"):
        with pytest.raises(ValueError):
            values.parse_other_params(bad)


@pytest.mark.parametrize("raw, kind, choices, expected", [
    (3, "int", (), 3), ("3", "int", (), 3), (0.1, "float", (), 0.1), ("adam", "any", (), "adam"),
    ("0.1", "any", (), 0.1), ("7", "any", (), 7), ("ADAM", "choice", ("sgd", "adam"), "adam"),
    ("yes", "bool", (), True), (False, "bool", (), False),
])
def test_parse_param(raw, kind, choices, expected):
    assert values.parse_param(raw, kind, choices) == expected


@pytest.mark.parametrize("raw, kind, choices", [
    (2.5, "int", ()), (True, "int", ()), ("x", "float", ()), ("rmsprop", "choice", ("sgd",)),
    ("perhaps", "bool", ()),
])
def test_parse_param_rejects(raw, kind, choices):
    with pytest.raises(ValueError):
        values.parse_param(raw, kind, choices)


@pytest.mark.parametrize("raw, decimals", [(0.912, 3), (1, 0), ("0.50", 2), (1e-05, 5),
                                           (True, None), (None, None)])
def test_decimals_typed(raw, decimals):
    assert values.decimals_typed(raw) == decimals


@pytest.mark.parametrize("raw", ["1e-" + "9" * 400, "1e-" + "9" * 5000])
def test_decimals_of_a_value_past_float_range_give_a_usable_tolerance(raw):
    # parse_number takes both (as 0.0); the tolerance the checks compute from the decimals
    # must not overflow into a traceback
    assert values.parse_number(raw) == 0.0
    decimals = values.decimals_typed(raw)
    assert decimals is None or 0.5 * 10 ** -decimals == 0.0


@pytest.mark.parametrize("parser", [values.parse_date, values.parse_seed, values.parse_duration,
                                    values.parse_number, values.parse_commit,
                                    values.parse_artefact_hash, values.parse_data_version,
                                    values.parse_rerun_mark, values.parse_other_params])
def test_messages_quote_long_values_briefly(parser):
    with pytest.raises(ValueError) as raised:
        parser("z z" * 10_000)
    assert len(str(raised.value)) < 250


# --------------------------------------------------------------------------- by value (issue 25)

@pytest.mark.parametrize("raw, whole", [(100, 100), (100.0, 100), ("100", 100), ("100.0", 100),
                                        ("1e2", 100), (" 7 ", 7)])
def test_an_int_param_is_read_by_value_however_typed(raw, whole):
    assert values.parse_param(raw, "int") == whole


@pytest.mark.parametrize("raw", [100.5, "100.5", "1,00", True, "ten"])
def test_an_int_param_that_is_no_whole_number_is_refused(raw):
    with pytest.raises(ValueError):
        values.parse_param(raw, "int")


@pytest.mark.parametrize("raw", [32, 32.0, "32", "32.0"])
def test_a_numeric_choice_matches_by_value(raw):
    assert values.parse_param(raw, "choice", ("16", "32")) == "32"


@pytest.mark.parametrize("raw, says", [("0,6135", "decimal comma"), ("12,5", "decimal comma"),
                                       ("61.35%", "percentage")])
def test_a_number_that_only_looks_like_one_says_why(raw, says):
    with pytest.raises(ValueError, match=says):
        values.parse_number(raw)


@pytest.mark.parametrize("typed, recorded, says", [
    ("0,6135", 0.6135, "decimal comma"), ("61.35%", 0.6135, "percentage"),
    (61.35, 0.6135, "per cent"), (61.35, "0.6135", "per cent"), (61, 0.6135, ""),
    ("0,5", 0.6135, ""), (0.6135, 0.6135, ""), ("abc", 0.6135, ""), (1.0, "x", "")])
def test_looks_equal_names_only_the_readings_that_match(typed, recorded, says):
    hint = values.looks_equal(typed, recorded)
    assert (says in hint) if says else hint == ""


def test_a_percentage_within_the_rounding_typed_looks_equal():
    assert "per cent" in values.looks_equal(61.3, 0.61349, decimals=1)
    assert values.looks_equal(61.3, 0.61349) == ""
