"""``bridge check`` against the real sandbox EHR, an unreachable port and a trimmed CapabilityStatement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy, on

from bridge.cli import main
from bridge.clients.probe import probe_endpoint
from bridge_dev.medplum import MedplumServer
from bridge_dev.sandbox import Sandbox, free_port
from bridge_dev.servers import FhirServer


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _levels(doc: dict[str, Any], endpoint: int = 0) -> dict[str, str]:
    return {c["check"]: c["level"] for c in doc["endpoints"][endpoint]["checks"]}


def test_endpoint_mode_on_the_sandbox_passes_with_warns(
    sandbox_ehr: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "--endpoint", sandbox_ehr.base_url, "--json")
    doc = json.loads(out)
    levels = _levels(doc)
    assert code == 0 and doc["ok"] is True
    assert (
        levels["reachable"] == levels["metadata"] == levels["write-notes"] == levels["write-sessions"] == "ok"
    )
    assert levels["referral-notifications"] == "warn"  # no Task topic seeded: polling


def test_unreachable_endpoint_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--endpoint", f"http://127.0.0.1:{free_port()}/fhir")
    assert code == 1
    assert "reachable" in out and "FAIL" in out and "unreachable: ConnectError" in out


def test_endpoint_must_be_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--endpoint", "ftp://ehr/fhir")
    assert code == 2 and "--endpoint" in err


def test_config_mode_probes_every_endpoint_and_names_bad_keys(
    sandbox_ehr: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f"""
[organization]
id = "harbor"
name = "Harbor"
identifier_system = "https://harbor.example.org/id"

[endpoints.clinic]
base_url = "{sandbox_ehr.base_url}"
poll_interval_seconds = 900

[endpoints.hospital]
base_url = "{sandbox_ehr.base_url}"
[endpoints.hospital.auth]
type = "smart"
client_id = "peer-bridge"
private_key_file = "keys/missing.pem"
"""
    )
    code, out, _ = _run(capsys, "--config", str(config))
    assert code == 1
    table = out.split("\n\n")[0].splitlines()[1:]  # the summary lines follow a blank line
    lines = [line.split(None, 3) for line in table]
    clinic = {cells[1]: cells[2] for cells in lines if cells[0] == "clinic"}
    hospital = [cells for cells in lines if cells[0] == "hospital"]
    assert clinic["config"] == clinic["write-notes"] == "ok" and "FAIL" not in clinic.values()
    assert hospital == [
        [
            "hospital",
            "config",
            "FAIL",
            "endpoints.hospital.auth.private_key_file: cannot read key file: No such file or directory",
        ]
    ]
    assert "polling every 15 minutes" in out
    assert out.rstrip().endswith("hospital (" + sandbox_ehr.base_url + "): FAIL - 1 fail, 0 warn")


def test_invalid_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[organization]\nid = "x"\nname = "x"\nidentifier_system = "https://x"\n[endpoints.a]\n'
    )
    code, _, err = _run(capsys, "--config", str(config))
    assert code == 2 and "endpoints.a.base_url" in err


async def test_trimmed_capabilities_say_what_is_not_sent(proxy: FaultProxy) -> None:
    def trim(statement: dict[str, Any]) -> dict[str, Any]:
        for res in statement["rest"][0]["resource"]:
            if res["type"] in ("Encounter", "DocumentReference"):
                res["interaction"] = [i for i in res["interaction"] if i["code"] != "create"]
        statement["rest"][0]["interaction"] = [{"code": "batch"}]  # lists interactions, not transaction
        return statement

    proxy.rewrite(on("GET", "/fhir/metadata"), trim)
    report = await probe_endpoint("trimmed", proxy.base_url)
    findings = {f.name: f for f in report.findings}
    assert report.failed and findings["write-notes"].level == "fail"
    assert findings["write-sessions"].level == "warn" and "period" in findings["write-sessions"].reason
    assert findings["transaction"].level == "warn"
    assert report.capabilities is not None and not report.capabilities.can_create("Encounter")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_untrusted_certificate_is_a_tls_fail(tmp_path: Path) -> None:
    import asyncio
    import ssl

    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        report = await probe_endpoint("tls", f"https://127.0.0.1:{port}/fhir")
    finally:
        server.close()
        await server.wait_closed()
    findings = {f.name: f for f in report.findings}
    assert report.failed and findings["tls"].level == "fail" and "certificate" in findings["tls"].reason


def test_endpoint_mode_exits_0_on_every_server_and_says_what_it_assumed(
    fhir_server: FhirServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12 (1): on Medplum (a statement listing no resources) check exited 1, with WARN/FAIL
    for Task search, Task update and transactions that the bridge then performed anyway."""
    code, out, _ = _run(capsys, "--endpoint", fhir_server.base_url, "--json")
    doc = json.loads(out)
    checks = {c["check"]: c for c in doc["endpoints"][0]["checks"]}
    assert code == 0 and doc["ok"] is True
    assert not [c for c in checks.values() if c["level"] == "fail"]
    # probed, not assumed: Task search, ServiceRequest read, transactions
    for name in ("receive-referrals", "read-referrals", "transaction"):
        assert checks[name]["level"] == "ok", checks[name]
    if fhir_server.kind == "medplum":
        assert "probed" in checks["transaction"]["reason"]
        # writes cannot be probed without writing: said to be assumed, and what happens if refused
        assert checks["write-sessions"]["level"] == "warn"
        assert "assumed" in checks["write-sessions"]["reason"]
        assert "the server knows Encounter" in checks["write-sessions"]["reason"]


def test_check_findings_match_what_the_bridge_then_does(
    medplum_ehr: MedplumServer, capsys: pytest.CaptureFixture[str]
) -> None:
    medplum_ehr.refuse(("POST", "transaction", 405), ("GET", "ServiceRequest", 403))
    try:
        code, out, _ = _run(capsys, "--endpoint", medplum_ehr.base_url, "--json")
    finally:
        medplum_ehr.refuse()
    checks = {c["check"]: c for c in json.loads(out)["endpoints"][0]["checks"]}
    assert code == 0
    assert (
        checks["transaction"]["level"] == "warn"
        and "ordered conditional writes" in checks["transaction"]["reason"]
    )
    assert "405" in checks["transaction"]["reason"]
    assert checks["read-referrals"]["level"] == "warn" and "403" in checks["read-referrals"]["reason"]
