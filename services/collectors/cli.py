"""``proctor collect <source>``: one subcommand per collector, imported on first use.

Each collector module exposes a click command named ``command``; this table is the only
place that lists them, so adding a source is one line here plus its module.
"""

from __future__ import annotations

import importlib

import click

#: source name -> (module, one-line help)
SOURCES: dict[str, tuple[str, str]] = {}


class _LazySources(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SOURCES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = SOURCES.get(cmd_name)
        if entry is None:
            return None
        command: click.Command = importlib.import_module(entry[0]).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # List sources from the table so `--help` does not import every collector.
        rows = [(name, SOURCES[name][1]) for name in sorted(SOURCES)]
        if rows:
            with formatter.section("Sources"):
                formatter.write_dl(rows)


@click.group(cls=_LazySources)
def collect() -> None:
    """Run a collector: watch one source of the candidate's platform and publish signals.

    Every collector publishes through the contract (validated Avro, keyed by platform_id),
    remembers its position so a restart neither repeats nor skips, exposes Prometheus
    metrics and backs off on errors. `proctor collect all` runs every configured one.
    """
