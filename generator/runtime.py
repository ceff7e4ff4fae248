"""Wiring between resolved settings and the stages: what each CLI command runs."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import sqlite3
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from generator.build import tree as build_stage
from generator.errors import CorruptFile, SocdefError, on_disk
from generator.extract import warninglists
from generator.publish import minisign
from generator.publish import upload as publish_stage
from generator.publish import verify as verify_stage
from generator.publish.minisign import SecretKey
from generator.settings import Settings
from generator.sources.catalog import SAMPLE_DIR, load_sources
from generator.sources.state import Backoff, SourceRow, source_rows
from generator.store import bucket as store_bucket
from generator.store import lifecycle
from generator.store.generations import Store
from worker.access.keys import KeyStore, load_or_create_secret
from worker.access.stores import open_accounts, open_keys
from worker.buckets.remote import open_bucket
from worker.buckets.storage import StorageError as BucketError
from worker.buckets.trust import Memory
from worker.config import WorkerConfig, make_handoff, pointer_trust, setup_logging
from worker.contract.layout import POINTER_KEY

if TYPE_CHECKING:
    from generator.ingest.pipeline import IngestReport

DEMO_USER = "demo@socdef.local"


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback ``(stage, done, total)`` drawn on stderr while the stage runs."""
    if not sys.stderr.isatty():
        yield lambda stage, done, total: None
        return
    bars = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update


def store_target(settings: Settings, dest: str | None = None) -> str | None:
    """Where the store's history lives: the publish destination (``dest``, else the bucket
    setting, else DATA_DIR/bucket); None for a bucket only a worker can read (https://)."""
    target = dest or settings.bucket or str(settings.bucket_dir)
    return None if target.startswith(("http://", "https://")) else target


def note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def sync_store(
    settings: Settings,
    *,
    fresh: bool = False,
    generation: str | None = None,
    force: bool = False,
) -> store_bucket.SyncResult:
    """Restore the store from the bucket when it is missing or older (``store_bucket.sync``);
    with ``force`` False, also refuse a store much smaller than the published one."""
    target = store_target(settings)
    if target is None:
        return store_bucket.SyncResult("none")
    store = Store(settings.store_dir)
    with on_disk("restoring the store from the bucket"):
        dest = publish_stage.open_destination(target, endpoint_url=settings.s3_endpoint)
        with progress_bar() as progress:
            result = store_bucket.sync(
                store, dest, fresh=fresh, generation=generation, progress=progress, note=note
            )
        if not force and store.exists():
            store_bucket.check_size(store, dest)
    return result


def sync_changes(settings: Settings) -> str | None:
    """Restore the published build's change state into the build folder when the folder has
    none as new (``changes.restore``): a lost build folder continues the change feed."""
    target = store_target(settings)
    if target is None:
        return None
    from generator.build import changes

    with on_disk("restoring the change feed from the bucket"):
        dest = publish_stage.open_destination(target, endpoint_url=settings.s3_endpoint)
        settings.build_dir.mkdir(parents=True, exist_ok=True)
        return changes.restore(settings.build_dir, dest, note=note)


def run_ingest(
    settings: Settings,
    *,
    offline: Path | None = None,
    sources: Path | None = None,
    shift_dates: bool = False,
    now: int | None = None,
    fresh: bool = False,
    generation: str | None = None,
) -> IngestReport:
    from generator.ingest import pipeline as ingest_stage  # extraction loads only when ingesting

    with on_disk("reading the sources file"):
        configured = load_sources(sources or settings.sources)
    fetch = ingest_stage.offline_reader(offline) if offline else _http_fetch(settings)
    sync_store(settings, fresh=fresh, generation=generation, force=True)
    with on_disk("ingesting into the store"), progress_bar() as progress:
        return ingest_stage.ingest(
            Store(settings.store_dir),
            configured,
            fetch,
            now=now if now is not None else int(time.time()),
            shift_dates=shift_dates,
            progress=progress,
            backoff=None if offline else Backoff(),
        )


def _http_fetch(settings: Settings) -> Callable[..., Any]:
    from generator.ingest.fetching import http_reader

    return http_reader(settings.allow_networks.split(","))


