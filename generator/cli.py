"""The ``socdef`` command: parses options, resolves settings and hands off to a stage.

Expected failures (a :class:`~generator.errors.SocdefError`, or any click exception) print one
line ``Error: …`` and exit 1 (its traceback only with ``SOCDEF_DEBUG=1``); usage errors exit 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from generator import runtime
from generator.errors import SocdefError, on_disk, os_failure
from generator.settings import Settings, load_settings
from worker.access.accounts import AccountError
from worker.access.keys import KeyStoreError
from worker.contract.tiers import TIER_NAMES


def with_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--data-dir`` to a command and pass the resolved :class:`Settings` instead."""

    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where the store, builds, bucket and key database live "
        "[env SOCDEF_DATA_DIR; default ./socdef-data].",
    )
    @functools.wraps(func)
    def wrapper(data_dir: Path | None, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in DATABASE_OPTIONS if name in kwargs}
        with on_disk("reading the settings"):
            settings = load_settings({"data_dir": data_dir, **given})
        return func(settings, **kwargs)

    return wrapper


DATABASE_OPTIONS = ("db", "key_secret_file")


def with_database(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--db`` and ``--key-secret-file`` (read into the settings by ``with_settings``)."""
    func = click.option(
        "--key-secret-file",
        help="The file holding the keys' HMAC secret; replicas sharing a --db share it "
        "[env SOCDEF_KEY_SECRET_FILE; default DATA_DIR/secret.key].",
    )(func)
    return click.option(
        "--db",
        help="Where keys, accounts and usage live: a postgresql:// URL shared by replicas "
        "[env SOCDEF_DB: keeps a password out of the process list; default SQLite in DATA_DIR].",
    )(func)


def private_data_dir(settings: Settings) -> None:
    """What this command creates is owner-only (files 0600, folders 0700: umask 077); the data
    dir of an older version is made so too: itself and what lies directly in it (the key
    database, secrets, the store, build and bucket folders; deeper files are behind those)."""
    os.umask(0o077)
    data = settings.data_dir
    with contextlib.suppress(FileNotFoundError, PermissionError):
        data.chmod(0o700)
        for entry in data.iterdir():
            with contextlib.suppress(FileNotFoundError, PermissionError):
                if not entry.is_symlink() and not entry.is_socket():  # a worker's: 0660
                    entry.chmod(0o700 if entry.is_dir() else 0o600)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="socdef")
def cli() -> None:
    """socdef: security RSS/Atom sources in, IOC feeds out."""


def store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--fresh`` and ``--store-generation``: how the store is taken from the bucket."""
    func = click.option(
        "--store-generation",
        metavar="ID",
        help="Restore this store generation from the bucket (one its store/current.json "
        "keeps) instead of the latest; the next publish puts it on top.",
    )(func)
    return click.option(
        "--fresh",
        is_flag=True,
        help="Start without the bucket's store history (an empty or local store is kept; "
        "the next publish replaces the history: docs/deploy.md, Recovery).",
    )(func)


@cli.command()
@with_settings
@click.option(
    "--offline",
    "offline",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Read saved feed files <source-id>.xml from this folder instead of fetching.",
)
@click.option(
    "--sources",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The sources file [default: the bundled sources.toml].",
)
@click.option(
    "--shift-dates",
    is_flag=True,
    help="Shift every article date so the newest lands now (for saved samples).",
)
@click.option("--now", type=int, help="Unix time to ingest as (for reproducible runs).")
@store_options
def ingest(
    settings: Settings,
    offline: Path | None,
    sources: Path | None,
    shift_dates: bool,
    now: int | None,
    fresh: bool,
    store_generation: str | None,
) -> None:
    """Fetch the sources (or read saved feeds), extract IOCs and merge them into the store.

    The store is first restored from the bucket when it is missing or older there."""
    private_data_dir(settings)
    report = runtime.run_ingest(
        settings,
        offline=offline,
        sources=sources,
        shift_dates=shift_dates,
        now=now,
        fresh=fresh,
        generation=store_generation,
    )
    skipped = [s.source for s in report.sources if s.status == "skipped"]
    for s in report.sources:
        if s.status == "skipped":
            continue
        line = f"{s.source:<28} {s.status:<12} {s.items:>4} items {s.iocs:>5} iocs"
        click.echo(line + (f"  {s.error}" if s.error else ""))
    if skipped:
        click.echo(f"skipped {len(skipped)} sources with no saved feed in {offline}")
    m = report.merge
    if m is not None:
        kept = f" ({m.sightings_kept} kept from earlier reads)" if m.sightings_kept else ""
        click.echo(
            f"store: {m.articles_added} new articles, {m.articles_updated} updated, "
            f"{m.sightings} sightings{kept}"
        )


@cli.command()
@with_settings
@click.option(
    "--sources",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The sources file [default: the bundled sources.toml].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
def sources(settings: Settings, sources: Path | None, as_json: bool) -> None:
    """Each source's last fetch, status, item and IOC counts and last error."""
    for r in runtime.run_sources(settings, sources=sources):
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(r), sort_keys=True))
            continue
        line = f"{r.id:<28} {r.status:<12} {r.last_fetch:<20} {r.items:>4} items {r.iocs:>5} iocs"
        click.echo(line + (f"  {r.error}" if r.error else ""))


