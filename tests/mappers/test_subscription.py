"""The Subscription mapper against golden JSON (compared parsed; regenerate with UPDATE_GOLDEN=1):
what the bridge asks an EHR for, and what it reads out of each kind of notification."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from bridge.errors import InputError
from bridge.mappers.subscription import (
    RestHook,
    backport_subscription,
    criteria_subscription,
    parse_notification,
    task_criteria,
)

GOLDEN = Path(__file__).parent / "golden" / "subscription"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
HOOK = RestHook("https://bridge.harbor.test/fhir/notify", "notify-token")
TOPIC = "http://example.org/fhir/SubscriptionTopic/referral-task"


def _status(kind: str, since: str, *events: tuple[str, str]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": "https://ehr.test/fhir/Subscription/s-1"}},
        {"name": "topic", "valueCanonical": TOPIC},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": since},
    ]
    for number, focus in events:
        parts = [{"name": "event-number", "valueString": number}]
        parts.append({"name": "focus", "valueReference": {"reference": focus}})
        parameters.append({"name": "notification-event", "part": parts})
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {"fullUrl": "urn:uuid:9b1c", "resource": {"resourceType": "Parameters", "parameter": parameters}}
        ],
    }


SUBSCRIPTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "backport": lambda: backport_subscription(
        TOPIC, task_criteria("Organization/org-peer"), HOOK, heartbeat_seconds=60
    ),
    "criteria": lambda: criteria_subscription(
        task_criteria("Organization/org-peer"), RestHook(HOOK.endpoint)
    ),
}

NOTIFICATIONS: dict[str, dict[str, Any] | None] = {
    "handshake": _status("handshake", "0"),
    "heartbeat": _status("heartbeat", "7"),
    "event": _status("event-notification", "9", ("8", "Task/t-8"), ("9", "https://ehr.test/fhir/Task/t-9")),
    "criteria_put": {"resourceType": "Task", "id": "t-3", "status": "requested"},
    "ping": None,
}


def _golden(name: str, produced: Any) -> Any:
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.write_text(json.dumps(produced, indent=2, ensure_ascii=False) + "\n")
    return json.loads(path.read_text())


@pytest.mark.parametrize("case", sorted(SUBSCRIPTIONS))
def test_subscription_matches_golden_and_validates(case: str) -> None:
    produced = SUBSCRIPTIONS[case]()
    assert json.loads(json.dumps(produced)) == _golden(f"subscription_{case}", produced)
    get_fhir_model_class("Subscription").model_validate(produced)
    assert SUBSCRIPTIONS[case]() == produced  # the same inputs, the same resource


@pytest.mark.parametrize("case", sorted(NOTIFICATIONS))
def test_notification_reads_as_golden(case: str) -> None:
    read = dataclasses.asdict(parse_notification(NOTIFICATIONS[case]))
    as_json = json.loads(json.dumps(read))  # tuples become lists, as in the golden file
    assert as_json == _golden(f"notification_{case}", as_json)


def test_unreadable_notifications_name_the_field() -> None:
    with pytest.raises(InputError) as exc:
        parse_notification(
            {
                "resourceType": "Bundle",
                "type": "history",
                "entry": [{"resource": {"resourceType": "Patient"}}],
            }
        )
    assert exc.value.field == "notification.entry.0"
    with pytest.raises(InputError) as exc:
        parse_notification({"resourceType": "Bundle", "type": "searchset"})
    assert exc.value.field == "notification"
    no_type = _status("heartbeat", "1")
    no_type["entry"][0]["resource"]["parameter"] = no_type["entry"][0]["resource"]["parameter"][:3]
    with pytest.raises(InputError) as exc:
        parse_notification(no_type)
    assert exc.value.field == "notification.type"
