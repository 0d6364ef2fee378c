"""`aisdp-log template`: write an empty experiment-log workbook, or upgrade an old one."""

from __future__ import annotations

from pathlib import Path

import click

from aisdp_log.errors import AisdpLogError


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("experiment-log.xlsx"), show_default=True,
              help="Where to write the workbook.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="aisdp.toml whose [template] declares params and metrics "
                   "(default: ./aisdp.toml when present).")
@click.option("--force", is_flag=True, help="Overwrite an existing file (with --upgrade: "
              "write although a lock file says the log is open).")
@click.option("--upgrade", "upgrade", metavar="LOG", type=click.Path(path_type=Path),
              help="Instead: bring LOG, made by an older template, to the current one (new "
              "columns, validations, marks, Guide), keeping every row and column.")
def template(output: Path, config_path: Path | None, force: bool,
             upgrade: Path | None) -> None:
    """Write an empty experiment-log workbook with the documented columns and help."""
    from aisdp_log.config import load_config
    from aisdp_log.workbook.template import write_template

    if upgrade is not None:
        from aisdp_log.workbook.upgrade import upgrade_log

        for line in upgrade_log(upgrade, force=force).lines():
            click.echo(line)
        return
    config = load_config(Path.cwd(), config_path)
    if output.exists() and not force:
        raise AisdpLogError(f"{output}: already exists; pass --force to overwrite it")
    write_template(output, config)
    params = ", ".join(p.name for p in config.template_params())
    metrics = ", ".join(m.name for m in config.template_metrics())
    click.echo(f"wrote {output} (params: {params}; metrics: {metrics})")