def run_sources(settings: Settings, *, sources: Path | None = None) -> list[SourceRow]:
    """Each configured source with its stored fetch state (for ``socdef sources``)."""
    with on_disk("reading the sources file and the store"):
        configured = load_sources(sources or settings.sources)
        state = Store(settings.store_dir).state()
    return source_rows(configured, state)


def run_build(
    settings: Settings,
    *,
    now: int | None = None,
    fresh: bool = False,
    generation: str | None = None,
    force: bool = False,
    init: bool = False,
) -> build_stage.BuildResult:
    """Build from the store, restored from the bucket first when it is missing or older; a
    store much smaller than the published one is refused unless ``force``."""
    sync_store(settings, fresh=fresh, generation=generation, force=force)
    store = Store(settings.store_dir)
    if init:
        with on_disk(f"creating the store in {settings.store_dir}"):
            store.init()
    elif not store.exists():
        raise SocdefError(
            f"no store in {settings.data_dir} (no {settings.store_dir / 'CURRENT'}): run "
            "`socdef ingest` first, check --data-dir, or pass --init to build an empty store"
        )
    sync_changes(settings)  # only once there is a store: a refused build creates nothing
    overrides = settings.overrides_file
    lists = warninglists.load(overrides) if overrides is not None else None
    expiry = lifecycle.expiry(settings.expiry)
    retractions = load_retractions(settings)
    sync_ledger(settings)
    ledger = load_ledger(settings)
    with on_disk("building"), progress_bar() as progress:
        result = build_stage.build(
            store,
            settings.build_dir,
            now=now,
            source_name=settings.source_name,
            progress=progress,
            lists=lists,
            expiry=expiry,
            retractions=retractions,
            ledger=ledger,
        )
    if result.ledger is not None:
        dumped = result.ledger.dump()
        with on_disk(f"writing {settings.ledger_file}"):
            _write_replacing(settings.ledger_file, json.dumps(dumped, separators=(",", ":")))
        beside = {"build_id": result.build_id, "ledger": dumped}  # for publish to keep
        with on_disk("writing the ledger beside the build"):
            _write_replacing(
                settings.build_dir / lifecycle.LEDGER_BESIDE_BUILD,
                json.dumps(beside, separators=(",", ":")),
            )
    return result


