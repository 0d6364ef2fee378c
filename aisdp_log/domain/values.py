"""Parse cell values into typed values; a parse failure is a message for an S003 finding.

Every parser takes the normalised cell value (str, int, float, bool, date, datetime, time,
timedelta; never an empty string) and returns the typed value or raises `ValueError` whose text
says what is wrong and what to write instead.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import TypeGuard, TypeVar

from aisdp_log.spec import RERUN_MARKS, RERUN_NO_MARKS, SEED_MAX

HEX = re.compile(r"^[0-9a-fA-F]+$")
ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
SHA256_HEX = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$", re.IGNORECASE)
INTEGER = re.compile(r"[+-]?\d+")
#: 1,234.5 and 12,345,678: commas grouping thousands (any other comma is no thousands mark).
THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
#: 0,6135 or 12,5: a decimal comma, as a person in a comma locale types a number as text.
DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
#: 61.35% typed as text (Excel stores a typed percentage as the number 0.6135 instead).
PERCENT_TEXT = re.compile(r"([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*%")
PARAM_SEPARATOR = re.compile(r"[;\n]")
NOT_IN_DATA_VERSION = re.compile(r"[\s\x00-\x1f]")
CLOCK = re.compile(r"^(\d+):([0-5]?\d)(?::([0-5]?\d(?:\.\d+)?))?$")
#: Decimals `decimals_typed` reports at most: 10.0 ** -400 is already 0.0.
MAX_DECIMALS = 400
T = TypeVar("T")


def normalise(value: object) -> object:
    """Calamine's value as the checks want it: None for empty, ints for whole floats."""
    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    return value


