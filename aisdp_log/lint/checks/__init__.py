"""The check families, one module each: `run(log, ctx) -> Iterator[Finding]` beside `CODES`,
the finding codes it may emit. `aisdp_log.lint.registry` lists them in order;
`aisdp_log.lint.runner.run_checks` runs them and de-duplicates (one bad cell can fail two
checks)."""
