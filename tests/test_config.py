from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import load_settings
from bridge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """
[organization]
id = "org-1"
name = "Org"
identifier_system = "https://org.example/id"

[endpoints.clinic]
base_url = "http://127.0.0.1:1/fhir"
"""


def test_shipped_config_loads() -> None:
    settings = load_settings(ROOT / "config" / "bridge.toml")
    assert settings.endpoints["clinic"].base_url.endswith("/fhir")
    assert settings.path(settings.rules.dir) == ROOT / "config" / "rules"


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ('[endpoints.clinic.auth]\ntype = "smart"\n', "endpoints.clinic.auth.client_id"),
        (
            '[endpoints.clinic.auth]\ntype = "smart"\nclient_id = "x"\n',
            "endpoints.clinic.auth.private_key_file",
        ),
        ("[endpoints.clinic.auth]\ncolour = 1\n", "endpoints.clinic.auth.colour"),
        ("[server]\nport = 70000\n", "server.port"),
        ('[store]\nurl = "mysql://x"\n', "store.url"),
        ('default_endpoint = "nope"\n', "default_endpoint"),
        ('[identity_provider]\nclient_id = "b"\n', "identity_provider.issuer"),
        ('[identity_provider]\nissuer = "idp.example"\nclient_id = "b"\n', "identity_provider.issuer"),
        ('[identity_provider]\nissuer = "https://idp.example"\n', "identity_provider.client_id"),
        (  # where the provider sends the browser back: redirect_url, or server.public_url
            '[identity_provider]\nissuer = "https://idp.example"\nclient_id = "b"\n',
            "identity_provider.redirect_url",
        ),
        (
            '[identity_provider]\nissuer = "https://i.example"\nclient_id = "b"\nredirect_url = "https://b.example/cb"\n'
            'scopes = ["profile"]\n',
            "identity_provider.scopes",
        ),
        (
            '[identity_provider]\nissuer = "https://i.example"\nclient_id = "b"\nredirect_url = "https://b.example/cb"\n'
            'client_secret_env = "A"\nclient_secret_file = "b"\n',
            "identity_provider.client_secret_file",
        ),
    ],
)
def test_schema_errors_name_the_key_path(tmp_path: Path, extra: str, path: str) -> None:
    # top-level keys must precede tables in TOML
    text = extra + MINIMAL if not extra.startswith("[") else MINIMAL + extra
    f = tmp_path / "bridge.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(f)
    assert info.value.path == path
    assert str(f) in str(info.value)


def test_missing_section_and_bad_toml(tmp_path: Path) -> None:
    f = tmp_path / "b.toml"
    f.write_text('[organization]\nid = "o"\nname = "n"\nidentifier_system = "https://x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(f)
    assert info.value.path == "endpoints"
    f.write_text("[[[")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.toml")


def test_toml_nested_past_the_parser_is_a_config_error(tmp_path: Path) -> None:
    f = tmp_path / "bridge.toml"
    f.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")  # was a RecursionError traceback
    with pytest.raises(ConfigError) as exc:
        load_settings(f)
    assert exc.value.path == "(file)" and "nested too deeply" in exc.value.reason


@pytest.mark.parametrize("name", ["Authorization", "X-Api-Key", "X-Auth-Token", "Cookie", "X-Client-Secret"])
def test_endpoint_headers_never_carry_credentials(tmp_path: Path, name: str) -> None:
    f = tmp_path / "bridge.toml"
    f.write_text(MINIMAL + f'[endpoints.clinic.headers]\n"{name}" = "abc"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(f)
    assert info.value.path.startswith("endpoints.clinic.headers") and "*_env" in info.value.reason
    assert name in f"{info.value.path} {info.value.reason}"


def test_endpoint_headers_and_a_60_second_poll_are_taken(tmp_path: Path) -> None:
    f = tmp_path / "bridge.toml"
    f.write_text(
        MINIMAL.replace("[endpoints.clinic]\n", "[endpoints.clinic]\npoll_interval_seconds = 60\n")
        + '[endpoints.clinic.headers]\nPrefer = "handling=strict"\n'
    )
    endpoint = load_settings(f).endpoints["clinic"]
    assert endpoint.headers == {"Prefer": "handling=strict"} and endpoint.poll_interval_seconds == 60
    f.write_text(MINIMAL.replace("[endpoints.clinic]\n", "[endpoints.clinic]\npoll_interval_seconds = 59\n"))
    with pytest.raises(ConfigError) as info:
        load_settings(f)
    assert info.value.path == "endpoints.clinic.poll_interval_seconds"
