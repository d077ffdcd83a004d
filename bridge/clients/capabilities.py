"""What an endpoint can do, read from its CapabilityStatement and SMART configuration (pure).

Sources: CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html), SMART configuration
(https://hl7.org/fhir/smart-app-launch/conformance.html), Subscriptions Backport topic canonicals
(https://hl7.org/fhir/uv/subscriptions-backport/). ``EndpointCapabilities.from_documents`` turns the
two documents into a small frozen summary; ``findings()`` says, in plain words, what the bridge will
and will not do at that endpoint. ``bridge check`` prints those findings and the exchange layer reads
the same ones, so the reason an Encounter is not sent is written in one place.

A statement is evidence, not gospel: a resource or interaction it does not list is *unknown*, not
*absent* (many servers publish a minimal statement). Unknown interactions are assumed and tried;
what the server then refuses (405, 501, ``not-supported``, a 403 for one resource type) is learned
(:meth:`EndpointCapabilities.learn`) and routed around from then on; what ``bridge check`` probed
is recorded the same way. ``support()`` answers ``yes`` / ``no`` / ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bridge.errors import InvalidResourceError

Level = Literal["ok", "warn", "fail"]
Support = Literal["yes", "no", "unknown"]
TRANSACTION = "(system)"  # the resource type under which system interactions are learned

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
    # learned at run time or by a probe: (type, interaction) -> (works, why)
    learned: Mapping[tuple[str, str], tuple[bool, str]] = field(default_factory=dict)

    # --- evidence ------------------------------------------------------------------------------------

    def support(self, resource_type: str, interaction: str) -> Support:
        """``yes`` / ``no`` from what was learned, else from the statement; ``unknown`` when the
        statement does not list the resource (or, for system interactions, lists none)."""
        seen = self.learned.get((resource_type, interaction))
        if seen is not None:
            return "yes" if seen[0] else "no"
        if resource_type == TRANSACTION:
            if not self.system_interactions:
                return "unknown"
            return "yes" if interaction in self.system_interactions else "no"
        listed = self.resources.get(resource_type)
        if listed is None:
            return "unknown"
        return "yes" if interaction in listed.interactions else "no"

    def why_not(self, resource_type: str, interaction: str) -> str:
        """The reason an interaction is not used here (learned refusal, or the statement)."""
        seen = self.learned.get((resource_type, interaction))
        if seen is not None and not seen[0]:
            return seen[1]
        return f"the CapabilityStatement does not allow {resource_type} {interaction}"

    def learn(self, resource_type: str, interaction: str, works: bool, why: str) -> EndpointCapabilities:
        """A copy that knows ``interaction`` on ``resource_type`` works (or not), and why."""
        return replace(self, learned={**self.learned, (resource_type, interaction): (works, why)})

    def assumed(self, resource_type: str, interaction: str) -> bool:
        return self.support(resource_type, interaction) == "unknown"

    # --- questions the exchange layer asks ----------------------------------------------------------

    def can(self, resource_type: str, interaction: str) -> bool:
        """Whether the bridge uses the interaction: unless known not to work (unknown: try it)."""
        return self.support(resource_type, interaction) != "no"

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
        if support is None:
            return self.can_create(resource_type)  # not listed: assumed, like create itself
        return support.conditional_create and self.can_create(resource_type)

    def supports_if_match(self, resource_type: str) -> bool:
        support = self.resources.get(resource_type)
        return support.versioned_update if support is not None else self.can_update(resource_type)

    @property
    def supports_transaction(self) -> bool:
        return self.can(TRANSACTION, "transaction")

    @property
    def supports_batch(self) -> bool:
        return self.can(TRANSACTION, "batch")

    @property
    def task_topic(self) -> str | None:
        """A subscription topic for Tasks, recognised by its canonical URL naming Task."""
        return next((t for t in self.subscription_topics if "task" in t.lower()), None)

    @property
    def fhir_r4(self) -> bool:
        return bool(self.fhir_version and self.fhir_version.startswith("4.0"))

    # --- the verdict ---------------------------------------------------------------------------------

    def findings(self, *, poll_interval_seconds: float = 3600.0) -> list[Finding]:
        """What the bridge can do here: a fail stops it working, a warn says how it works around.
        What the statement does not list and no probe settled is said to be *assumed*: the bridge
        tries it and, if the server refuses, learns that and sends the rest."""
        out: list[Finding] = []

        def add(name: str, level: Level, reason: str) -> None:
            out.append(Finding(name, level, reason))

        def known(
            what: str, rtype: str, interaction: str, ok_text: str, no_level: Level, no_text: str
        ) -> None:
            state = self.support(rtype, interaction)
            if state == "yes":
                probed = self.learned.get((rtype, interaction))
                add(what, "ok", ok_text + (f" ({probed[1]})" if probed else ""))
            elif state == "no":
                add(what, no_level, f"{no_text} ({self.why_not(rtype, interaction)})")
            else:
                searched = self.learned.get((rtype, "search-type"))
                known_type = f"; the server knows {rtype} ({searched[1]})" if searched and searched[0] else ""
                add(
                    what,
                    "warn",
                    f"{ok_text}: not listed in the CapabilityStatement{known_type}; assumed (tried, "
                    f"and if the server refuses it: {no_text})",
                )

        if self.fhir_r4:
            add("fhir-version", "ok", f"FHIR {self.fhir_version}")
        else:
            add(
                "fhir-version",
                "warn",
                f"FHIR {self.fhir_version or 'version not stated'}; the bridge speaks R4",
            )

        known(
            "write-notes",
            "DocumentReference",
            "create",
            "DocumentReference create",
            "fail",
            "no way to write peer notes here",
        )
        known(
            "write-sessions",
            "Encounter",
            "create",
            "Encounter create",
            "warn",
            "sessions are not sent as Encounters; each note carries the session period "
            "(DocumentReference.context.period)",
        )
        known(
            "write-services",
            "Procedure",
            "create",
            "Procedure create",
            "warn",
            "services delivered are not sent; completed referrals carry no resulting-activity output",
        )
        known(
            "write-provenance",
            "Provenance",
            "create",
            "Provenance create",
            "warn",
            "author and co-signer are sent only on the DocumentReference",
        )

        writes = [t for t in ("DocumentReference", "Encounter", "Procedure") if self.can_create(t)]
        listed = [t for t in writes if t in self.resources]
        unconditional = [t for t in listed if not self.can_conditional_create(t)]
        if not writes:
            pass  # write-notes already failed
        elif unconditional:
            add(
                "no-duplicates",
                "warn",
                f"no conditional create for {', '.join(unconditional)}: a create whose answer was "
                "lost is not resent automatically (it could duplicate)",
            )
        elif len(listed) < len(writes):
            add(
                "no-duplicates",
                "warn",
                "conditional create (If-None-Exist) assumed for what the statement does not list",
            )
        else:
            add("no-duplicates", "ok", "conditional create (If-None-Exist): retries never duplicate")

        known(
            "transaction",
            TRANSACTION,
            "transaction",
            "transaction Bundles: a session and its note land together or not at all",
            "warn",
            "no transaction: resources are sent one at a time as ordered conditional writes; a "
            "failure part-way is retried until complete, and nothing is duplicated",
        )
        known(
            "receive-referrals",
            "Task",
            "search-type",
            "Task search",
            "warn",
            "clinical referrals cannot be received from this endpoint",
        )
        known(
            "read-referrals",
            "ServiceRequest",
            "read",
            "ServiceRequest read",
            "warn",
            "a referral's ServiceRequest cannot be read: referrals arrive without it",
        )
        if self.support("Task", "update") == "yes" and not self.supports_if_match("Task"):
            add(
                "update-referrals",
                "warn",
                "Task update without versioning (If-Match): a change made in the clinic at the same "
                "moment could be overwritten",
            )
        else:
            known(
                "update-referrals",
                "Task",
                "update",
                "Task update with If-Match",
                "warn",
                "the peer's accept/decline/complete cannot be written back: each is refused with this reason",
            )

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
                f"no Subscriptions Backport: polling for Tasks every {every} (and at once on a "
                "ping to /fhir/notify)",
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
