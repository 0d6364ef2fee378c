"""Nested params and metrics named the way DVC flattens them (`train.n_est`, `avg_prec.test`).

`dvc params diff` and `dvc metrics show` join nested keys with dots and keep lists as values
(flatten_dict's "dot" reducer). A log column `params.train.n_est` therefore names
`{"train": {"n_est": 50}}` in a record, and equally a flat key `"train.n_est"`: a key that
itself holds a dot is matched first, then every way of splitting the name at its dots.
Keys compare case-insensitively when no exact key matches (choices are written `Adam` or
`adam`, names `F1` or `f1`), as the flat lookup always did.
"""

from __future__ import annotations

from collections.abc import Iterator

#: What `lookup` answers for a name the record does not hold (None is a recorded null).
MISSING = object()
#: Deeper than any real params file; a hostile record cannot make the walk recurse further.
MAX_DEPTH = 32


def lookup(data: object, name: str, _depth: int = 0) -> object:
    """The value `name` (dotted as DVC flattens) names in `data`, or MISSING."""
    if not isinstance(data, dict) or _depth > MAX_DEPTH:
        return MISSING
    if name in data:
        return data[name]
    folded = name.casefold()
    by_folded = None
    for key in data:
        if isinstance(key, str) and key.casefold() == folded:
            return data[key]
    if "." not in name:
        return MISSING
    # split at each dot, longest head first: {"a.b": {"c": 1}} before {"a": {"b.c": 1}}
    heads = [index for index, char in enumerate(name) if char == "."]
    for index in reversed(heads):
        head, rest = name[:index], name[index + 1:]
        inner = data.get(head, MISSING)
        if inner is MISSING:
            if by_folded is None:
                by_folded = {str(k).casefold(): v for k, v in data.items()}
            inner = by_folded.get(head.casefold(), MISSING)
        if isinstance(inner, dict):
            found = lookup(inner, rest, _depth + 1)
            if found is not MISSING:
                return found
    return MISSING


def leaves(data: dict, prefix: str = "", _depth: int = 0) -> Iterator[tuple[str, object]]:
    """(dotted name, value) for every leaf, as `dvc params diff` lists them (lists are
    values; an empty table is a value too)."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and _depth < MAX_DEPTH:
            yield from leaves(value, name + ".", _depth + 1)
        else:
            yield name, value


def covered(name: str, columns: set[str]) -> bool:
    """Whether a leaf named `name` has a column: its own (folded) name, or a table above it
    (`params.optimizer` holds the whole `optimizer` table)."""
    folded = name.casefold()
    if folded in columns:
        return True
    return any(folded.startswith(column + ".") for column in columns)


def unplaced(data: dict, columns: set[str]) -> dict[str, object]:
    """The leaves of a record no column takes, by dotted name as `dvc params diff` lists
    them (`featurize.max_features`). `columns` are folded names."""
    return {name: value for name, value in leaves(data) if not covered(name, columns)}
