"""The shared string table as the writer reads it (parsed by lxml: CDATA, character
references, rich text and prefixes read as Excel reads them); the writer never adds to it."""

from __future__ import annotations

from aisdp_log.workbook.xmlpart import local, rich_text


class SharedStrings:
    """The `<si>` entries of `xl/sharedStrings.xml`, each decoded when first asked for."""

    def __init__(self, root):
        self._items = [] if root is None else [e for e in root if local(e) == "si"]
        self._cache: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> str:
        if index not in self._cache:
            if not 0 <= index < len(self._items):
                raise IndexError(index)
            self._cache[index] = rich_text(self._items[index])
        return self._cache[index]
