"""Item filters of the minimum-necessary view (``[minimum_necessary.items]``): which Task.input
entries, supportingInfo references and extensions of a referral reach a peer, and which
references the exchange may read for the peer view."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import RuleFileError
from bridge.roles import Policy, load_policy
from bridge.roles.privacy import reference_type

from .conftest import RULES_DIR

LOCAL = "https://peer-bridge.example.org/fhir/CodeSystem/referral-input"
GOAL_EXT = "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"


def task(*inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": "t-1",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": "ServiceRequest/sr-1"},
        "input": list(inputs),
    }


def sr(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "order", **elements}


def local(code: str, **value: Any) -> dict[str, Any]:
    return {"type": {"coding": [{"system": LOCAL, "code": code}], "text": "t"}, **value}


@pytest.mark.parametrize(
    ("item", "kept"),
    [
        (local("goal", valueString="Find work"), True),
        (local("program", valueString="Warm handoff"), True),
        (local("appointment", valueDateTime="2026-03-12T10:00:00-06:00"), True),
        # near misses: a code of ours that is not on the list, our codes in another system, no coding
        (local("labs", valueString="UDS positive"), False),
        (
            {"type": {"coding": [{"system": "http://other.example/cs", "code": "goal"}]}, "valueString": "x"},
            False,
        ),
        ({"type": {"text": "goal"}, "valueString": "x"}, False),
    ],
)
def test_task_inputs_are_kept_by_their_local_code(policy: Policy, item: dict[str, Any], kept: bool) -> None:
    view = policy.peer_view(task=task(item), service_request=sr())
    assert bool(view["task"].get("input")) is kept


def test_a_kept_input_loses_the_elements_not_allow_listed(policy: Policy) -> None:
    item = local("goal", valueString="Find work") | {
        "id": "in-1",
        "extension": [{"url": "u", "valueString": "F11"}],
    }
    [got] = policy.peer_view(task=task(item), service_request=sr())["task"]["input"]
    assert got == {"type": item["type"], "valueString": "Find work"}


@pytest.mark.parametrize(
    ("ref", "kept"),
    [
        ("Consent/c-1", True),
        ("Goal/g-1", True),
        ("Appointment/a-1", True),
        ("HealthcareService/hs-1", True),
        ("https://ehr.example/fhir/Goal/g-1/_history/2", True),
        ("Observation/lab-1", False),
        ("List/meds-1", False),
        ("DocumentReference/d-1", False),
        ("#contained-goal", False),
        ("Goal?identifier=x", False),
    ],
)
def test_supporting_info_keeps_only_peer_types_and_never_displays(
    policy: Policy, ref: str, kept: bool
) -> None:
    view = policy.peer_view(
        task=task(), service_request=sr(supportingInfo=[{"reference": ref, "display": "UDS positive"}])
    )
    got = view["service_request"].get("supportingInfo")
    assert got == ([{"reference": ref}] if kept else None)


def test_only_the_pertains_to_goal_extension_is_kept(policy: Policy) -> None:
    extensions = [
        {"url": GOAL_EXT, "valueReference": {"reference": "Goal/g-1", "display": "housing"}},
        {"url": "http://example.org/chart-flag", "valueString": "F11.20"},
    ]
    view = policy.peer_view(task=task(), service_request=sr(extension=extensions))
    assert view["service_request"]["extension"] == [
        {"url": GOAL_EXT, "valueReference": {"reference": "Goal/g-1"}}
    ]
    assert "F11" not in json.dumps(view)


def test_fetchable_references_are_what_the_view_kept_and_may_show(policy: Policy) -> None:
    view = policy.peer_view(
        task=task(
            local("goal", valueReference={"reference": "Goal/g-2"}),
            {"type": {"text": "labs"}, "valueReference": {"reference": "Observation/lab-1"}},
        ),
        service_request=sr(
            extension=[{"url": GOAL_EXT, "valueReference": {"reference": "Goal/g-1"}}],
            supportingInfo=[
                {"reference": "Observation/lab-1"},
                {"reference": "Appointment/a-1"},
                {"reference": "Goal/g-1"},
                {"reference": "Consent/c-1"},
            ],
        ),
    )
    # the lab result is neither kept nor fetched, from supportingInfo or from an input
    assert policy.fetchable_references(view) == ["Appointment/a-1", "Goal/g-1", "Consent/c-1", "Goal/g-2"]


def test_reference_type() -> None:
    assert reference_type("Goal/g-1") == "Goal"
    assert reference_type("http://x.example/fhir/Appointment/a.1/_history/3") == "Appointment"
    assert reference_type("#g") is None and reference_type(None) is None and reference_type("Goal") is None


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        (
            '[minimum_necessary.items."Task.output"]\ntype_codes = ["goal"]\n',
            "minimum_necessary.items.Task.output",
            "go together",
        ),
        (
            '[minimum_necessary.items."ServiceRequest.note"]\n',
            "minimum_necessary.items.ServiceRequest.note",
            "needs",
        ),
        (
            '[minimum_necessary.items."Observation.value"]\nurls = ["u"]\n',
            "minimum_necessary.items.Observation.value",
            "top-level element",
        ),
    ],
)
def test_broken_item_filters_name_the_key(tmp_path: Path, body: str, key: str, reason: str) -> None:
    shutil.copy(RULES_DIR / "default.toml", tmp_path / "default.toml")
    (tmp_path / "xx.toml").write_text('[meta]\ndescription = "t"\njurisdiction = "XX"\n' + body)
    with pytest.raises(RuleFileError) as info:
        load_policy(tmp_path, "XX")
    assert key in info.value.key and reason in info.value.reason
