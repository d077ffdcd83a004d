"""Settings from ``config/bridge.toml``, checked against a schema at start-up.

Secrets never live in the file: a key names the environment variable (``*_env``) or file
(``*_file``) that holds them. Every problem is a :class:`bridge.errors.ConfigError` whose ``path``
is the dotted key path (``endpoints.epic.auth.client_id``), so an integrator knows where to look.

Relative paths in the file are resolved against the file's own directory.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

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


_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key"}
_SECRET_WORDS = ("token", "secret", "password", "apikey", "api-key", "auth", "session", "key")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")


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
    # domain.md: hourly recommended; an integrator may lower it to 60 s where the EHR allows it
    # (the bridge logs a warning below 15 minutes)
    poll_interval_seconds: Annotated[float, Field(ge=60)] = 3600.0
    subscribe: bool = True
    # sent with every request to this endpoint (e.g. ``Prefer = "handling=strict"``); never
    # credentials: those come from ``auth`` (``*_env`` / ``*_file``)
    headers: dict[str, str] = Field(default_factory=dict)
    # when a note for a referral is delivered, tell the referring clinician (a Communication)
    notify_requester: bool = True

    @field_validator("headers")
    @classmethod
    def _no_secrets(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            low = name.lower()
            if low in _SECRET_HEADERS or any(word in low for word in _SECRET_WORDS):
                raise ValueError(
                    f"{name}: looks like a credential; secrets stay in auth (*_env / *_file), "
                    "never in the file"
                )
            if not _HEADER_NAME.fullmatch(name) or "\n" in value or "\r" in value:
                raise ValueError(f"{name}: not a valid HTTP header")
        return v

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


class IdentityProviderSettings(_Section):
    """The OpenID Provider people sign in with (authorization code + PKCE); the bridge is its client.

    The ID token must carry ``role``, ``organization`` and, for peers, ``practitioner_id`` (the
    directory still decides who the person is). The client secret comes from the environment
    (``client_secret_env``) or a file (``client_secret_file``); neither makes a public client.
    """

    issuer: str
    client_id: str
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    # where the provider sends the browser back: default {server.public_url}/inbox/signin/callback
    redirect_url: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "bridge"])
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0  # absolute lifetime of a session
    idle_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 30.0  # ended when unused this long
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    verify_tls: bool = True

    @field_validator("issuer", "redirect_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/") if v is not None else None

    @model_validator(mode="after")
    def _complete(self) -> IdentityProviderSettings:
        if "openid" not in self.scopes:
            raise ValueError("scopes: must include 'openid'")
        if self.client_secret_env and self.client_secret_file:
            raise ValueError("client_secret_file: give client_secret_env or client_secret_file, not both")
        return self


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


# the names integrators write instead of the two-letter code
_STATES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA",
    "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
    "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD", "massachusetts": "MA",
    "michigan": "MI", "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT",
    "nebraska": "NE", "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM",
    "new york": "NY", "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT",
    "virginia": "VA", "washington": "WA", "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY",
    "district of columbia": "DC",
}  # fmt: skip


class RulesSettings(_Section):
    # a folder of rule files (default.toml + <xx>.toml overlays); unset: the rules shipped in the package
    dir: str | None = None
    jurisdiction: str | None = None  # e.g. "TX"; overlays <dir>/<xx>.toml
    # a session starting (or a note written) longer ago than this is refused: a typo'd year, not
    # late documentation (billing windows look back 6-12 months at most)
    oldest_record_days: Annotated[int, Field(ge=1, le=36500)] = 366

    @field_validator("jurisdiction")
    @classmethod
    def _two_letters(cls, v: str | None) -> str | None:
        if v is None or (len(v) == 2 and v.isalpha()):
            return v
        code = _STATES.get(v.strip().lower())
        hint = f' (did you mean "{code}"?)' if code else ""
        raise ValueError(f"{v!r} is not a two-letter state code{hint}")


class AlertSettings(_Section):
    """Who is told, beside the supervisor's queue badge, when a note is held for a risk of harm."""

    # POSTed {"event": "note.held-for-risk", "submission_id", "organization", "rules", "at"}: ids
    # and rule names only, never note text or names
    risk_webhook_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    risk_webhook_token_env: str | None = None  # sent as "Authorization: Bearer <token>" when set
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 3.0


