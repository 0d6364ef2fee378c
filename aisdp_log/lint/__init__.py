"""Validation: the check runner, the checks (one module per family), coverage, formatters and annotations."""
