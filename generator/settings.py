"""One frozen settings object: defaults, then ``socdef.toml``, then ``SOCDEF_*``, then flags.

Stages never read the environment themselves; the CLI resolves settings once and passes them on.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from generator.errors import SocdefError


class SettingsError(SocdefError, ValueError):
    """The configuration file or an environment value is invalid."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("socdef-data")
    sources: Path | None = None
    public_url: str = ""
    source_name: str = "socdef"
    keep_builds: int = 3
    jwt_secret: str = ""  # session signing secret (e.g. a Supabase project's); "" = local
    bucket: str = ""  # where publish writes and serve reads: a folder, s3://…, https://… (serve)
    s3_endpoint: str = ""  # an S3-compatible endpoint URL ("" = the AWS environment's)
    allow_networks: str = ""  # CIDRs, comma-separated, that fetches may reach besides public IPs
    overrides: Path | None = None  # warninglist overrides (allow/block); default data_dir's
    expiry: str = ""  # lifetimes: "ipv4=14,url:high=365" (docs/lifecycle.md)
    db: str = ""  # keys, accounts and usage: "" = SQLite in data_dir, or a postgresql:// URL
    key_secret_file: str = ""  # the keys' HMAC secret, shared by replicas ("" = in data_dir)
    signing_key: str = ""  # the minisign secret key publish signs with ("" = data_dir/signing.key)
    taxii_grace: float = 40.0  # s from a publish until TAXII serves its objects (docs/taxii.md)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def build_dir(self) -> Path:
        return self.data_dir / "build"

    @property
    def bucket_dir(self) -> Path:
        return self.data_dir / "bucket"

    @property
    def overrides_file(self) -> Path | None:
        """The overrides file in use: the configured one, else ``overrides.txt`` in the data
        folder when it exists."""
        if self.overrides is not None:
            return self.overrides
        default = self.data_dir / "overrides.txt"
        return default if default.is_file() else None

    @property
    def retractions_file(self) -> Path:
        """The articles retracted by their sources (``socdef retract``; docs/lifecycle.md)."""
        return self.data_dir / "retractions.txt"

    @property
    def ledger_file(self) -> Path:
        """What the last build decided of each state change (``lifecycle.Ledger``)."""
        return self.data_dir / "lifecycle.json"

    @property
    def keys_db(self) -> Path:
        return self.data_dir / "keys.sqlite"

    @property
    def signing_key_file(self) -> Path:
        return Path(self.signing_key) if self.signing_key else self.data_dir / "signing.key"

    @property
    def secret_file(self) -> Path:
        return Path(self.key_secret_file) if self.key_secret_file else self.data_dir / "secret.key"


def _coerce(name: str, value: Any) -> Any:
    if name in ("data_dir", "sources", "overrides"):
        return Path(value)
    if name == "expiry" and isinstance(value, Mapping):  # a TOML table: {ipv4 = 14, …}
        return ",".join(f"{k}={v}" for k, v in value.items())
    if name == "keep_builds":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SettingsError(f"keep_builds must be an integer, not {value!r}") from None
    if name == "taxii_grace":
        try:
            grace = float(value)
        except (TypeError, ValueError):
            grace = -1.0
        if not 0 <= grace <= 86_400:
            raise SettingsError(f"taxii_grace must be 0 to 86400 seconds, not {value!r}")
        return grace
    if name == "allow_networks" and isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path = Path("socdef.toml"),
) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    names = {f.name for f in fields(Settings)}
    if config_file.is_file():
        try:
            table = tomllib.loads(config_file.read_text(encoding="utf-8")).get("socdef", {})
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config_file}: {exc}") from None
        unknown = sorted(set(table) - names)
        if unknown:
            raise SettingsError(f"{config_file}: unknown settings: {', '.join(unknown)}")
        values.update(table)
    for name in names:
        env = environ.get(f"SOCDEF_{name.upper()}")
        if env:
            values[name] = env
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})
