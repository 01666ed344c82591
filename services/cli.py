"""The ``proctor`` command: wiring only.

Each service keeps its own click commands in its ``cli.py``; this module lists them and
imports one only when it is called, so ``proctor --help`` stays fast and a service's
heavy dependencies load only for its own commands.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from services import __version__
from services.errors import ProctorError

#: command name -> (module, attribute, one-line help shown by ``proctor --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "stack": (
        "services.stack.cli",
        "stack",
        "Run the local stack: Kafka, registry, PostgreSQL, Trino.",
    ),
    "collect": (
        "services.collectors.cli",
        "collect",
        "Run collectors that watch a platform and publish signals.",
    ),
    "schemas": (
        "services.contract.cli",
        "schemas",
        "Register and check the contract's Avro schemas.",
    ),
    "topics": ("services.contract.cli", "topics", "Create and list the contract's Kafka topics."),
    "judge": (
        "services.judge.cli",
        "judge",
        "Judge a postmortem or design review; show the sentences counted.",
    ),
    "replay": ("services.offline.cli", "replay", "Grade a recorded exam offline (JSON Lines)."),
    "regrade": (
        "services.offline.cli",
        "regrade",
        "Show what changes when recordings are graded under another rubric version.",
    ),
    "publish": (
        "services.publisher.cli",
        "publish",
        "Publish exam events (one, or a whole recording).",
    ),
    "worker": (
        "services.grader.cli",
        "worker",
        "Run the grader service: grade live into Kafka and Iceberg.",
    ),
    "simulate": (
        "services.publisher.sim_cli",
        "simulate",
        "Simulate candidate platforms through a whole exam.",
    ),
    "scoreboard": (
        "services.stack.scoreboard",
        "scoreboard",
        "The live scoreboard: Superset over Trino, or a terminal table.",
    ),
    "submit-server": (
        "services.submission.cli",
        "submit_server",
        "Run the submission endpoint: candidates' submissions, stamped and signed.",
    ),
    "submit": (
        "services.submission.cli",
        "submit_group",
        "Submit to the proctor: pipeline, diagnosis, artifact, self-grade.",
    ),
    "keys": (
        "services.trust.cli",
        "keys",
        "Generate the proctor's and the submission endpoint's signing keys.",
    ),
    "roster": (
        "services.trust.cli",
        "roster",
        "Enroll, list and revoke the cohort's platforms (and their credentials).",
    ),
    "rehearse": (
        "services.rehearsal.cli",
        "rehearse",
        "Rehearse the exam on real systems: faults injected for real, graded live.",
    ),
    "deploy": (
        "services.deploy.cli",
        "deploy",
        "Render a cohort's collectors (Kustomize) from its cohort file.",
    ),
    "cohort": (
        "services.cohort.cli",
        "cohort",
        "A cohort of exams in the roster: add candidates, list them.",
    ),
    "exam": (
        "services.cohort.cli",
        "exam",
        "Start, end a part, extend a part, end: one candidate or a cohort (signed).",
    ),
    "fault": (
        "services.cohort.cli",
        "fault",
        "Inject the Part 2 incident for one candidate or a cohort (signed).",
    ),
    "grade": (
        "services.cohort.cli",
        "grade",
        "Override a criterion or record an appeal's decision (signed, with a reason).",
    ),
    "review": (
        "services.cohort.review",
        "review",
        "The review queue of text verdicts: list, confirm or override (signed).",
    ),
    "report": (
        "services.cohort.cli",
        "report_cmd",
        "Per-candidate reports (Markdown, HTML) and a cohort CSV and Parquet from a recording.",
    ),
    "record": (
        "services.cohort.cli",
        "record_cmd",
        "Record a live exam or cohort from the topics to JSON Lines (verified).",
    ),
    "demo": (
        "services.stack.demo",
        "demo",
        "A whole simulated exam on the local stack, graded live, on the scoreboard.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command: click.Command = getattr(importlib.import_module(entry[0]), entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # List commands from the table so `proctor --help` does not import every service.
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="proctor")
def cli() -> None:
    """proctor grades hands-on data-platform exams live, from events.

    Each command has its own --help. Settings come from flags or PROCTOR_* environment
    variables; flags win.
    """


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="proctor", standalone_mode=True)
    except ProctorError as exc:  # pragma: no cover - click handles most; this is the net
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
