"""`aisdp_log.training`, the name training scripts import: the training API of `aisdp_log.record`.

Scripts written for aisdp-log 0.1 say `from aisdp_log.training import record_run`, and a rerun
checks those scripts out at the row's recorded commit, so this name must keep working for as
long as such commits exist. New code may import from `aisdp_log` directly.
"""

from __future__ import annotations

from aisdp_log.record.training import *  # noqa: F401,F403
from aisdp_log.record.training import __all__  # noqa: F401