@cli.command()
@click.argument("file", type=click.File("rb"), default="-")
def extract(file: Any) -> None:
    """Print the indicators in a report (text or HTML; FILE or - for stdin) as JSON lines."""
    from generator.extract.analyst import extract_report, indicator_lines

    for line in indicator_lines(extract_report(file.read())):
        click.echo(line)


@cli.command()
@with_settings
@click.option("--now", type=int, help="Unix time the build is as of [default: last ingest].")
@click.option(
    "--init",
    is_flag=True,
    help="Create an empty store first when the data dir and the bucket have none (else an error).",
)
@store_options
@click.option(
    "--force",
    is_flag=True,
    help="Build even from a store with fewer than half the sightings of the published one.",
)
def build(
    settings: Settings,
    now: int | None,
    init: bool,
    fresh: bool,
    store_generation: str | None,
    force: bool,
) -> None:
    """Precompute the build tree from the store (restored from the bucket when missing or
    older there)."""
    from generator.store.generations import Store

    if Store(settings.store_dir).exists() or init or runtime.store_target(settings):
        private_data_dir(settings)
    result = runtime.run_build(
        settings, now=now, fresh=fresh, generation=store_generation, force=force, init=init
    )
    click.echo(
        f"build {result.build_id}: {result.iocs} IOCs, {result.objects} objects, "
        f"{result.bytes / 1e6:.1f} MB in {result.seconds:.1f}s"
    )


@cli.command()
@with_settings
@click.argument("value")
@click.option("--now", type=int, help="Unix time to judge the state at [default: last ingest].")
def explain(settings: Settings, value: str, now: int | None) -> None:
    """An indicator's story: sightings, confidence, warninglists, state and why."""
    for story in runtime.run_explain(settings, value, now=now):
        click.echo(story)


@cli.command()
@with_settings
@click.argument("article")
@click.option("--reason", default="", help="Why, kept beside the entry (e.g. the source's note).")
@click.option("--at", type=int, help="Unix time it was retracted [default: now].")
def retract(settings: Settings, article: str, reason: str, at: int | None) -> None:
    """Record that a source retracted an article (its URL or id): the next build withdraws
    every indicator seen only in retracted articles."""
    private_data_dir(settings)
    article_id, title, count = runtime.run_retract(settings, article, reason=reason, at=at)
    click.echo(
        f"retracted article {article_id} ({title}): {count} indicator(s) reported only in "
        f"retracted articles are withdrawn by the next build"
    )


@cli.command("site")
@with_settings
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the pages and assets into (e.g. a static host's publish dir).",
)
@click.option("--build-id", help="The build whose site to write [default: the latest build].")
def site_cmd(settings: Settings, out: Path, build_id: str | None) -> None:
    """Write a build's docs site as plain files, for a static host."""
    from generator.site.export import export_site

    click.echo(f"wrote {export_site(settings.build_dir, out, build_id)} site files to {out}")


