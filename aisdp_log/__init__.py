"""aisdp-log: a trustworthy experiment log for the EU AI Act's model-development evidence.

Library API (no click needed)::

    import aisdp_log
    report = aisdp_log.validate("experiment-log.xlsx", offline=True)
    for finding in report.findings:
        print(finding.cell, finding.code, finding.message)
    frame = aisdp_log.read_log("experiment-log.xlsx")   # pandas DataFrame, pandera-checked
"""

from __future__ import annotations

__version__ = "0.1.0"
#: Version of the workbook layout the template writes (sheets, columns, validations).
TEMPLATE_VERSION = "3"

__all__ = ["__version__", "TEMPLATE_VERSION", "validate", "read_log", "load_config", "Report",
           "Finding", "Severity", "AisdpLogError", "CATALOGUE"]

_LAZY = {
    "validate": ("lint.runner", "validate"),
    "read_log": ("lint.frame", "read_log"),
    "load_config": ("config", "load_config"),
    "Report": ("findings", "Report"),
    "Finding": ("findings", "Finding"),
    "Severity": ("findings", "Severity"),
    "CATALOGUE": ("findings", "CATALOGUE"),
    "AisdpLogError": ("errors", "AisdpLogError"),
    "seed_everything": ("record.training", "seed_everything"),
    "record_run": ("record.training", "record_run"),
}


def __getattr__(name: str):
    # Lazy, so `aisdp-log --help` and `import aisdp_log` stay instant.
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
