"""``proctor keys`` and ``proctor roster``: the proctor's keys and the cohort's platforms.

Keys: ``proctor keys generate`` writes an Ed25519 private key (mode 0600) and prints the
line to add to the workers' ``PROCTOR_TRUSTED_KEYS`` file. Roster: ``add`` enrolls a
platform and prints its credentials once (they are derived, never stored); ``revoke``
bumps its generation, which voids every credential handed out before.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from services.contract.settings import ClientSettings, connection_options
from services.errors import ProctorError
from services.settings import TrustSettings, load_settings
from services.trust.credentials import (
    ROSTER_SECRET_ENV,
    SignalKey,
    master_from_env,
    submission_token,
    webhook_secret,
)
from services.trust.keys import (
    ROLES,
    TRUSTED_KEYS_ENV,
    Keyring,
    SigningKey,
    generate,
    load_private_key,
    write_private_key,
)

#: Push sources whose receivers authenticate with per-platform secrets (collectors' names).
WEBHOOK_SOURCES = ("argocd", "gitops", "k8s-audit", "openlineage", "trino")


@click.group("keys")
def keys() -> None:
    """Ed25519 signing keys of the proctor and the submission endpoint (docs/trust.md).

    The private key stays with its owner (PROCTOR_SIGNING_KEY, PROCTOR_SIGNING_KEY_ID);
    workers get only the public line, in the file PROCTOR_TRUSTED_KEYS names.
    """


@keys.command("generate")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="proctor: signs exam control events and the roster; submission: the endpoint "
    "that signs what candidates submit.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for <key-id>.pem (created 0700 if missing; the key is written 0600).",
)
@click.option("--key-id", help="Id verifiers know the key by [default: <role>-<hash>].")
def keys_generate(role: str, out_dir: str, key_id: str | None) -> None:
    """Generate a key; print the trusted-keys line and the variables to set.

    \b
    Example:
      proctor keys generate --role proctor --out ~/.proctor/keys >> trusted-keys
    """
    from pathlib import Path

    try:
        key = generate(role, key_id)  # type: ignore[arg-type]
        directory = Path(out_dir)
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o700)
        path = write_private_key(key, directory)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{key.key_id} {role} {key.public_b64}")
    click.echo(
        f"wrote {path} (0600); set PROCTOR_SIGNING_KEY={path} PROCTOR_SIGNING_KEY_ID={key.key_id} "
        f"where it signs, and add the line above to the {TRUSTED_KEYS_ENV} file of every worker",
        err=True,
    )


@keys.command("local")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Private directory for a local stack's keys, e.g. .stack/keys.",
)
def keys_local(out_dir: str) -> None:
    """Keys and roster secret for a local stack, created once in --out; prints
    `export` lines for a shell (`eval "$(proctor keys local --out .stack/keys)"`).

    For demos and experiments only: a deployment generates its keys with `generate`.
    """
    import shlex
    from pathlib import Path

    from services.trust.local import ensure_local_trust

    try:
        env = ensure_local_trust(Path(out_dir))
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, value in env.items():
        click.echo(f"export {name}={shlex.quote(value)}")


# ---- roster ------------------------------------------------------------------------------


def _settings(flags: dict[str, Any]) -> ClientSettings:
    return ClientSettings.from_env(
        bootstrap=flags.get("bootstrap"),
        registry_url=flags.get("registry_url"),
        topic_prefix=flags.get("prefix"),
    )


def _trust() -> TrustSettings:
    return load_settings().trust


def _signer(flags: dict[str, Any]) -> SigningKey:
    trust = _trust()
    path = flags.get("signing_key") or trust.signing_key or ""
    if not path:
        raise click.UsageError(
            "the roster is signed by the proctor: pass --signing-key or set PROCTOR_SIGNING_KEY "
            "(and PROCTOR_SIGNING_KEY_ID) to a key from `proctor keys generate --role proctor`"
        )
    from pathlib import Path

    key_id = flags.get("key_id") or trust.signing_key_id or Path(path).stem
    return load_private_key(path, key_id)


def _keyring(signer: SigningKey | None) -> Keyring:
    trusted = _trust().trusted_keys
    if trusted:
        return Keyring.from_file(trusted)
    if signer is None:
        raise click.UsageError(
            f"set {TRUSTED_KEYS_ENV} (or PROCTOR_SIGNING_KEY) to verify the roster's records"
        )
    return Keyring.of((signer, "proctor"))


def _signing_options(func: Any) -> Any:
    func = click.option(
        "--key-id", help="Id of the signing key [PROCTOR_SIGNING_KEY_ID; default: file stem]."
    )(func)
    return click.option(
        "--signing-key",
        type=click.Path(dir_okay=False),
        help="The proctor's private key (PEM, 0600) [PROCTOR_SIGNING_KEY].",
    )(func)


@click.group("roster")
def roster() -> None:
    """The cohort's platforms on the compacted topic proctor.roster (docs/trust.md).

    Every record is signed by the proctor; workers ignore any other. Credentials are
    derived from PROCTOR_ROSTER_SECRET and the platform's generation, never stored.
    """


def _print_credentials(master: bytes, entry: Any, as_json: bool) -> None:
    signal = SignalKey.derive(master, entry.platform_id, entry.generation)
    hooks = {
        s: webhook_secret(master, s, entry.platform_id, entry.generation) for s in WEBHOOK_SOURCES
    }
    token = submission_token(master, entry.platform_id, entry.exam_id, entry.generation)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "platform_id": entry.platform_id,
                    "generation": entry.generation,
                    "signal_key": signal.token,
                    "webhook_secrets": hooks,
                    "submission_token": token,
                }
            )
        )
        return
    click.echo(f"platform {entry.platform_id} (generation {entry.generation})")
    click.echo(f"  PROCTOR_SIGNAL_KEY for its collectors: {signal.token}")
    for source, secret in hooks.items():
        click.echo(f"  webhook secret {source}: {secret}")
    click.echo(f"  the candidate's submission token: {token}")
    click.echo(
        "shown once: hand each to its holder; `proctor roster revoke` voids them all", err=True
    )


@roster.command("add")
@click.argument("platform")
@click.option("--exam", "exam_id", required=True, help="Exam id the platform is enrolled for.")
@click.option("--candidate", "candidate_id", required=True, help="The candidate's id.")
@click.option(
    "--extra-minutes",
    multiple=True,
    metavar="PART=N",
    help="Accommodation: N extra minutes for exam part PART (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as one JSON line.")
@_signing_options
@connection_options(prefix_default=None)
def roster_add(platform: str, exam_id: str, candidate_id: str, **flags: Any) -> None:
    """Enroll PLATFORM (or reinstate a revoked one) and print its credentials once.

    Needs the proctor's key (PROCTOR_SIGNING_KEY) and the master secret
    (PROCTOR_ROSTER_SECRET).
    """
    from services.trust.roster import RosterEntry, publish_entries, read_roster

    extra: dict[int, int] = {}
    for item in flags["extra_minutes"]:
        part, _, minutes = item.partition("=")
        if not (part.isdigit() and minutes.isdigit()):
            raise click.BadParameter(f"{item!r} is not PART=N", param_hint="--extra-minutes")
        extra[int(part)] = int(minutes)
    try:
        master = master_from_env(_trust().as_env())
        assert master is not None
        signer = _signer(flags)
        settings = _settings(flags)
        held = read_roster(settings, _keyring(signer)).get(platform)
        now = int(time.time() * 1000)
        if held is None:
            entry = RosterEntry(platform, exam_id, candidate_id, 1, False, extra, now)
        else:
            entry = RosterEntry(
                platform,
                exam_id,
                candidate_id,
                held.generation,
                False,
                extra or dict(held.extra_minutes),
                now,
                cohort=held.cohort,
            )
        publish_entries(settings, [entry], signer)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "enrolled" if held is None else ("reinstated" if held.revoked else "updated")
    click.echo(f"{verb} {platform}", err=True)
    _print_credentials(master, entry, flags["as_json"])


@roster.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per platform.")
@_signing_options
@connection_options(prefix_default=None)
def roster_list(as_json: bool, **flags: Any) -> None:
    """List the roster's platforms as the workers see them (verified records only)."""
    from services.trust.roster import RosterView

    try:
        signer = _signer(flags) if (flags.get("signing_key") or _has_env_key()) else None
        view = RosterView(_settings(flags), _keyring(signer))
        try:
            view.refresh()
        finally:
            view.close()
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    for entry in sorted(view.entries.values(), key=lambda e: e.platform_id):
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "platform_id": entry.platform_id,
                        "exam_id": entry.exam_id,
                        "candidate_id": entry.candidate_id,
                        "generation": entry.generation,
                        "revoked": entry.revoked,
                        "extra_minutes": {str(k): v for k, v in entry.extra_minutes.items()},
                    }
                )
            )
        else:
            extra = ",".join(f"{k}={v}" for k, v in sorted(entry.extra_minutes.items())) or "-"
            state = "revoked" if entry.revoked else "active"
            click.echo(
                f"{entry.platform_id}\t{entry.exam_id}\t{entry.candidate_id}\t"
                f"gen {entry.generation}\t{state}\textra {extra}"
            )
    if view.ignored:
        click.echo(f"{view.ignored} roster records ignored (unsigned or forged):", err=True)
        for reason in view.ignored_reasons[:10]:
            click.echo(f"  {reason}", err=True)