@cli.command()
@with_settings
@click.option(
    "--to",
    "dest",
    help="Destination: a folder or s3://BUCKET/PREFIX "
    "[default: the bucket setting, else DATA_DIR/bucket].",
)
@click.option("--endpoint-url", help="S3-compatible endpoint [default: AWS_ENDPOINT_URL or AWS].")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Uploads in flight at once.",
)
@click.option("--build-id", help="The build to publish [default: the latest build].")
@click.option(
    "--store/--no-store",
    "with_store",
    default=True,
    show_default=True,
    help="Also upload the store's live generation (its history, under store/).",
)
@click.option(
    "--keep-stores",
    type=click.IntRange(2, 10_000),
    default=24,
    show_default=True,
    help="Store generations kept in the bucket.",
)
def publish(
    settings: Settings,
    dest: str | None,
    endpoint_url: str | None,
    jobs: int,
    build_id: str | None,
    with_store: bool,
    keep_stores: int,
) -> None:
    """Copy a build to the bucket and switch the pointer to it atomically, then the store.

    Exit status 75: another publish advanced the bucket first; ingest, build and publish
    again."""
    if not (dest or settings.bucket):  # the default bucket lies in the data dir
        private_data_dir(settings)
    result = runtime.run_publish(
        settings,
        dest=dest,
        build_id=build_id,
        endpoint_url=endpoint_url,
        jobs=jobs,
        with_store=with_store,
        keep_stores=keep_stores,
    )
    click.echo(
        f"published {result.build_id}: uploaded {result.uploaded} "
        f"({result.uploaded_bytes / 1e6:.1f} MB), skipped {result.skipped}, "
        f"removed {result.removed}"
        + (f" (signed by key {result.signed_by})" if result.signed_by else " (not signed)")
    )
    stored = result.store
    if stored is not None and stored.changed:
        click.echo(
            f"store {stored.store_id}: sent {stored.uploaded} of "
            f"{stored.uploaded + stored.skipped} files ({stored.uploaded_bytes / 1e6:.1f} MB), "
            f"deleted {stored.removed}"
        )
    elif stored is not None:
        click.echo(f"store {stored.store_id}: unchanged ({stored.skipped} files in the bucket)")


