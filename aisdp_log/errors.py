"""Errors that stop a command: each becomes one line and exit code 2, never a traceback."""


class AisdpLogError(Exception):
    """Nothing could be checked or written; the message is the one line the user sees."""

    exit_code = 2


class WorkbookError(AisdpLogError):
    """The workbook cannot be read: missing, not an .xlsx, encrypted, hostile, no sheet."""


class ConfigError(AisdpLogError):
    """`aisdp.toml` is unreadable or holds a value the tool cannot use."""


class RepositoryError(AisdpLogError):
    """The git repository the checks need is missing or unusable."""


class WriteRefused(AisdpLogError):
    """A write to the user's workbook was refused (open in Excel, locked, duplicate row)."""


class WriteFailed(AisdpLogError, OSError):
    """The system refused a write (disk full, quota, I/O error, permission): the message names
    the file and the cause; the file is as it was and no temp file is left. Also an OSError,
    so code that handled the raw error still does."""