def _write_replacing(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def sync_ledger(settings: Settings) -> str | None:
    """Restore the published build's lifecycle ledger when this data folder has none as new
    (a new machine, a lost cache), so the build dates a change made after publication as the
    machine that published would (docs/lifecycle.md). The id of the build whose ledger was
    restored, or None."""
    target = store_target(settings)
    if target is None:
        return None
    from generator.build import changes

    with on_disk("restoring the lifecycle ledger from the bucket"):
        dest = publish_stage.open_destination(target, endpoint_url=settings.s3_endpoint)
        published = changes.published_build(dest)
        if published is None:
            return None
        build_id, generated_at = published
        latest = changes.latest_built(settings.build_dir)
        if settings.ledger_file.is_file() and latest is not None and latest[1] >= generated_at:
            return None  # this folder's own ledger is as new as the published build
        packed = dest.get(lifecycle.published_ledger_key(build_id))
        if packed is None:
            return None  # published before ledgers were kept beside builds
        try:
            raw_ledger = json.loads(gzip.decompress(packed))
        except (OSError, EOFError, ValueError) as exc:
            raise CorruptFile(
                f"the lifecycle ledger of build {build_id} in the bucket is damaged ({exc}); "
                f"remove {lifecycle.published_ledger_key(build_id)} to date changes by the "
                "rules alone"
            ) from None
        ledger = lifecycle.Ledger.parse(raw_ledger)
        _write_replacing(settings.ledger_file, json.dumps(ledger.dump(), separators=(",", ":")))
    note(f"restored the lifecycle ledger of build {build_id}")
    return build_id


def load_ledger(settings: Settings) -> lifecycle.Ledger:
    """What the previous build decided (an empty ledger before the first)."""
    path = settings.ledger_file
    if not path.is_file():
        return lifecycle.Ledger()
    with on_disk(f"reading {path}"):
        text = path.read_text("utf-8")
    try:
        raw = json.loads(text)
    except ValueError:
        raw = None
    return lifecycle.Ledger.parse(raw)


def load_retractions(settings: Settings) -> list[lifecycle.Retraction]:
    """The retractions file's entries (none when it does not exist)."""
    path = settings.retractions_file
    if not path.is_file():
        return []
    with on_disk(f"reading {path}"):
        text = path.read_text("utf-8")
    return lifecycle.parse_retractions(text, str(path))


def run_retract(
    settings: Settings, article: str, *, reason: str = "", at: int | None = None
) -> tuple[str, str, int]:
    """``socdef retract``: record that ``article`` (its URL or id) was retracted by its source.
    Answers (its id, its title, how many indicators only it and other retracted articles
    reported: those the next build withdraws)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    store = Store(settings.store_dir)
    articles = store.articles()
    entry = lifecycle.Retraction(
        " ".join(article.split()), int(time.time()) if at is None else at, " ".join(reason.split())
    )
    found = lifecycle.retracted_articles([entry], articles)
    if not found:
        raise SocdefError(f"no article {article!r} in the store (give its URL or its id)")
    (article_id,) = found
    row = articles.filter(pc.equal(articles["article_id"], article_id)).to_pylist()[0]
    entries = [*load_retractions(settings), entry]
    retracted = lifecycle.retracted_articles(entries, articles)
    sightings = store.sightings()
    mine = sightings.filter(pc.equal(sightings["article_id"], article_id))
    keys = set(zip(mine["type"].to_pylist(), mine["value"].to_pylist(), strict=True))
    others = sightings.filter(
        pc.invert(pc.is_in(sightings["article_id"], value_set=pa.array(list(retracted))))
    )
    alive = set(zip(others["type"].to_pylist(), others["value"].to_pylist(), strict=True))
    with on_disk(f"writing {settings.retractions_file}"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with open(settings.retractions_file, "a", encoding="utf-8") as fh:
            fh.write(entry.line())
    return article_id, row["title"], len(keys - alive)


def run_explain(settings: Settings, value: str, *, now: int | None = None) -> list[str]:
    """``socdef explain``: the story of each indicator of that value, as printed lines."""
    from generator.store import explain

    overrides = settings.overrides_file
    lists = warninglists.load(overrides) if overrides is not None else warninglists.bundled()
    with on_disk("reading the store"):
        stories = explain.explain(
            Store(settings.store_dir),
            value,
            lists,
            lifecycle.expiry(settings.expiry),
            now,
            load_retractions(settings),
        )
    return [explain.render(story) for story in stories]


def run_publish(
    settings: Settings,
    *,
    dest: str | None = None,
    build_id: str | None = None,
    endpoint_url: str | None = None,
    jobs: int = 8,
    with_store: bool = True,
    keep_stores: int = store_bucket.KEEP_STORES,
) -> publish_stage.PublishResult:
    """Publish the latest build; with ``with_store``, also the store's live generation to the
    same destination (its history: ``generator.store.bucket``)."""
    signer = publish_signer(settings)
    with on_disk("opening the publish target"):
        target = publish_stage.open_destination(
            dest or settings.bucket or settings.bucket_dir,
            endpoint_url=endpoint_url or settings.s3_endpoint,
        )
    store = Store(settings.store_dir)
    with on_disk("publishing"), progress_bar() as progress:
        return publish_stage.publish(
            settings.build_dir,
            target,
            build_id=build_id,
            keep=settings.keep_builds,
            jobs=jobs,
            progress=progress,
            store=store if with_store and store.exists() else None,
            keep_stores=keep_stores,
            taxii_grace=settings.taxii_grace,
            signer=signer,
        )


def publish_signer(settings: Settings) -> SecretKey | None:
    """The key publish signs with: the configured one (which must then exist), else the data
    folder's ``signing.key`` when there is one; None publishes unsigned."""
    path = settings.signing_key_file
    if not settings.signing_key and not path.exists():
        return None
    with on_disk("reading the signing key"):
        return minisign.read_secret(path)


def signing_init(settings: Settings, *, force: bool) -> tuple[Path, Path, SecretKey]:
    """A new signing key (0600) and its public key beside it (``.pub``)."""
    secret_path = settings.signing_key_file
    public_path = secret_path.with_suffix(".pub")
    with on_disk("writing the signing key"):
        return (
            secret_path,
            public_path,
            minisign.write_key_pair(secret_path, public_path, force=force),
        )


def run_verify(
    target: str,
    public_key: str,
    *,
    build_id: str | None = None,
    endpoint_url: str = "",
    state: Path | None = None,
) -> verify_stage.Report:
    """Verify ``target``; ``state`` remembers the last pointer accepted from each target."""
    memory = None if state is None else Memory(state, target)
    with on_disk("verifying"), progress_bar() as progress:
        return verify_stage.verify(
            target,
            verify_stage.load_public_key(public_key),
            build_id=build_id,
            endpoint=endpoint_url,
            progress=progress,
            memory=memory,
        )


def key_store(settings: Settings) -> KeyStore:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = load_or_create_secret(settings.secret_file)
    return open_keys(settings.db, settings.data_dir, secret)


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig.for_data_dir(
        settings.data_dir,
        public_url=settings.public_url,
        jwt_secret=settings.jwt_secret,
        db=settings.db,
        secret_file=str(settings.secret_file),
    )


def mint_session(settings: Settings, user: str, ttl: int) -> str:
    from worker.access.session import mint
    from worker.config import session_secret

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return mint(
        user.strip().lower(), session_secret(worker_config(settings)), now=time.time(), ttl=ttl
    )


def set_tier(settings: Settings, user: str, tier: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    open_accounts(settings.db, settings.data_dir).set_tier(user, tier)


def prepare_demo(settings: Settings, *, echo: Callable[[str], None]) -> str:
    """Ingest the bundled sample (dates shifted to now), build, publish; return a new key."""
    report = run_ingest(settings, offline=SAMPLE_DIR, shift_dates=True)
    echo(
        f"ingested {sum(s.items for s in report.sources)} articles from "
        f"{sum(1 for s in report.sources if s.status == 'ok')} sample feeds"
    )
    result = run_build(settings)
    echo(f"built {result.build_id}: {result.iocs} IOCs")
    run_publish(settings)
    key, _ = key_store(settings).create(DEMO_USER, "enterprise", name="demo")
    return key


SERVERS = ("granian", "uvicorn")
INTERFACES = ("rsgi", "asgi")  # granian's; uvicorn runs the app over ASGI


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    limiter: str,
    access_log: bool,
    limit_scale: float = 1.0,
    redis_url: str = "",
    limiter_fallback: float = 0.1,
    limiter_factory: str = "",
    server: str = "granian",
    interface: str = "rsgi",
    edge: str = "none",
    answers_dir: str = "",
    redirect_large: float = 0.0,
    redirect_seconds: int = 60,
    key_cache_ttl: float = 5.0,
    public_key: str = "",
    uds: str = "",
    then: Callable[[str], None] | None = None,
) -> None:
    """Serve the worker app with granian (Rust HTTP server, the default) or uvicorn.

    ``uds``: listen on that Unix domain socket instead of ``host:port`` (nginx in front on the
    same host: no TCP stack on the proxy hop). The socket file is ``0660`` and removed on exit.

    Both run the worker app made by ``worker.config:app_from_env``, which reads the settings
    from ``SOCDEF_WORKER_*`` variables and sets up logging in every worker process: uvicorn
    over ASGI, granian over RSGI (``worker.rsgi:rsgi_from_env``: the hot path directly, every
    other request through the same ASGI app; ``interface="asgi"`` runs the ASGI factory).
    """
    if server not in SERVERS:
        raise SocdefError(f"unknown server {server!r}; choose one of {', '.join(SERVERS)}")
    if interface not in INTERFACES:
        raise SocdefError(f"unknown interface {interface!r}; choose one of {', '.join(INTERFACES)}")
    with _refused_setting():  # a bad setting: one line before any worker starts
        config = WorkerConfig.for_data_dir(
            settings.data_dir,
            public_url=settings.public_url,
            jwt_secret=settings.jwt_secret,
            source_name=settings.source_name,
            limiter=limiter,
            limit_scale=limit_scale,
            bucket=settings.bucket or None,
            s3_endpoint=settings.s3_endpoint,
            redis_url=redis_url or None,
            limiter_fallback=limiter_fallback,
            limiter_factory=limiter_factory,
            access_log=access_log,
            edge=edge,
            answers_dir=answers_dir,
            redirect_large_mb=redirect_large,
            redirect_seconds=float(redirect_seconds),
            db=settings.db,
            secret_file=str(settings.secret_file),
            key_cache_ttl=key_cache_ttl,
            public_key=public_key,
        )
        pointer_trust(config)  # a public key the worker cannot read: one line, before it starts
        if limiter == "memory" and workers > 1 and not limiter_factory:
            raise SocdefError(
                "the memory limiter counts per process: use --limiter sqlite with more than one worker"
            )
        check_databases(
            Path(config.data_dir),
            limits=config.limiter == "sqlite" and not limiter_factory,
            keys=not config.db,
        )
        if config.db:
            check_shared_database(config)
        # a bad setting: one line, not a traceback from every worker (it reads nothing)
        make_handoff(config, open_bucket(config.bucket, endpoint=config.s3_endpoint))
    socket_path = prepare_socket(Path(uds), server) if uds else None
    if socket_path is None:
        check_address(host, port)
    os.environ.update(config.to_env())
    setup_logging(access_log)
    warn_without_build(config.bucket)
    if server == "uvicorn":
        import uvicorn

        common: dict[str, Any] = dict(
            factory=True, workers=workers, access_log=False, log_level="warning", lifespan="on"
        )
        if port == 0:  # bound here, so the port is known before uvicorn starts
            listener = socket.create_server((host, 0), family=_family(host))
            announce(host, listener.getsockname()[1], then)
            uvicorn.run("worker.config:app_from_env", fd=listener.fileno(), **common)
            return
        announce(host, port, then)
        uvicorn.run("worker.config:app_from_env", host=host, port=port, **common)
        return
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    rsgi = interface == "rsgi"
    reserved = _reserve_port(host) if port == 0 and socket_path is None else None
    if reserved is not None:
        port = reserved.getsockname()[1]
    where: dict[str, Any] = (
        dict(uds=socket_path, uds_permissions=SOCKET_MODE)
        if socket_path is not None
        else dict(address=host, port=port)
    )
    granian = Server(
        "worker.rsgi:rsgi_from_env" if rsgi else "worker.config:app_from_env",
        factory=True,
        **where,
        interface=Interfaces.RSGI if rsgi else Interfaces.ASGI,
        workers=workers,
        websockets=False,
        respawn_failed_workers=True,
        loop=Loops.uvloop if _has_uvloop() else Loops.auto,
        log_access=False,
        log_level=LogLevels.warning,
    )
    if socket_path is not None:
        granian.on_startup(lambda: announce_socket(socket_path))
    else:  # granian has bound the address by then
        granian.on_startup(lambda: announce(host, port, then))
    try:
        granian.serve()
    finally:
        if reserved is not None:
            reserved.close()
        if socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()


SOCKET_MODE = 0o660  # the worker's account and its group (nginx's workers) may connect


def prepare_socket(path: Path, server: str) -> Path:
    """The absolute path of ``--uds``, ready to bind: a socket file left by a worker that was
    killed is removed; a live one (another worker answers on it), or any other file there, is
    refused in one line, as is a path longer than a socket address holds."""
    if server != "granian":
        raise SocdefError("--uds needs --server granian")
    path = path.absolute()
    if len(os.fsencode(path)) > 107:  # sun_path holds 108 bytes with its NUL
        raise SocdefError(f"the socket path {path} is too long (at most 107 bytes)")
    if not path.parent.is_dir():
        raise SocdefError(f"cannot listen on unix:{path}: the folder {path.parent} does not exist")
    if path.is_symlink() or path.exists():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise SocdefError(f"cannot listen on unix:{path}: a file that is not a socket is there")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:  # nothing answers: left by a worker that did not stop cleanly
                path.unlink()
            else:
                raise SocdefError(
                    f"cannot listen on unix:{path}: another server answers there "
                    "(stop it, or choose another --uds)"
                )
    return path


def announce_socket(path: Path) -> None:
    """The line a supervisor or test reads once the worker listens on its Unix socket."""
    print(f"listening on unix:{path}", flush=True)


@contextmanager
def _refused_setting() -> Iterator[None]:
    """A worker setting the worker refuses (a ``ValueError`` or a bucket's ``StorageError``
    while reading the configuration) as a :class:`SocdefError` with the worker's message."""
    try:
        yield
    except SocdefError:
        raise
    except (ValueError, BucketError) as exc:
        raise SocdefError(str(exc)) from exc


def announce(host: str, port: int, then: Callable[[str], None] | None = None) -> None:
    """The line a supervisor or test reads to learn where the worker listens (``--port 0``);
    ``then`` gets the base URL once the port is known (the demo prints its ``curl`` line)."""
    shown = f"[{host}]" if ":" in host else host
    print(f"listening on http://{shown}:{port}", flush=True)
    if then is not None:
        then(f"http://{shown}:{port}")


def warn_without_build(bucket: str) -> None:
    """Say so on stdout when a folder bucket has no published build: every API answer would be
    503 until ``socdef publish`` runs. A remote bucket is not read here."""
    if "://" in bucket or (Path(bucket) / POINTER_KEY).is_file():
        return
    print(
        f"warning: no published build in {bucket}: the API answers 503 until "
        "`socdef build` and `socdef publish` have run",
        flush=True,
    )


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_address(host: str, port: int) -> None:
    """Refuse to start, in one line, when the address cannot be listened on (a port another
    server holds, a privileged port, an address not of this machine); the servers would end
    with a stack trace instead. Port 0 is always free (the server picks one)."""
    if port == 0:
        return
    try:
        with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise SocdefError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server may hold "
            "the port: choose another with --port, or --port 0 for a free one)"
        ) from exc


