"""Settings from ``config/bridge.toml``, checked against a schema at start-up.

Secrets never live in the file: a key names the environment variable (``*_env``) or file
(``*_file``) that holds them. Every problem is a :class:`bridge.errors.ConfigError` whose ``path``
is the dotted key path (``endpoints.epic.auth.client_id``), so an integrator knows where to look.

Relative paths in the file are resolved against the file's own directory.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bridge.errors import ConfigError

DEFAULT_CONFIG = Path("config/bridge.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganizationSettings(_Section):
    """The peer organization the bridge acts for."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
    name: str
    identifier_system: str = Field(description="URI under which the bridge mints stable identifiers")
    npi: str | None = None

    @field_validator("identifier_system")
    @classmethod
    def _uri(cls, v: str) -> str:
        if not (v.startswith(("http://", "https://", "urn:oid:", "urn:uuid:"))):
            raise ValueError("must be an absolute URI")
        return v.rstrip("/")


class EndpointAuth(_Section):
    """How the bridge authenticates to one EHR endpoint."""

    type: Literal["none", "bearer", "smart"] = "none"
    token_env: str | None = None  # bearer: env var holding the token
    client_id: str | None = None  # smart
    private_key_file: str | None = None  # smart: PEM file (RSA for RS384, EC P-384 for ES384)
    private_key_env: str | None = None  # smart: env var holding the PEM
    kid: str | None = None
    alg: Literal["RS384", "ES384"] = "RS384"
    scope: str = (
        "system/Encounter.c system/Procedure.c system/DocumentReference.c system/Provenance.c"
        " system/Practitioner.c system/Task.rsu system/ServiceRequest.rs system/Patient.rs"
    )
    token_url: str | None = None  # else discovered from .well-known/smart-configuration

    @model_validator(mode="after")
    def _complete(self) -> EndpointAuth:
        if self.type == "bearer" and not self.token_env:
            raise ValueError("token_env: required when type = 'bearer'")
        if self.type == "smart":
            if not self.client_id:
                raise ValueError("client_id: required when type = 'smart'")
            if not (self.private_key_file or self.private_key_env):
                raise ValueError("private_key_file: required when type = 'smart' (or private_key_env)")
        return self


class EndpointSettings(_Section):
    """One clinic EHR's FHIR R4 endpoint."""

    base_url: str
    auth: EndpointAuth = Field(default_factory=EndpointAuth)
    patient_identifier_system: str | None = None  # which MRN system this EHR uses for patients
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0
    max_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    rate_limit_per_second: Annotated[float, Field(gt=0)] | None = None
    retry_max_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    breaker_failures: Annotated[int, Field(ge=1)] = 5
    breaker_reset_seconds: Annotated[float, Field(gt=0)] = 30.0
    verify_tls: bool = True
    poll_interval_seconds: Annotated[float, Field(ge=1)] = 3600.0
    subscribe: bool = True

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class ApiKey(_Section):
    name: str
    key_env: str  # env var holding the key
    role: Literal["peer-specialist", "peer-supervisor", "clinician", "care-coordinator", "integrator"]
    organization: str


class ApiAuthSettings(_Section):
    """How callers of the bridge's own API authenticate."""

    issuer: str | None = None
    audience: str | None = None
    jwks_file: str | None = None
    jwks_url: str | None = None
    api_keys: list[ApiKey] = Field(default_factory=list)
    peers_see_only_own: bool = False


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    public_url: str | None = None  # how EHRs reach the notification endpoint
    notification_token_env: str | None = None
    # behind a TLS-terminating proxy that sets X-Forwarded-Proto: trust that header (only then; a
    # client could send it itself when nothing in front of the bridge overwrites it)
    trust_forwarded_proto: bool = False


class StoreSettings(_Section):
    url: str = "sqlite+aiosqlite:///var/bridge.db"
    lease_seconds: Annotated[float, Field(gt=0)] = 60.0

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite+aiosqlite:/// or postgresql+asyncpg:// URL")
        return v


class OutboxSettings(_Section):
    max_attempts: Annotated[int, Field(ge=1)] = 12
    base_backoff_seconds: Annotated[float, Field(gt=0)] = 2.0
    max_backoff_seconds: Annotated[float, Field(gt=0)] = 3600.0
    workers: Annotated[int, Field(ge=1, le=256)] = 8
    # full R4B model validation of every Bundle at delivery: the mappers build correct JSON by
    # construction and the tests and golden files validate it; this checks each send again (about
    # 2 ms of CPU per note transaction, more than the rest of the bridge's work on it together)
    validate_fhir: bool = False


class RulesSettings(_Section):
    dir: str = "rules"
    jurisdiction: str | None = None  # e.g. "TX"; overlays config/rules/<dir>/<xx>.toml
    # a session starting (or a note written) longer ago than this is refused: a typo'd year, not
    # late documentation (billing windows look back 6-12 months at most)
    oldest_record_days: Annotated[int, Field(ge=1, le=36500)] = 366


class Settings(_Section):
    organization: OrganizationSettings
    endpoints: dict[str, EndpointSettings] = Field(min_length=1)
    default_endpoint: str | None = None
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    api_auth: ApiAuthSettings = Field(default_factory=ApiAuthSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    base_dir: str = "."  # set by the loader: the config file's directory

    @model_validator(mode="after")
    def _default_endpoint(self) -> Settings:
        if self.default_endpoint is not None and self.default_endpoint not in self.endpoints:
            raise ValueError(f"default_endpoint: {self.default_endpoint!r} is not a configured endpoint")
        return self

    def path(self, value: str) -> Path:
        """Resolve a path from the config file relative to that file."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def secret(self, env: str, key_path: str) -> str:
        """Read a secret from the environment; missing is a ConfigError naming the key path."""
        value = os.environ.get(env)
        if not value:
            raise ConfigError(key_path, f"environment variable {env} is not set")
        return value


def _error_path(err: Any) -> tuple[str, str]:
    path = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    head, sep, rest = msg.partition(": ")
    if sep and head.replace("_", "").isalnum() and " " not in head:
        path = f"{path}.{head}" if path else head
        msg = rest
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    return path or "(root)", msg


def settings_from_dict(data: dict[str, Any], *, source: str | None = None, base_dir: str = ".") -> Settings:
    try:
        return Settings.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        path, reason = _error_path(exc.errors(include_url=False)[0])
        raise ConfigError(path, reason, source=source) from None


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and check the config file (``$BRIDGE_CONFIG`` or ``config/bridge.toml``)."""
    file = Path(path or os.environ.get("BRIDGE_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read config file: {exc.strerror}", source=str(file)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("(file)", f"not valid TOML: {exc}", source=str(file)) from None
    except RecursionError:  # nested deeper than the parser recurses: was a traceback
        raise ConfigError("(file)", "not valid TOML: nested too deeply", source=str(file)) from None
    return settings_from_dict(data, source=str(file), base_dir=str(file.parent.resolve()))
