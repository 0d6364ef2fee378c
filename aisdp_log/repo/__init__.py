"""The repository around the log: the one git wrapper, DVC's records read from git objects,
worktrees for reruns, root finding."""
