"""Shared fixtures. The sandbox EHR is real (sekmet-fhir on a free loopback port)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge_dev.medplum import MedplumServer, medplum
from bridge_dev.sandbox import Sandbox, sandbox
from bridge_dev.servers import KINDS, FhirServer, as_server

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def sandbox_ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox EHR for the session. Tests must use unique identifiers (shared data)."""
    with sandbox(tmp_path_factory.mktemp("sekmet")) as ehr:
        yield ehr


@pytest.fixture
def fresh_ehr(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox EHR of the test's own, for tests that count or restart."""
    with sandbox(tmp_path / "sekmet") as ehr:
        yield ehr


@pytest.fixture(scope="session")
def medplum_ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MedplumServer]:
    """Medplum's FHIR router in memory (dev/medplum), one for the session; shared data."""
    with medplum(tmp_path_factory.mktemp("medplum")) as server:
        yield server


@pytest.fixture(scope="session", params=KINDS)
def fhir_server(request: pytest.FixtureRequest) -> FhirServer:
    """Each FHIR server the exchange suites run against (``bridge_dev.servers``)."""
    kind = str(request.param)
    if kind == "medplum":
        return as_server(kind, medplum=request.getfixturevalue("medplum_ehr"))
    return as_server(kind, sandbox=request.getfixturevalue("sandbox_ehr"))
