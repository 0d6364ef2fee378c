"""Validation: the check runner, the registry of checks (one module per family) and their
context, coverage, formatters and annotations."""