def _has_env_key() -> bool:
    return bool(_trust().signing_key)


@roster.command("revoke")
@click.argument("platform")
@_signing_options
@connection_options(prefix_default=None)
def roster_revoke(platform: str, **flags: Any) -> None:
    """Revoke PLATFORM: bump its generation so every credential of the old one is void.

    Its signals and submissions are refused from then on; `proctor roster add` reinstates
    it with new credentials.
    """
    from services.trust.roster import publish_entries, read_roster

    try:
        signer = _signer(flags)
        settings = _settings(flags)
        held = read_roster(settings, _keyring(signer)).get(platform)
        if held is None:
            raise click.ClickException(f"{platform} is not in the roster (`proctor roster list`)")
        entry = held.revoke()
        publish_entries(settings, [entry], signer)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {platform}: generation {held.generation} -> {entry.generation}")


@keys.command("sign-recording")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("target", type=click.Path(dir_okay=False))
@_signing_options
def keys_sign_recording(source: str, target: str, **flags: Any) -> None:
    """Copy the recording SOURCE to TARGET with every control event signed by the
    proctor's key (`_signer`/`_signature`), for `proctor replay --verify`."""
    from pathlib import Path

    from services.trust.recording import sign_recording

    try:
        count = sign_recording(Path(source), Path(target), _signer(flags))
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"signed {count} control events into {target}")


__all__ = ["ROSTER_SECRET_ENV", "keys", "roster"]
