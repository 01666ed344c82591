"""``proctor deploy render``: a cohort file in, a Kustomize tree of its collectors out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from services.deploy.cohort import load_cohort
from services.deploy.render import Templates, render
from services.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
#: the first line of every rendered kustomization: a directory holding it may be replaced
MARK = "# Rendered by `proctor deploy render`"


def templates_for(out: Path, cohort_file: Path, k8s: Path = K8S) -> Templates:
    """Read the repository's templates; paths relative to where the tree is written."""
    template = k8s / "argocd" / "notifications-template.yaml"
    try:
        notifications = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {template}: {exc}") from exc
    out = out.resolve()
    try:
        source = str(cohort_file.resolve().relative_to(REPO))
    except ValueError:
        source = cohort_file.name
    return Templates(
        argocd_notifications=notifications,
        proctor_base=os.path.relpath(k8s / "base", out),
        # one level deeper: inside each platform's directory
        pollers_base=os.path.relpath(k8s / "pollers" / "base", out / "platform"),
        source=source,
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


@deploy.command("render")
@click.option(
    "--cohort",
    "cohort_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the cohort deployment file (candidates, platforms, namespaces)",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="directory of the Kustomize tree (an earlier render there is replaced)",
)
def render_cmd(cohort_file: Path, out: Path) -> None:
    """Render every candidate's collectors and the receivers' platforms as Kustomize."""
    try:
        cohort = load_cohort(cohort_file)
        files = render(cohort, templates_for(out, cohort_file))
        write_tree(files, out)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"cohort {cohort.cohort}: {len(cohort.candidates)} platform(s), {len(files)} files "
        f"in {out}; check with: kustomize build {out}"
    )
