"""Worker settings and the app factory.

The CLI builds a :class:`WorkerConfig` and passes it to the server process through
``SOCDEF_*`` environment variables (so several server processes share one configuration);
:func:`app_from_env` is the factory each process calls.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from worker.access.keys import load_or_create_secret
from worker.access.session import cookie_authenticator
from worker.access.stores import check_session_secret, open_accounts, open_keys, open_usage
from worker.app import App, RedactingFilter
from worker.buckets.remote import open_bucket
from worker.buckets.storage import BuildSource, LocalBucket
from worker.handoff import Handoff
from worker.limits.fallback import FallbackLimiter
from worker.limits.windows import Limiter, MemoryLimiter, SQLiteLimiter

if TYPE_CHECKING:
    from worker.buckets.trust import PointerTrust

LIMITERS = ("sqlite", "memory", "redis")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    data_dir: str
    bucket: str
    public_url: str = ""
    source_name: str = "socdef"
    limiter: str = "sqlite"
    key_cache_ttl: float = 5.0
    pointer_ttl: float = 2.0
    limit_scale: float = 1.0
    redis_url: str = "redis://127.0.0.1:6379/0"  # the store of the "redis" limiter
    limiter_fallback: float = 0.1  # share of each limit while the store is down; 0 = fail closed
    limiter_factory: str = ""  # "module:callable" building a custom Limiter from this config
    cache_mb: float = 256.0  # byte cache of a remote bucket (s3://…, https://…)
    s3_endpoint: str = ""  # S3-compatible endpoint ("" = AWS_ENDPOINT_URL(_S3) or AWS)
    jwt_secret: str = ""  # the session signing secret (a Supabase project's JWT secret); "" = local
    jwt_audience: str = ""  # required "aud" of session tokens ("" = not checked)
    session_cookie: str = "sb-access-token"
    allowed_origins: str = ""  # comma-separated origins allowed to change keys with a session
    access_log: bool = False  # one INFO line per request on the "socdef.access" logger
    edge: str = "none"  # "nginx": bodies go out through nginx's X-Accel-Redirect (worker.handoff)
    answers_dir: str = ""  # where composed answers are written for nginx ("" = DATA_DIR/answers)
    redirect_large_mb: float = 0.0  # S3 bucket: 307 to a presigned URL from this size; 0 = never
    redirect_seconds: float = 60.0  # how long a presigned URL is valid
    db: str = ""  # keys, accounts and usage: "" = SQLite in data_dir, or a postgresql:// URL
    secret_file: str = ""  # the keys' HMAC secret ("" = secret.key in data_dir)
    public_key: str = (
        ""  # the publisher's minisign key (.pub file or RW… line): signed pointers only
    )

    @classmethod
    def for_data_dir(cls, data_dir: str | os.PathLike[str], **overrides: object) -> WorkerConfig:
        base = Path(data_dir).resolve()
        values: dict[str, object] = {"data_dir": str(base), "bucket": str(base / "bucket")}
        values.update({k: v for k, v in overrides.items() if v is not None})
        # the keys are field names; each override is given with its field's type by the caller
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        return {f"SOCDEF_WORKER_{k.upper()}": str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerConfig:
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f"SOCDEF_WORKER_{f.name.upper()}")
            if raw is not None:
                values[f.name] = (
                    float(raw) if f.type == "float" else raw == "True" if f.type == "bool" else raw
                )
        # each value was converted above to its field's type (float, bool or str)
        return cls(**values)  # type: ignore[arg-type]


def make_limiter(config: WorkerConfig) -> Limiter:
    """The configured limiter; a shared store is wrapped in the fail-open policy unless the
    fallback fraction is 0 (then an unreachable store answers 503). See docs/rate-limits.md."""
    if config.limiter_factory:
        module, _, name = config.limiter_factory.partition(":")
        factory: Callable[[WorkerConfig], Limiter] = getattr(importlib.import_module(module), name)
        return factory(config)
    if config.limiter == "memory":
        return MemoryLimiter()
    if config.limiter == "sqlite":
        primary: Limiter = SQLiteLimiter(Path(config.data_dir) / "limits.sqlite")
    elif config.limiter == "redis":
        from worker.limits.redis_store import RedisLimiter  # redis-py only when it is used

        primary = RedisLimiter(config.redis_url)
    else:
        raise ValueError(f"unknown limiter {config.limiter!r}; choose one of {', '.join(LIMITERS)}")
    if config.limiter_fallback <= 0:
        return primary
    return FallbackLimiter(primary, fraction=config.limiter_fallback)


def session_secret(config: WorkerConfig) -> bytes:
    """The HS256 secret for session tokens: configured, or a local one in the data folder."""
    if config.jwt_secret:
        return config.jwt_secret.encode()
    return load_or_create_secret(Path(config.data_dir) / "session.key")


EDGES = ("none", "nginx")
ACCEL_PREFIX = "/_socdef/"  # the internal locations of deploy/nginx/socdef-edge.conf.j2


def make_handoff(config: WorkerConfig, bucket: object) -> Handoff:
    """Who sends the bodies: the worker itself (the default), nginx, or S3 for large ones."""
    if config.edge not in EDGES:
        raise ValueError(f"unknown edge {config.edge!r}; choose one of {', '.join(EDGES)}")
    inner = getattr(bucket, "inner", bucket)  # a remote bucket sits behind its byte cache
    presigner = getattr(inner, "presign", None)
    if config.redirect_large_mb > 0 and presigner is None:
        raise ValueError("redirects to presigned URLs need an s3:// bucket")
    answers = Path(config.answers_dir or Path(config.data_dir) / "answers")
    return Handoff(
        prefix=ACCEL_PREFIX if config.edge == "nginx" else "",
        answers=answers,
        objects=isinstance(bucket, LocalBucket),
        presign=presigner if config.redirect_large_mb > 0 else None,
        redirect_min=int(config.redirect_large_mb * (1 << 20)),
        redirect_seconds=int(config.redirect_seconds),
    )


POINTER_MEMORY = "pointer-accepted.json"  # in the data dir: the last signed pointer accepted


def pointer_trust(config: WorkerConfig) -> PointerTrust | None:
    """With a public key, the check every new pointer must pass (``worker.buckets.trust``):
    signed by that key and not older than the last one this data dir accepted."""
    if not config.public_key:
        return None
    from worker.buckets.minisign import SignatureError, parse_public
    from worker.buckets.trust import Memory, PointerTrust

    path = Path(config.public_key)
    try:
        public = parse_public(path.read_text() if path.is_file() else config.public_key)
    except (SignatureError, OSError) as exc:
        raise ValueError(f"the public key {config.public_key}: {exc}") from None
    memory = Memory(Path(config.data_dir) / POINTER_MEMORY, config.bucket)
    return PointerTrust(public, memory)


def create_app(config: WorkerConfig) -> App:
    data = Path(config.data_dir)
    data.mkdir(mode=0o700, parents=True, exist_ok=True)  # keys, secrets and usage: owner-only
    secret = load_or_create_secret(config.secret_file or data / "secret.key")
    keys = open_keys(config.db, data, secret, cache_ttl=config.key_cache_ttl)
    bucket = open_bucket(
        config.bucket, endpoint=config.s3_endpoint, cache_bytes=int(config.cache_mb * (1 << 20))
    )
    handoff = make_handoff(config, bucket)
    builds = BuildSource(bucket, pointer_ttl=config.pointer_ttl, trust=pointer_trust(config))
    builds.preload()  # every worker holds the build before the pointer can break
    signing = session_secret(config)
    check_session_secret(keys, signing)
    sessions = cookie_authenticator(
        signing, cookie=config.session_cookie, audience=config.jwt_audience or None
    )
    return App(
        session_auth=sessions,
        accounts=open_accounts(config.db, data),
        usage=open_usage(config.db, data),
        allowed_origins=tuple(o.strip() for o in config.allowed_origins.split(",") if o.strip()),
        keys=keys,
        limiter=make_limiter(config),
        builds=builds,
        public_url=config.public_url or None,
        source_name=config.source_name,
        limit_scale=config.limit_scale,
        handoff=handoff,
    )


def install_log_redaction() -> None:
    """Attach the ``api_key=`` redaction to every handler of the root and server loggers."""
    redacting = RedactingFilter()
    for name in (
        "",
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "_granian",
        "granian.access",
        "socdef",
    ):
        logger = logging.getLogger(name)
        logger.addFilter(redacting)
        for handler in logger.handlers:
            handler.addFilter(redacting)


def setup_logging(access_log: bool) -> None:
    """INFO to stderr (unless the process already has handlers), the access log on or off."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("socdef.access").setLevel(logging.INFO if access_log else logging.WARNING)


def app_from_env() -> App:
    """The app of one server process; granian's worker processes start afresh, so logging
    is set up here too, from the same configuration."""
    config = WorkerConfig.from_env(os.environ)
    setup_logging(config.access_log)
    install_log_redaction()
    return create_app(config)