def _reserve_port(host: str) -> socket.socket:
    """A free port for ``--port 0``, held for the server's life.

    granian (2.x) binds one SO_REUSEPORT socket per worker on Linux and takes no file
    descriptor, so port 0 would give each worker a different port. This socket is bound with
    SO_REUSEPORT but never listens: the kernel hands it no connections, the port cannot be taken
    by another program, and granian's workers bind the same port next to it."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock


class CorruptDatabase(SocdefError, RuntimeError):
    """A database in the data folder is not usable SQLite."""


def check_shared_database(config: WorkerConfig) -> None:
    """Reach the shared database and check this replica's secrets against it, so a wrong URL
    or secret is one line here instead of a traceback from every worker process."""
    from worker.access.stores import check_session_secret
    from worker.config import session_secret

    Path(config.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = load_or_create_secret(config.secret_file or Path(config.data_dir) / "secret.key")
    keys = open_keys(config.db, Path(config.data_dir), secret)
    try:
        check_session_secret(keys, session_secret(config))
    finally:
        keys.close()


def check_databases(
    data_dir: Path, *, limits: bool = True, keys: bool = True, timeout: float = 5.0
) -> None:
    """Refuse to start, naming the file, when a database of the data folder is not usable SQLite.

    Every worker process opens them as it starts: a corrupt one would kill each worker with a
    traceback, and the server with them. The key and limiter databases are small and get
    SQLite's quick check; the usage log, which may be large, has its header and schema read.
    A missing database is fine (it is created).
    """
    names = [*(["keys.sqlite"] if keys else []), *(["limits.sqlite"] if limits else [])]
    names += ["usage.sqlite"] if keys else []
    for name in names:
        path = data_dir / name
        if not path.exists():
            continue
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
            try:
                if name == "usage.sqlite":
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                    problem = "ok"
                else:
                    problem = str(conn.execute("PRAGMA quick_check(1)").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc):  # busy, not broken: the workers wait for it themselves
                continue
            problem = str(exc)
        if problem != "ok":
            problem = " ".join(problem.split())  # one line
            raise CorruptDatabase(
                f"{path} is not a usable SQLite database ({problem}): restore "
                "it from a backup, or move it aside to start with an empty one"
            )


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True