def as_text(value: object) -> str:
    """A cell value as the text a person typed (integers without `.0`)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def shown(value: object, limit: int = 60) -> str:
    """A cell value quoted for a message, cut short: a finding names the value, not a page."""
    text = as_text(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        match = ISO_DATE.match(value)
        if match:
            try:
                return dt.date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                raise ValueError(f"{shown(value)} is not a real calendar date") from None
        raise ValueError(f"{shown(value)} is not a date: write it as YYYY-MM-DD, e.g. 2026-07-14, "
                         "or enter an Excel date")
    if is_number(value):
        raise ValueError(f"{as_text(value)} is a number, not a date: format the cell as a date "
                         "or write YYYY-MM-DD")
    raise ValueError(f"{shown(value)} is not a date: write it as YYYY-MM-DD")


def parse_seed(value: object) -> int:
    """The seed as an integer; range is checked separately (S007)."""
    if isinstance(value, bool):
        raise ValueError("a seed is a whole number, not TRUE/FALSE")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        raise ValueError(f"{shown(value)} is not a whole number: a seed is an integer "
                         f"from 0 to {SEED_MAX}")
    if isinstance(value, str) and INTEGER.fullmatch(value):
        return int(value)
    raise ValueError(f"{shown(value)} is not a whole number: a seed is an integer "
                     f"from 0 to {SEED_MAX}")


def parse_duration(value: object) -> float:
    """Training duration in minutes."""
    minutes: float
    if isinstance(value, bool):
        raise ValueError("a duration is minutes as a number or h:mm:ss, not TRUE/FALSE")
    if is_number(value):
        minutes = float(value)
    elif isinstance(value, dt.timedelta):
        minutes = value.total_seconds() / 60
    elif isinstance(value, dt.time):
        minutes = value.hour * 60 + value.minute + (value.second + value.microsecond / 1e6) / 60
    elif isinstance(value, str):
        text = value.strip().lower().removesuffix("min").removesuffix("minutes").strip()
        clock = CLOCK.match(text)
        if clock:
            hours, mins, secs = int(clock[1]), int(clock[2]), float(clock[3] or 0)
            if clock[3] is None:  # h:mm
                minutes = hours * 60 + mins
            else:
                minutes = hours * 60 + mins + secs / 60
        else:
            try:
                minutes = float(text)
            except ValueError:
                raise ValueError(f"{shown(value)} is not a duration: write minutes as a number "
                                 "(12.5) or h:mm:ss (0:12:30)") from None
    else:
        raise ValueError(f"{shown(value)} is not a duration: write minutes as a number")
    if not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"{shown(value)} is not a valid duration: it must be 0 or more minutes")
    return minutes


def parse_number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, not TRUE/FALSE")
    if is_number(value):
        if not math.isfinite(float(value)):
            raise ValueError("expected a finite number")
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.replace(",", "") if THOUSANDS.fullmatch(value)
                           else value)
        except ValueError:
            raise ValueError(f"{shown(value)} is not a number{looks_like_number(value)}") \
                from None
        if not math.isfinite(number):
            raise ValueError(f"{shown(value)} is not a finite number")
        return number
    raise ValueError(f"{shown(value)} is not a number")


def parsed_or_none(parse: Callable[[object], T], value: object) -> T | None:
    """What `parse` makes of a cell value; None for an empty cell or one `parse` refuses
    (validate reports S003 there)."""
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError:
        return None


def looks_like_number(text: str) -> str:
    """Why text that is no number looks like one (a decimal comma, a percentage typed as
    text), as a clause for a message; "" when it does not."""
    text = text.strip()
    if DECIMAL_COMMA.fullmatch(text):
        return (f": it is written with a decimal comma; write {text.replace(',', '.')} "
                "(numbers are read with a decimal point, whatever the computer's locale)")
    percent = PERCENT_TEXT.fullmatch(text)
    if percent:
        return (f": it is text; enter the number {_plain(float(percent[1]) / 100)} and format "
                "the cell as a percentage to show it as " + text)
    return ""


def looks_equal(typed: object, recorded: object, decimals: int | None = None) -> str:
    """Why a cell value that differs from a recorded number only looks equal to it (a
    decimal comma, a percentage typed as text, a percentage typed as its number of per cent),
    as a clause for the finding's message; "" when it does not. Such a cell stays a finding:
    which of two readings the person meant is theirs to say."""
    if isinstance(recorded, str):
        try:
            recorded = float(recorded)
        except ValueError:
            return ""
    if not is_number(recorded) or not math.isfinite(float(recorded)):
        return ""
    recorded = float(recorded)
    if isinstance(typed, str):
        text = typed.strip()
        if DECIMAL_COMMA.fullmatch(text) and \
                math.isclose(float(text.replace(",", ".")), recorded, rel_tol=1e-9):
            return f"; the cell is {looks_like_number(text)[2:]}"
        percent = PERCENT_TEXT.fullmatch(text)
        if percent and math.isclose(float(percent[1]) / 100, recorded, rel_tol=1e-9):
            return f"; the cell is {looks_like_number(text)[2:]}"
        return ""
    if is_number(typed) and recorded != 0:
        allowed = 0.5 * 10.0 ** -decimals if decimals is not None else 0.0
        if abs(float(typed) - 100 * recorded) <= max(allowed, 1e-9 * abs(float(typed))):
            return (f"; the cell's {as_text(typed)} is 100 x {_plain(recorded)}: a percentage "
                    f"typed as its number of per cent? Enter {_plain(recorded)}, or type "
                    f"{as_text(typed)}% so the spreadsheet stores {_plain(recorded)}")
    return ""


def _plain(number: float) -> str:
    """A number as a person writes it: 0.6135, not 0.6134999999999999 nor 6.135e-01."""
    return f"{number:.12g}"


def parse_commit(value: object) -> str:
    text = as_text(value)
    if 7 <= len(text) <= 40 and HEX.match(text):
        return text.lower()
    raise ValueError(f"{shown(text)} is not a git commit: write 7 to 40 hex characters of its SHA")


def parse_artefact_hash(value: object) -> str:
    text = as_text(value)
    match = SHA256_HEX.match(text.strip())
    if not match:
        raise ValueError(f"{shown(text)} is not an artefact hash: write sha256:<64 hex>, as "
                         "`aisdp-log hash <folder>` prints it")
    return "sha256:" + match[1].lower()


def parse_data_version(value: object) -> str:
    text = as_text(value)
    if len(text) > 255 or NOT_IN_DATA_VERSION.search(text):
        raise ValueError(f"{shown(text)} is not a data version: write the md5 from the .dvc "
                         "file (8+ hex characters) or a git tag/commit")
    return text


def parse_id(value: object) -> str:
    if isinstance(value, (dt.date, dt.time, dt.timedelta, bool)):
        raise ValueError(f"{shown(value)} is not an experiment ID")
    return as_text(value)


def parse_text(value: object) -> str:
    return as_text(value)


def parse_choice(value: object, allowed: tuple[str, ...]) -> str:
    text = as_text(value).strip().casefold()
    if text in allowed:
        return text
    raise ValueError(f"{shown(value)} is not one of: {', '.join(allowed)}")


def parse_rerun_mark(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = as_text(value).strip().casefold()
    if text in RERUN_MARKS:
        return True
    if text in RERUN_NO_MARKS:
        return False
    raise ValueError(f"{shown(value)} is not a rerun mark: write yes (or y, x, true, 1), "
                     "or leave it empty")


def parse_other_params(value: object) -> dict[str, str]:
    text = as_text(value)
    params: dict[str, str] = {}
    for part in PARAM_SEPARATOR.split(text):
        part = part.strip()
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{shown(part)} is not key=value: write other params as "
                             "key=value; key=value")
        params[key.strip()] = val.strip()
    return params


def parse_param(value: object, kind: str = "any", choices: tuple[str, ...] = ()) -> object:
    """A hyperparameter value, typed by its declaration in `aisdp.toml` when there is one."""
    if kind == "int":
        whole = _whole_number(value)
        if whole is None:
            raise ValueError(f"{shown(value)} is not a whole number"
                             + (looks_like_number(value) if isinstance(value, str) else ""))
        return whole
    if kind == "float":
        return parse_number(value)
    if kind == "bool":
        text = as_text(value).casefold()
        if isinstance(value, bool):
            return value
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ValueError(f"{shown(value)} is not true or false")
    if kind == "choice":
        text = as_text(value)
        number = _number_or_none(value)
        for choice in choices:
            if text.casefold() == choice.casefold():
                return choice
        for choice in choices:  # 32 typed as 32.0 or as the text "32.0"
            if number is not None and _number_or_none(choice) == number:
                return choice
        raise ValueError(f"{shown(text)} is not one of: {', '.join(choices)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value) if INTEGER.fullmatch(value) else float(value)
        except ValueError:
            return value
    return as_text(value)


def _number_or_none(value: object) -> float | None:
    """A number, or text that is one (100, 100.0, "100", "1e2"); None otherwise."""
    if isinstance(value, bool):
        return None
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _whole_number(value: object) -> int | None:
    """An integer however it was typed: 100, 100.0 (a float cell), "100", "100.0"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and INTEGER.fullmatch(value):
        return int(value)
    number = _number_or_none(value)
    if number is not None and number.is_integer():
        return int(number)
    return None


def decimals_typed(value: object) -> int | None:
    """How many decimals the person typed (0.912 -> 3); None when it cannot be told."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if "e" in text.lower():
        mantissa, _, exponent = text.lower().partition("e")
        digits = len(mantissa.partition(".")[2])
        try:
            decimals = digits - int(exponent)
        except ValueError:  # an exponent of thousands of digits, or none at all
            return None
        # 1e-999999 is a float (0.0); its decimals would overflow `10.0 ** -decimals`. Past
        # 400 decimals a float holds nothing, and every tolerance is 0.0 all the same.
        return min(max(0, decimals), MAX_DECIMALS)
    return len(text.partition(".")[2])
