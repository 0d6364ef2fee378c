"""Plumbing every room may use: atomic file replacement, progress display, processes that die with
their parent."""
