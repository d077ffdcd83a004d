"""What an endpoint can do, read from its CapabilityStatement and SMART configuration (pure).

Sources: CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html), SMART configuration
(https://hl7.org/fhir/smart-app-launch/conformance.html), Subscriptions Backport topic canonicals
(https://hl7.org/fhir/uv/subscriptions-backport/). ``EndpointCapabilities.from_documents`` turns the
two documents into a small frozen summary; ``findings()`` says, in plain words, what the bridge will
and will not do at that endpoint. ``bridge check`` prints those findings and the exchange layer reads
the same ones, so the reason an Encounter is not sent is written in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge.errors import InvalidResourceError

Level = Literal["ok", "warn", "fail"]

BACKPORT_PROFILE = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
TOPIC_CANONICAL_EXT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"


@dataclass(frozen=True)
class Finding:
    """One line of the verdict: ``name`` (stable key), ``level`` and the reason in plain words."""

    name: str
    level: Level
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "level": self.level, "reason": self.reason}


@dataclass(frozen=True)
class ResourceSupport:
    type: str
    interactions: frozenset[str]
    conditional_create: bool = False
    conditional_update: bool = False
    versioned_update: bool = False  # honours If-Match
    search_params: frozenset[str] = frozenset()
    search_include: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SmartSupport:
    token_endpoint: str | None
    signing_algs: frozenset[str]
    grant_types: frozenset[str]
    auth_methods: frozenset[str]

    @property
    def backend_services(self) -> bool:
        """client_credentials with private_key_jwt, the way the bridge authenticates."""
        grants_ok = not self.grant_types or "client_credentials" in self.grant_types
        methods_ok = not self.auth_methods or "private_key_jwt" in self.auth_methods
        return self.token_endpoint is not None and grants_ok and methods_ok


@dataclass(frozen=True)
class EndpointCapabilities:
    fhir_version: str | None
    resources: Mapping[str, ResourceSupport] = field(default_factory=dict)
    system_interactions: frozenset[str] = frozenset()
    subscriptions_backport: bool = False
    subscription_topics: tuple[str, ...] = ()
    smart: SmartSupport | None = None
    software: str | None = None

    # --- questions the exchange layer asks ----------------------------------------------------------

    def can(self, resource_type: str, interaction: str) -> bool:
        support = self.resources.get(resource_type)
        return support is not None and interaction in support.interactions

    def can_create(self, resource_type: str) -> bool:
        return self.can(resource_type, "create")

    def can_read(self, resource_type: str) -> bool:
        return self.can(resource_type, "read")

    def can_search(self, resource_type: str) -> bool:
        return self.can(resource_type, "search-type")

    def can_update(self, resource_type: str) -> bool:
        return self.can(resource_type, "update")

    def can_conditional_create(self, resource_type: str) -> bool:
        support = self.resources.get(resource_type)
        return support is not None and support.conditional_create and "create" in support.interactions

    def supports_if_match(self, resource_type: str) -> bool:
        support = self.resources.get(resource_type)
        return support is not None and support.versioned_update

    @property
    def supports_transaction(self) -> bool:
        return "transaction" in self.system_interactions

    @property
    def supports_batch(self) -> bool:
        return "batch" in self.system_interactions

    @property
    def task_topic(self) -> str | None:
        """A subscription topic for Tasks, recognised by its canonical URL naming Task."""
        return next((t for t in self.subscription_topics if "task" in t.lower()), None)

    @property
    def fhir_r4(self) -> bool:
        return bool(self.fhir_version and self.fhir_version.startswith("4.0"))

    # --- the verdict ---------------------------------------------------------------------------------

    def findings(self, *, poll_interval_seconds: float = 3600.0) -> list[Finding]:
        """What the bridge can do here: a fail stops it working, a warn says how it works around."""
        out: list[Finding] = []

        def add(name: str, level: Level, reason: str) -> None:
            out.append(Finding(name, level, reason))

        if self.fhir_r4:
            add("fhir-version", "ok", f"FHIR {self.fhir_version}")
        else:
            add(
                "fhir-version",
                "warn",
                f"FHIR {self.fhir_version or 'version not stated'}; the bridge speaks R4",
            )

        if self.can_create("DocumentReference"):
            add("write-notes", "ok", "DocumentReference create")
        else:
            add("write-notes", "fail", "no DocumentReference create: no way to write peer notes here")

        if self.can_create("Encounter"):
            add("write-sessions", "ok", "Encounter create")
        else:
            add(
                "write-sessions",
                "warn",
                "no Encounter create: sessions are not sent as Encounters; each note carries the "
                "session period (DocumentReference.context.period)",
            )

        if self.can_create("Procedure"):
            add("write-services", "ok", "Procedure create")
        else:
            add(
                "write-services",
                "warn",
                "no Procedure create: services delivered are not sent; completed referrals carry no "
                "resulting-activity output",
            )

        if self.can_create("Provenance"):
            add("write-provenance", "ok", "Provenance create")
        else:
            add(
                "write-provenance",
                "warn",
                "no Provenance create: author and co-signer are sent only on the DocumentReference",
            )

        writes = [t for t in ("DocumentReference", "Encounter", "Procedure") if self.can_create(t)]
        unconditional = [t for t in writes if not self.can_conditional_create(t)]
        if not writes:
            pass  # write-notes already failed
        elif unconditional:
            add(
                "no-duplicates",
                "warn",
                f"no conditional create for {', '.join(unconditional)}: a create whose answer was "
                "lost is not resent automatically (it could duplicate)",
            )
        else:
            add("no-duplicates", "ok", "conditional create (If-None-Exist): retries never duplicate")

        if self.supports_transaction:
            add(
                "transaction", "ok", "transaction Bundles: a session and its note land together or not at all"
            )
        else:
            add(
                "transaction",
                "warn",
                "no transaction: resources are sent one request at a time, so a failure part-way "
                "leaves part of a submission sent (retried until complete)",
            )

        if self.can_search("Task") and self.can_read("ServiceRequest"):
            add("receive-referrals", "ok", "Task search and ServiceRequest read")
        else:
            missing = [
                what
                for what, ok in (
                    ("Task search", self.can_search("Task")),
                    ("ServiceRequest read", self.can_read("ServiceRequest")),
                )
                if not ok
            ]
            add(
                "receive-referrals",
                "warn",
                f"no {' or '.join(missing)}: clinical referrals cannot be received from this endpoint",
            )

        if not self.can_update("Task"):
            add(
                "update-referrals",
                "warn",
                "no Task update: accept/decline/complete stay in the bridge and are not written back",
            )
        elif not self.supports_if_match("Task"):
            add(
                "update-referrals",
                "warn",
                "Task update without versioning (If-Match): a change made in the clinic at the same "
                "moment could be overwritten",
            )
        else:
            add("update-referrals", "ok", "Task update with If-Match")

        every = _duration(poll_interval_seconds)
        if self.subscriptions_backport and self.task_topic:
            add("referral-notifications", "ok", f"Subscriptions Backport topic {self.task_topic}")
        elif self.subscriptions_backport:
            add(
                "referral-notifications",
                "warn",
                f"Subscriptions Backport but no subscription topic for Tasks: polling every {every}",
            )
        else:
            add(
                "referral-notifications",
                "warn",
                f"no Subscriptions Backport: polling for Tasks every {every}",
            )
        return out

    # --- construction --------------------------------------------------------------------------------

    @classmethod
    def from_documents(
        cls, statement: Mapping[str, Any], smart_configuration: Mapping[str, Any] | None = None
    ) -> EndpointCapabilities:
        """Summarise a CapabilityStatement (dict) and the SMART configuration (dict or None)."""
        if statement.get("resourceType") != "CapabilityStatement":
            raise InvalidResourceError("metadata: the answer is not a CapabilityStatement")
        rest = next((r for r in statement.get("rest", []) if r.get("mode") == "server"), None)
        resources: dict[str, ResourceSupport] = {}
        system: set[str] = set()
        backport = False
        topics: list[str] = []
        if rest is not None:
            system = {str(i.get("code")) for i in rest.get("interaction", [])}
            for res in rest.get("resource", []):
                rtype = res.get("type")
                if not isinstance(rtype, str):
                    continue
                resources[rtype] = ResourceSupport(
                    type=rtype,
                    interactions=frozenset(str(i.get("code")) for i in res.get("interaction", [])),
                    conditional_create=bool(res.get("conditionalCreate", False)),
                    conditional_update=bool(res.get("conditionalUpdate", False)),
                    versioned_update=res.get("versioning") == "versioned-update",
                    search_params=frozenset(str(p.get("name")) for p in res.get("searchParam", [])),
                    search_include=frozenset(str(i) for i in res.get("searchInclude", [])),
                )
                if rtype == "Subscription":
                    backport = BACKPORT_PROFILE in res.get("supportedProfile", [])
                    topics += [
                        str(e.get("valueCanonical"))
                        for e in res.get("extension", [])
                        if e.get("url") == TOPIC_CANONICAL_EXT and e.get("valueCanonical")
                    ]
            # topics may also be listed on rest itself
            topics += [
                str(e.get("valueCanonical"))
                for e in rest.get("extension", [])
                if e.get("url") == TOPIC_CANONICAL_EXT and e.get("valueCanonical")
            ]
        smart = None
        if smart_configuration:
            smart = SmartSupport(
                token_endpoint=smart_configuration.get("token_endpoint"),
                signing_algs=frozenset(
                    smart_configuration.get("token_endpoint_auth_signing_alg_values_supported", [])
                ),
                grant_types=frozenset(smart_configuration.get("grant_types_supported", [])),
                auth_methods=frozenset(smart_configuration.get("token_endpoint_auth_methods_supported", [])),
            )
        software = (
            statement.get("software", {}).get("name") if isinstance(statement.get("software"), dict) else None
        )
        return cls(
            fhir_version=statement.get("fhirVersion"),
            resources=resources,
            system_interactions=frozenset(system),
            subscriptions_backport=backport or bool(topics),
            subscription_topics=tuple(dict.fromkeys(topics)),
            smart=smart,
            software=software,
        )


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return "hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = int(seconds // 60)
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds:g} s"
