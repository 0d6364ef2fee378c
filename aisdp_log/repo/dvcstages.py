"""The params files the stages of a `dvc.yaml` declare, with `foreach` and `matrix` stages
expanded as `dvc repro` expands them (one stage per item, `${item}`, `${item.key}` and
`${key}` filled in), so D004 reads every params file any stage trains with.

Read from the parsed YAML without DVC (starting DVC costs >= 350 ms). What cannot be resolved
without running DVC's templating in full (a `${...}` naming a `vars` file, a `foreach` over a
variable from another file) is left out, never guessed: its cells stay unverified, and the
coverage figure counts them.
"""

from __future__ import annotations

import itertools
import posixpath
import re

#: The params file DVC reads when a stage names a param without a file.
DEFAULT_PARAMS = "params.yaml"
#: `${item.model}`, `${ key }`: DVC's interpolation.
TEMPLATE = re.compile(r"\$\{\s*([^{}]*?)\s*\}")
#: A matrix of more combinations than this is not expanded (DVC would make as many stages).
MAX_EXPANDED = 10_000


def declared_params_files(document: object, base: str) -> list[str]:
    """Paths (from the repository root, `base` being the folder of the `dvc.yaml`) of the
    params files the stages of a parsed `dvc.yaml` declare, each once, in order."""
    if not isinstance(document, dict) or not isinstance(document.get("stages"), dict):
        return []
    stages = document["stages"]
    variables = _variables(document)
    paths: list[str] = []
    for stage in stages.values():
        for body, context in _expanded(stage, variables):
            paths += _stage_params(body, context, base)
    return list(dict.fromkeys(paths))


def _variables(document: dict) -> dict:
    """The top-level `vars` given inline (a mapping, or a list of mappings); `vars` files
    are not read."""
    found: dict = {}
    entries = document.get("vars")
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict):
            found.update(entry)
    return found


def _expanded(stage: object, variables: dict) -> list[tuple[dict, dict]]:
    """(stage body, the names its `${...}` may use) for each stage DVC makes of `stage`."""
    if not isinstance(stage, dict):
        return []
    if "foreach" in stage:
        body = stage.get("do")
        items = _resolve(stage["foreach"], variables)
        if not isinstance(body, dict):
            return []
        if isinstance(items, dict):
            return [(body, {**variables, "key": key, "item": item})
                    for key, item in items.items()]
        if isinstance(items, list):
            return [(body, {**variables, "key": index, "item": item})
                    for index, item in enumerate(items)]
        return []
    if "matrix" in stage:
        matrix = stage["matrix"]
        if not isinstance(matrix, dict) or not matrix:
            return []
        axes: dict[object, list] = {}
        for name, values in matrix.items():
            resolved = _resolve(values, variables)
            if not isinstance(resolved, list) or not resolved:
                return []
            axes[name] = resolved
        count = 1
        for values in axes.values():
            count *= len(values)
        if count > MAX_EXPANDED:
            return []
        names = list(axes)
        return [(stage, {**variables, "item": dict(zip(names, combination))})
                for combination in itertools.product(*(axes[name] for name in names))]
    return [(stage, variables)]


def _resolve(value: object, variables: dict) -> object:
    """`value`, or what a lone `${name}` names among `variables` (None when unknown)."""
    if isinstance(value, str):
        match = TEMPLATE.fullmatch(value.strip())
        return _lookup(match[1], variables) if match else None
    return value


def _lookup(name: str, context: dict) -> object:
    """`item.model` or `item[0]`-free dotted names, as DVC resolves them; None if absent."""
    value: object = context
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _fill(text: str, context: dict) -> str | None:
    """`text` with every `${...}` filled from `context`; None when one cannot be."""
    unresolved = False

    def value(match: re.Match) -> str:
        nonlocal unresolved
        found = _lookup(match[1], context)
        if found is None or isinstance(found, (dict, list)):
            unresolved = True
            return ""
        if isinstance(found, bool):
            return "true" if found else "false"
        return str(found)

    filled = TEMPLATE.sub(value, text)
    return None if unresolved else filled


def _stage_params(stage: dict, context: dict, base: str) -> list[str]:
    declared = stage.get("wdir")
    wdir = _fill(declared if isinstance(declared, str) else ".", context)
    if wdir is None:
        return []
    folder = posixpath.normpath(posixpath.join(base, wdir))
    entries = stage.get("params")
    paths: list[str] = []
    for entry in entries if isinstance(entries, list) else ():
        names = [DEFAULT_PARAMS] if isinstance(entry, str) else \
            [str(key) for key in entry] if isinstance(entry, dict) else []
        for name in names:
            filled = _fill(name, context)
            if filled is None:
                continue
            path = posixpath.normpath(posixpath.join(folder, filled))
            if not path.startswith("../") and path not in ("..", ".") \
                    and not posixpath.isabs(path):
                paths.append(path)
    return paths
