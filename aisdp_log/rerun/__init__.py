"""Reproducing rows: planning, running training in a worktree, judging bitwise or statistically,
writing the evidence back."""
