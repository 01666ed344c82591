"""``proctor deploy render``: a cohort (file, or the signed roster) in, a Kustomize tree of
its collectors out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import click
import yaml

from services.contract.settings import ClientSettings, connection_options
from services.deploy.cohort import Cohort, load_cohort
from services.deploy.render import Templates, render
from services.errors import ConfigError, ProctorError

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
#: the first line of every rendered kustomization: a directory holding it may be replaced
MARK = "# Rendered by `proctor deploy render`"


def templates_for(
    out: Path, cohort_file: Path | None, k8s: Path = K8S, source: str | None = None
) -> Templates:
    """Read the repository's templates; paths relative to where the tree is written.
    ``source`` (what the header says it was rendered from) defaults to the cohort file."""
    template = k8s / "argocd" / "notifications-template.yaml"
    try:
        notifications = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {template}: {exc}") from exc
    out = out.resolve()
    if source is None and cohort_file is not None:
        try:
            source = str(cohort_file.resolve().relative_to(REPO))
        except ValueError:
            source = cohort_file.name
    return Templates(
        argocd_notifications=notifications,
        proctor_base=os.path.relpath(k8s / "base", out),
        # one level deeper: inside each platform's directory
        pollers_base=os.path.relpath(k8s / "pollers" / "base", out / "platform"),
        source=source or "the cohort file",
    )


def write_tree(files: dict[str, str], out: Path) -> None:
    """Write the tree, replacing an earlier render (never a directory it did not make)."""
    if out.exists() and any(out.iterdir()):
        top = out / "kustomization.yaml"
        if not (top.is_file() and top.read_text(encoding="utf-8").startswith(MARK)):
            raise ConfigError(
                f"{out} is not empty and holds no earlier render: give an empty or new directory"
            )
        shutil.rmtree(out)
    for rel, text in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@click.group("deploy")
def deploy() -> None:
    """Deployment of a cohort's collectors."""


def _cohort_from_roster(
    name: str, base_file: Path | None, k8s_audit_url: str | None, flags: dict[str, Any]
) -> Cohort:
    from services.deploy.roster import cohort_from_roster
    from services.trust.cli import _keyring, _signer, _trust
    from services.trust.roster import read_roster

    base: dict[str, Any] | None = None
    if base_file is not None:
        try:
            base = yaml.safe_load(base_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the base file {base_file}: {exc}") from exc
        if not isinstance(base, dict):
            raise ConfigError(f"{base_file}: a cohort file is a mapping")
    settings = ClientSettings.from_env(
        bootstrap=flags.get("bootstrap"),
        registry_url=flags.get("registry_url"),
        topic_prefix=flags.get("prefix"),
    )
    keyring = _keyring(None if _trust().trusted_keys else _signer({}))
    entries = read_roster(settings, keyring).values()
    return cohort_from_roster(
        name, entries, base, k8s_audit_url=k8s_audit_url, where=f"roster cohort {name}"
    )


@deploy.command("render")
@click.option(
    "--cohort",
    "cohort_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the cohort deployment file (candidates, platforms, namespaces); with "
    "--roster-cohort, only the base it takes namespaces, overrides and settings from",
)
@click.option(
    "--roster-cohort",
    metavar="NAME",
    help="take the candidates from cohort NAME of the signed roster (`proctor cohort add`): "
    "exactly its active platforms get collectors; needs PROCTOR_TRUSTED_KEYS or the "
    "proctor's PROCTOR_SIGNING_KEY to verify the records",
)
@click.option(
    "--k8s-audit-url",
    metavar="URL",
    help="the https front of the k8s-audit receiver (with --roster-cohort, over the base's)",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="directory of the Kustomize tree (an earlier render there is replaced)",
)
@connection_options(registry=None, prefix_default=None)
def render_cmd(
    cohort_file: Path | None,
    roster_cohort: str | None,
    k8s_audit_url: str | None,
    out: Path,
    **flags: Any,
) -> None:
    """Render every candidate's collectors and the receivers' platforms as Kustomize.

    \b
      proctor deploy render --cohort k8s/cohorts/example/cohort.yaml --out rendered/
      proctor deploy render --roster-cohort y3-dec --cohort base.yaml --out rendered/
    """
    if cohort_file is None and roster_cohort is None:
        raise click.UsageError("give --cohort FILE, --roster-cohort NAME, or both")
    if k8s_audit_url is not None and roster_cohort is None:
        raise click.UsageError("--k8s-audit-url goes with --roster-cohort (a file sets its own)")
    try:
        if roster_cohort is not None:
            cohort = _cohort_from_roster(roster_cohort, cohort_file, k8s_audit_url, flags)
            source = f"roster cohort {roster_cohort}" + (
                f" over {cohort_file.name}" if cohort_file is not None else ""
            )
        else:
            assert cohort_file is not None
            cohort = load_cohort(cohort_file)
            source = None
        files = render(cohort, templates_for(out, cohort_file, source=source))
        write_tree(files, out)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"cohort {cohort.cohort}: {len(cohort.candidates)} platform(s), {len(files)} files "
        f"in {out}; check with: kustomize build {out}"
    )