def serve_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--host", default="127.0.0.1", show_default=True),
        click.option(
            "--port",
            default=8000,
            show_default=True,
            type=click.IntRange(0, 65535),
            help="0 picks a free port; stdout then names it in the line "
            "'listening on http://HOST:PORT'.",
        ),
        click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64)),
        click.option(
            "--limiter",
            type=click.Choice(["sqlite", "memory", "redis"]),
            default="sqlite",
            show_default=True,
            help="memory is per process: only for one worker; redis: many replicas.",
        ),
        click.option(
            "--redis-url",
            default="redis://127.0.0.1:6379/0",
            show_default=True,
            envvar="SOCDEF_REDIS_URL",
            help="The Redis of --limiter redis "
            "[env SOCDEF_REDIS_URL: keeps a password out of the process list].",
        ),
        click.option(
            "--limiter-fallback",
            type=click.FloatRange(0, 1),
            default=0.1,
            show_default=True,
            help="Share of each limit a process allows on its own "
            "while the limiter store is unreachable; 0 refuses with 503.",
        ),
        click.option(
            "--limiter-factory",
            default="",
            hidden=True,
            help="MODULE:CALLABLE building a custom limiter (docs/rate-limits.md).",
        ),
        click.option("--access-log/--no-access-log", default=False, show_default=True),
        click.option(
            "--server",
            type=click.Choice(["granian", "uvicorn"]),
            default="granian",
            show_default=True,
            help="The HTTP server that runs the worker app.",
        ),
        click.option(
            "--interface",
            type=click.Choice(["rsgi", "asgi"]),
            default="rsgi",
            show_default=True,
            help="granian's interface to the worker app (uvicorn "
            "always runs it over ASGI); the answers are the same, RSGI is cheaper.",
        ),
        click.option(
            "--limit-scale",
            type=click.FloatRange(min=0, min_open=True),
            default=1.0,
            show_default=True,
            help="Multiply every tier's request limits (internal deployments).",
        ),
        click.option(
            "--key-cache-ttl",
            type=click.FloatRange(min=0),
            default=5.0,
            show_default=True,
            help="Seconds a process trusts a key lookup: the bound on how long a key revoked "
            "elsewhere (another process or replica) still answers.",
        ),
        click.option(
            "--edge",
            type=click.Choice(["none", "nginx"]),
            default="none",
            show_default=True,
            help="nginx: answer with X-Accel-Redirect and let nginx in front send the bodies "
            "(deploy/nginx/socdef-edge.conf.j2, docs/deploy.md).",
        ),
        click.option(
            "--uds",
            default="",
            metavar="PATH",
            help="Listen on this Unix domain socket (mode 0660, removed on exit) instead of "
            "--host/--port. --edge nginx listens on DATA_DIR/worker.sock unless --uds, --host "
            "or --port is given (nginx on another host: give --host and --port).",
        ),
        click.option(
            "--answers-dir",
            default="",
            help="With --edge nginx: where composed answers are written for nginx to send "
            "[default: DATA_DIR/answers].",
        ),
        click.option(
            "--redirect-large",
            type=click.FloatRange(min=0),
            default=0,
            show_default=True,
            metavar="MB",
            help="s3:// bucket: answer a download of at least MB megabytes with a 307 to a "
            "presigned URL of the object (0: never).",
        ),
        click.option(
            "--redirect-seconds",
            type=click.IntRange(1, 604800),
            default=60,
            show_default=True,
            help="How long a presigned URL of --redirect-large stays valid.",
        ),
        click.option(
            "--public-key",
            default="",
            envvar="SOCDEF_PUBLIC_KEY",
            help="The publisher's minisign public key (a .pub file or its RW… line): follow "
            "only a pointer signed by it and not older than the last one accepted "
            "(docs/publish.md) [env SOCDEF_PUBLIC_KEY].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return with_database(func)


@cli.command()
@with_settings
@serve_options
def serve(settings: Settings, **options: Any) -> None:
    """Run the worker (granian, or uvicorn with --server uvicorn) in the foreground."""
    private_data_dir(settings)
    if options["uds"] and _given("host", "port"):
        raise click.UsageError("--uds replaces --host and --port: give one or the other")
    if options["edge"] == "nginx" and not options["uds"] and not _given("host", "port"):
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        options["uds"] = str(settings.data_dir / EDGE_SOCKET)  # nginx on this host
    runtime.run_server(settings, **options)


EDGE_SOCKET = "worker.sock"


def _given(*names: str) -> bool:
    """Whether any of these options of the running command was given (command line or env)."""
    ctx = click.get_current_context()
    return any(
        ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
        for name in names
    )


@contextmanager
def key_database(settings: Settings) -> Iterator[None]:
    """Turn what the key and account stores refuse (a database sqlite cannot read, a value
    they reject, a data dir that cannot be written) into one line naming the file."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise SocdefError(
            f"the key database {settings.keys_db} is unreadable ({exc}); restore it from a "
            "backup or move it away to start a new one"
        ) from None
    except (KeyStoreError, AccountError) as exc:
        raise SocdefError(str(exc)) from exc
    except OSError as exc:
        raise os_failure(f"opening the key database {settings.keys_db}", exc) from exc


@cli.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@with_settings
@with_database
@click.option("--user", required=True, help="Owner's e-mail address.")
@click.option("--tier", type=click.Choice(TIER_NAMES), default="free", show_default=True)
@click.option("--name", help="A label for the key (at most 100 characters).")
@click.option("--expires-in-days", type=click.IntRange(1, 365))
def keys_create(
    settings: Settings, user: str, tier: str, name: str | None, expires_in_days: int | None
) -> None:
    """Create a key and print it once: it cannot be shown again."""
    private_data_dir(settings)
    with key_database(settings):
        key, record = runtime.key_store(settings).create(
            user, tier, name=name, expires_in_days=expires_in_days
        )
    click.echo(f"API key: {key}")
    click.echo(f"id: {record.id}  tier: {record.tier}  scopes: {' '.join(record.scopes)}")


@keys.command("list")
@with_settings
@with_database
@click.option("--user", help="Only this owner's keys.")
def keys_list(settings: Settings, user: str | None) -> None:
    """List keys (previews only; full keys are never stored)."""
    private_data_dir(settings)
    with key_database(settings):
        found = runtime.key_store(settings).list(user)
    for k in found:
        status = (
            "revoked"
            if k.revoked_at
            else ("expired" if k.expires_at and k.expires_at <= time.time() else "active")
        )
        click.echo(f"{k.id}  {k.preview:<14} {k.tier:<10} {status:<8} {k.user}  {k.name or ''}")


@keys.command("revoke")
@with_settings
@with_database
@click.argument("key_id")
@click.option("--reason", default="", help="Why the key is revoked (kept with the record).")
def keys_revoke(settings: Settings, key_id: str, reason: str) -> None:
    """Revoke a key at once."""
    private_data_dir(settings)
    with key_database(settings):
        revoked = runtime.key_store(settings).revoke(key_id, reason=reason)
    if revoked is None:
        raise click.ClickException(f"no key with id {key_id}")
    click.echo(f"revoked {key_id}")


@keys.command("signing-init")
@with_settings
@click.option("--force", is_flag=True, help="Replace an existing signing key.")
def keys_signing_init(settings: Settings, force: bool) -> None:
    """Create the key that signs published builds (minisign Ed25519; kept 0600, never
    published) [path: env SOCDEF_SIGNING_KEY; default DATA_DIR/signing.key]."""
    private_data_dir(settings)
    secret, public, key = runtime.signing_init(settings, force=force)
    click.echo(f"signing key: {secret} (keep it secret; back it up offline)")
    click.echo(f"public key:  {public} (key id {key.public.key_id_hex})")
    click.echo(f"minisign -P {key.public.encoded()}")


@cli.command()
@click.argument("target")
@with_settings
@click.option(
    "--public-key",
    help="The publisher's public key: a .pub file or its RW… line [default: DATA_DIR/signing.pub].",
)
@click.option(
    "--build-id",
    help="The build to verify [default: the one the signed pointer names; a build named here "
    "is checked without the pointer].",
)
@click.option("--endpoint-url", default="", help="S3-compatible endpoint for s3:// targets.")
@click.option(
    "--state",
    type=click.Path(dir_okay=False),
    help="Where the last pointer accepted from each target is kept; an older one is refused "
    "[default: DATA_DIR/verified-pointers.json].",
)
def verify(
    settings: Settings,
    target: str,
    public_key: str | None,
    build_id: str | None,
    endpoint_url: str,
    state: str | None,
) -> None:
    """Check a published build (a folder, s3://… or its https:// origin): the pointer's
    signature and that it does not go back, the manifest's signature, every SHA256SUMS, and
    every object's size and SHA-256."""
    key = public_key or str(settings.signing_key_file.with_suffix(".pub"))
    report = runtime.run_verify(
        target,
        key,
        build_id=build_id,
        endpoint_url=endpoint_url or settings.s3_endpoint,
        state=Path(state) if state else settings.data_dir / "verified-pointers.json",
    )
    pointer = "" if report.generation is None else f"; pointer generation {report.generation}"
    click.echo(
        f"verified {report.build_id}: signed by {report.key_id}; {report.objects} objects "
        f"({report.bytes / 1e6:.1f} MB) and {report.sums} SHA256SUMS files match{pointer}"
    )


@cli.group()
def session() -> None:
    """Session tokens for the key-management API (local use)."""


@session.command("create")
@with_settings
@click.option("--user", required=True, help="The account (session subject), e.g. an e-mail.")
@click.option(
    "--ttl",
    type=click.IntRange(60, 30 * 86400),
    default=3600,
    show_default=True,
    help="Seconds until the token expires.",
)
def session_create(settings: Settings, user: str, ttl: int) -> None:
    """Print a signed session token to send as the sb-access-token cookie."""
    private_data_dir(settings)
    with key_database(settings):
        token = runtime.mint_session(settings, user, ttl)
    click.echo(token)


@cli.group()
def users() -> None:
    """Accounts and their tiers."""


@users.command("set-tier")
@with_settings
@with_database
@click.argument("user")
@click.argument("tier", type=click.Choice(TIER_NAMES))
def users_set_tier(settings: Settings, user: str, tier: str) -> None:
    """Set USER's tier; keys the user creates through the API get it."""
    private_data_dir(settings)
    with key_database(settings):
        runtime.set_tier(settings, user, tier)
    click.echo(f"{user}: {tier}")


@cli.command()
@with_settings
@serve_options
def demo(settings: Settings, **options: Any) -> None:
    """Ingest the bundled sample, build, publish, create a demo key and serve."""
    private_data_dir(settings)
    key = runtime.prepare_demo(settings, echo=click.echo)
    click.echo(f"API key: {key}")

    def curl(base: str) -> None:  # once the server has bound its port (``--port 0`` too)
        click.echo(f'curl -H "Authorization: Bearer {key}" "{base}/api/v1/iocs?limit=5"')

    sys.stdout.flush()
    runtime.run_server(settings, **options, then=curl)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="socdef", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # SocdefError is one: an expected failure, one line
        if isinstance(exc, SocdefError) and os.environ.get("SOCDEF_DEBUG"):
            raise
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
