"""A complete example project built for real: git, DVC, training runs and a validated log."""
