"""The FHIR servers the exchange suites and ``bridge demo --ehr`` run against, under one face.

sekmet          the sandbox EHR (sekmet-fhir): transactions, _include, paging, subscriptions
sekmet-strict   the same, every request sent with ``Prefer: handling=strict`` (the endpoint's
                ``headers``): unknown search parameters are errors instead of being ignored
medplum         Medplum's FHIR router in memory (:mod:`bridge_dev.medplum`): a minimal
                CapabilityStatement, UUID version ids, no _include, no subscriptions, searches
                cut at 100 entries without paging links
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge_dev.medplum import MedplumServer
from bridge_dev.sandbox import Sandbox

KINDS = ("sekmet", "sekmet-strict", "medplum")
STRICT = {"Prefer": "handling=strict"}


@dataclass(frozen=True)
class FhirServer:
    """One running server as the tests see it: where it is, what the endpoint config adds, and
    what it can do that a test may rely on."""

    kind: str
    base_url: str
    endpoint: dict[str, Any] = field(default_factory=dict)  # keys for [endpoints.clinic]
    subscriptions: bool = True
    sandbox: Sandbox | None = None
    medplum: MedplumServer | None = None

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.endpoint.get("headers", {}))


def as_server(
    kind: str, *, sandbox: Sandbox | None = None, medplum: MedplumServer | None = None
) -> FhirServer:
    if kind == "medplum":
        assert medplum is not None
        return FhirServer(kind, medplum.base_url, subscriptions=False, medplum=medplum)
    assert sandbox is not None
    endpoint: dict[str, Any] = {"headers": dict(STRICT)} if kind == "sekmet-strict" else {}
    return FhirServer(kind, sandbox.base_url, endpoint, sandbox=sandbox)
