"""One parser for numbers that arrive from outside: URL paths, query strings, forms, JSON bodies.

Python's int() takes "²"? No, it raises; but str.isdigit() says "²" is a digit, int() takes
Arabic-Indic digits, and neither has an upper bound, while the schema's ids are 32-bit INTEGERs
(PostgreSQL int4; SQLite refuses anything beyond 64 bits with OverflowError). Every id from a
request goes through here, so a hostile number is "not found" or "bad request", never a 500.
"""

from __future__ import annotations

import re

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # the largest value of the schema's INTEGER columns
_ASCII_NUMBER = re.compile(r"[0-9]{1,10}", re.ASCII)


def id_arg(value: object) -> int:
    """A row id (1 … MAX_ID) from a query string or form value in ASCII digits; ValueError otherwise,
    so `request.args.get(name, type=id_arg)` gives None for anything else."""
    return bounded(value, 1, MAX_ID)


def bounded(value: object, low: int, high: int) -> int:
    """A whole number low … high from a string of ASCII digits; ValueError otherwise."""
    if not isinstance(value, str) or not _ASCII_NUMBER.fullmatch(value):
        raise ValueError(f"not a number in {low}…{high}")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"not a number in {low}…{high}")
    return number


def json_id(value: object) -> int | None:
    """A row id from a JSON body: an integer (not a bool, not a string) within the schema's range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        return None
    return value


def json_int(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: ASCII digits only, at most MAX_ID; anything else is a 404."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's own parameter name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def without_nul(value: str) -> str:
    """Text with NUL bytes removed: PostgreSQL cannot store them in a text column."""
    return value.replace("\x00", "")


def _strings(value: object):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def carries_nul(request) -> bool:
    """Whether any query argument, form field or JSON string of the request holds a NUL byte."""
    texts = [*request.args.keys(), *request.args.values()]
    if request.method == "POST":
        texts += [*request.form.keys(), *request.form.values()]
        if request.is_json:
            texts += list(_strings(request.get_json(silent=True)))
    return any("\x00" in text for text in texts)
