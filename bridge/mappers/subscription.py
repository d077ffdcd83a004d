"""Subscriptions, both directions, pure: the Subscription the bridge asks an EHR for, and what a
rest-hook notification says.

- R4 Subscriptions Backport IG (topic-based, R4B): http://hl7.org/fhir/uv/subscriptions-backport/
  (``backport-subscription`` profile, filter criteria, payload content, heartbeat extensions;
  notifications are ``history`` Bundles whose first entry is the SubscriptionStatus Parameters)
- R4 criteria Subscription: https://hl7.org/fhir/R4/subscription.html (rest-hook; without a
  payload the server sends an empty POST, with one it PUTs the resource)

The bridge subscribes to the referral Tasks owned by the peer organization, asks for id-only
payloads (it fetches what it reads, through the minimum-necessary view) and for heartbeats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.errors import InputError

BP = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_PROFILE = f"{BP}/backport-subscription"
EXT_FILTER = f"{BP}/backport-filter-criteria"
EXT_CONTENT = f"{BP}/backport-payload-content"
EXT_HEARTBEAT = f"{BP}/backport-heartbeat-period"
REASON = "Peer Bridge: referrals owned by the peer organization"


@dataclass(frozen=True)
class RestHook:
    """Where the EHR posts notifications, and the token it sends back with each one."""

    endpoint: str
    token: str | None = None

    def channel(self) -> dict[str, Any]:
        channel: dict[str, Any] = {"type": "rest-hook", "endpoint": self.endpoint}
        if self.token:
            channel["header"] = [f"Authorization: Bearer {self.token}"]
        return channel


def task_criteria(owner_ref: str) -> str:
    """The referral Tasks assigned to the peer organization (``Organization/<id>`` at the EHR)."""
    return f"Task?owner={owner_ref}"


def backport_subscription(
    topic: str, criteria: str, hook: RestHook, *, heartbeat_seconds: int
) -> dict[str, Any]:
    """A topic-based Subscription (Backport IG) on ``topic`` filtered by ``criteria``: id-only
    payloads, heartbeats every ``heartbeat_seconds``."""
    return {
        "resourceType": "Subscription",
        "meta": {"profile": [BACKPORT_PROFILE]},
        "status": "requested",
        "reason": REASON,
        "criteria": topic,
        "_criteria": {"extension": [{"url": EXT_FILTER, "valueString": criteria}]},
        "channel": {
            **hook.channel(),
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": EXT_CONTENT, "valueCode": "id-only"}]},
            "extension": [{"url": EXT_HEARTBEAT, "valueUnsignedInt": heartbeat_seconds}],
        },
    }


def criteria_subscription(criteria: str, hook: RestHook) -> dict[str, Any]:
    """An R4 criteria Subscription without payload: each change is an empty ping, then the bridge
    polls (nothing in a ping to trust)."""
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": REASON,
        "criteria": criteria,
        "channel": hook.channel(),
    }


@dataclass(frozen=True)
class Notification:
    """A parsed rest-hook notification."""

    kind: str  # handshake | heartbeat | event-notification | query-status | ping (R4 criteria, empty)
    subscription: str | None = None  # the Subscription's reference as the server wrote it
    events_since_start: int | None = None
    event_numbers: tuple[int, ...] = ()
    focus: tuple[str, ...] = ()  # "Task/123" (relative or absolute)
    resources: tuple[Mapping[str, Any], ...] = ()  # full-resource payloads, or an R4 PUT body


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _reference(value: Any) -> str | None:
    ref = value.get("reference") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) else None


def parse_notification(body: Mapping[str, Any] | None) -> Notification:
    """Read a backport notification Bundle, an R4 criteria payload (a resource), or an empty ping."""
    if not body:
        return Notification(kind="ping")
    if body.get("resourceType") != "Bundle" or body.get("type") != "history":
        if isinstance(body.get("resourceType"), str) and body.get("id"):
            return Notification(
                kind="event-notification", resources=(body,), focus=(f"{body['resourceType']}/{body['id']}",)
            )
        raise InputError("notification", "not a Subscriptions Backport notification Bundle")
    entries = body.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError("notification.entry", "must be a list of objects")
    first = (entries[0].get("resource") if entries else None) or {}
    if not isinstance(first, dict) or first.get("resourceType") != "Parameters":
        raise InputError("notification.entry.0", "the first entry must be a Parameters (SubscriptionStatus)")
    kind: str | None = None
    subscription = None
    since: int | None = None
    numbers: list[int] = []
    focus: list[str] = []
    parameters = first.get("parameter") or []
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise InputError("notification.entry.0.parameter", "must be a list of objects")
    for p in parameters:
        name = p.get("name")
        if name == "type":
            kind = p.get("valueCode")
        elif name == "subscription":
            subscription = _reference(p.get("valueReference"))
        elif name in ("events-since-subscription-start", "eventsSinceSubscriptionStart"):
            since = _int(p.get("valueString", p.get("valueInteger64", p.get("valueUnsignedInt"))))
        elif name in ("notification-event", "notificationEvent"):
            parts = p.get("part") or []
            if not isinstance(parts, list) or not all(isinstance(x, dict) for x in parts):
                raise InputError("notification.entry.0.parameter.part", "must be a list of objects")
            for part in parts:
                pname = part.get("name")
                if pname in ("event-number", "eventNumber"):
                    n = _int(
                        part.get("valueString", part.get("valueInteger64", part.get("valueUnsignedInt")))
                    )
                    if n is not None:
                        numbers.append(n)
                elif pname == "focus":
                    ref = _reference(part.get("valueReference"))
                    if ref:
                        focus.append(ref)
    if not kind:
        raise InputError("notification.type", "missing")
    resources = tuple(e["resource"] for e in entries[1:] if isinstance(e.get("resource"), dict))
    return Notification(kind, subscription, since, tuple(numbers), tuple(focus), resources)