class Settings(_Section):
    organization: OrganizationSettings
    endpoints: dict[str, EndpointSettings] = Field(min_length=1)
    default_endpoint: str | None = None
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    api_auth: ApiAuthSettings = Field(default_factory=ApiAuthSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    identity_provider: IdentityProviderSettings | None = None  # people sign in here (else token form)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    base_dir: str = "."  # set by the loader: the config file's directory

    @model_validator(mode="before")
    @classmethod
    def _store_beside_config(cls, data: Any) -> Any:
        """A relative SQLite path resolves against the config file's folder, like every other path
        (not the folder ``serve`` happens to be started from)."""
        store = data.get("store") if isinstance(data, dict) else None
        if not isinstance(store, dict):
            return data
        url = store.get("url")
        prefix = "sqlite+aiosqlite:///"
        if isinstance(url, str) and url.startswith(prefix) and data.get("base_dir"):
            path = url.removeprefix(prefix)
            if path and path != ":memory:" and not path.startswith("file:") and not Path(path).is_absolute():
                data = {**data, "store": {**store, "url": prefix + str(Path(data["base_dir"]) / path)}}
        return data

    @model_validator(mode="after")
    def _default_endpoint(self) -> Settings:
        if self.default_endpoint is not None and self.default_endpoint not in self.endpoints:
            raise ValueError(f"default_endpoint: {self.default_endpoint!r} is not a configured endpoint")
        idp = self.identity_provider
        if idp is not None and idp.redirect_url is None and not self.server.public_url:
            raise ValueError(
                "identity_provider.redirect_url: required when server.public_url is not set"
                " (where the provider sends the browser back)"
            )
        return self

    def path(self, value: str) -> Path:
        """Resolve a path from the config file relative to that file."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def rules_dir(self) -> Path | None:
        """``[rules] dir`` resolved against the config file; None: the packaged rules."""
        return self.path(self.rules.dir) if self.rules.dir else None

    def secret(self, env: str, key_path: str) -> str:
        """Read a secret from the environment; missing is a ConfigError naming the key path."""
        value = os.environ.get(env)
        if not value:
            raise ConfigError(key_path, f"environment variable {env} is not set")
        return value


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The settings model that holds the key at ``loc`` (``("endpoints", "clinic", "timeout")``)."""
    model: Any = Settings
    entered = False  # the part after a dict or list field is its key or index, not a field
    for part in loc[:-1]:
        if entered:
            entered = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = field.annotation
        while get_origin(model) in (dict, list, Union, types.UnionType):  # X | None is X
            args = [a for a in get_args(model) if a is not type(None)]
            entered = get_origin(model) in (dict, list)
            model = args[-1]
            if entered:
                break
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    model = _model_at(loc)
    known = [k for k in model.model_fields if k != "base_dir"] if model else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _error_path(err: Any) -> tuple[str, str]:
    path = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    head, sep, rest = msg.partition(": ")
    if sep and head.replace("_", "").replace(".", "").isalnum() and " " not in head:
        path = f"{path}.{head}" if path else head
        msg = rest
    if err["type"] == "extra_forbidden":
        msg = "unknown key" + _did_you_mean(tuple(err["loc"]))
    elif err["type"] == "missing":
        msg = "required key is missing"
    return path or "(root)", msg


def settings_from_dict(data: dict[str, Any], *, source: str | None = None, base_dir: str = ".") -> Settings:
    """Check ``data`` against the schema; a :class:`ConfigError` lists every problem (``problems``)."""
    try:
        return Settings.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        problems = list(dict.fromkeys(_error_path(e) for e in exc.errors(include_url=False)))
        (path, reason), more = problems[0], problems[1:]
        raise ConfigError(path, reason, source=source, more=more) from None


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
