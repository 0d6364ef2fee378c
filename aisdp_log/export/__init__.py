"""Carrying the validated log into other tools (MLflow)."""
