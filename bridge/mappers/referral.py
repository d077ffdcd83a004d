"""Referral <-> ServiceRequest + Task, both directions (HL7 SDOH Clinical Care).

- ServiceRequest: https://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition-SDOHCC-ServiceRequest.html
- Task: https://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition-SDOHCC-TaskForReferralManagement.html
- Business status: CDC BSeR https://hl7.org/fhir/us/bser/CodeSystem-TaskBusinessStatusCS.html

Inbound, only the minimum necessary reaches the peer view (contact details, a plain-language
reason, goals, programs, appointments); filtering clinical wording is the policy layer's job.
Where they are read from (the profiles give programs and appointments no element of their own):

- goals: ``Task.input`` typed ``goal`` (local code), and the Goal resources (``description.text``)
  that ServiceRequest ``pertainsToGoal`` / ``supportingInfo`` / a goal input reference;
- programs: ``Task.input`` typed ``program``, and referenced HealthcareService ``name``;
- appointments: ``Task.input`` typed ``appointment``, ``ServiceRequest.occurrence[x]`` (the time
  the service is requested for), and referenced Appointment ``start`` + ``description``;
- consent: the first ``ServiceRequest.supportingInfo`` pointing at a Consent.

:func:`task_with_status` produces the updated Task for accept / decline / start / complete. It does
not decide whether a transition is allowed: the exchange layer's state machine does.

One module per resource pair (house style), so both directions of ServiceRequest + Task live here
(~470 lines): inbound reading and outbound building share the code tables and reference helpers.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from bridge.domain import Referral, ReferralAppointment, ReferralContact, ReferralStatus
from bridge.errors import MappingError
from bridge.mappers.codes import (
    BSER_BUSINESS_STATUS,
    BSER_STATUS,
    DEFAULT_BUSINESS_STATUS,
    FULFILL,
    LOCAL_REFERRAL_INPUT,
    PEER_SUPPORT_REFERRAL,
    REQUEST_PRIORITY,
    RESULTING_ACTIVITY,
    SDOHCC_SERVICE_REQUEST,
    SDOHCC_TASK_REFERRAL,
    SDOHCC_TEMPORARY_CODES,
    SNOMED,
    STATUS_NEEDS_REASON,
    TASK_CODE,
)
from bridge.mappers.context import fhir_datetime, reference, validated
from bridge.mappers.narrative import task_lines, with_text

_INPUT_GOAL = "goal"
_INPUT_PROGRAM = "program"
_INPUT_APPOINTMENT = "appointment"
_OUTPUT_REF = re.compile(
    r"^((Procedure|Encounter|DocumentReference)/[A-Za-z0-9\-.]{1,64}|https?://\S+|urn:uuid:\S+)$"
)

# --- helpers -----------------------------------------------------------------------------------


def _ref_id(ref: Mapping[str, Any] | None, rtype: str) -> str | None:
    """The id in ``{rtype}/{id}`` (relative or absolute), else None."""
    if not ref or not isinstance(ref.get("reference"), str):
        return None
    match = re.search(rf"(?:^|/){rtype}/([A-Za-z0-9\-.]{{1,64}})(?:/_history/.*)?$", ref["reference"])
    return match.group(1) if match else None


def _datetime(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise MappingError(field, "not a FHIR dateTime with time and timezone") from None
    if parsed.tzinfo is None:
        raise MappingError(field, "must carry a time and a timezone")
    return parsed


def _instant(value: Any) -> datetime | None:
    """A dateTime with a time and a timezone, else None (a date, a year, or garbage)."""
    try:
        parsed = datetime.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def _concept_text(concept: Mapping[str, Any] | None) -> str | None:
    if not concept:
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display"):
            return str(coding["display"])
    return None


def _input_code(item: Mapping[str, Any]) -> str | None:
    for coding in (item.get("type") or {}).get("coding") or []:
        if coding.get("system") == LOCAL_REFERRAL_INPUT:
            return str(coding.get("code"))
    return None


def _contact(patient: Mapping[str, Any]) -> ReferralContact:
    names = patient.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if not name or not name.get("family") or not name.get("given"):
        raise MappingError("patient.name", "a given and a family name are required")
    phone = next(
        (
            t.get("value")
            for t in patient.get("telecom") or []
            if t.get("system") == "phone" and t.get("value")
        ),
        None,
    )
    comms = patient.get("communication") or []
    comm = next((c for c in comms if c.get("preferred")), comms[0] if comms else None)
    language = None
    if comm:
        codings = comm["language"].get("coding") or []
        language = codings[0].get("code") if codings else comm["language"].get("text")
    birth = patient.get("birthDate")
    try:
        birth_date = date.fromisoformat(birth) if birth and len(birth) == 10 else None
    except ValueError:
        raise MappingError("patient.birthDate", "not a date") from None
    return ReferralContact.model_validate(
        {
            "name": {"given": name["given"][0], "family": name["family"]},
            "phone": phone,
            "birth_date": birth_date,
            "preferred_language": language,
        }
    )


def _unique_appointments(found: Sequence[ReferralAppointment]) -> tuple[ReferralAppointment, ...]:
    """One per start time, the described one preferred (an Appointment booked for the requested
    occurrence is the same event), in time order."""
    by_start: dict[datetime, ReferralAppointment] = {}
    for a in found:
        if a.start not in by_start or (a.description and not by_start[a.start].description):
            by_start[a.start] = a
    return tuple(sorted(by_start.values(), key=lambda a: a.start))


# --- inbound -----------------------------------------------------------------------------------


def referral_id_for(endpoint: str, task_id: str) -> str:
    """The bridge's id for the referral a Task represents: stable, and unique across endpoints."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{endpoint}|Task/{task_id}"))


def _requester_ref(task: Mapping[str, Any], service_request: Mapping[str, Any]) -> str | None:
    """The referring clinician (or organization) as a reference at the EHR, for telling them."""
    for source in (task.get("requester"), service_request.get("requester")):
        ref = (source or {}).get("reference") if isinstance(source, dict) else None
        if isinstance(ref, str) and ref.split("/")[0] in ("Practitioner", "PractitionerRole", "Organization"):
            return ref
    return None


def referral_from_fhir(
    task: Mapping[str, Any],
    service_request: Mapping[str, Any],
    patient: Mapping[str, Any] | None,
    endpoint: str,
    *,
    referral_id: str | None = None,
    supporting: Sequence[Mapping[str, Any]] = (),
) -> Referral:
    """The peer view of a referral: Task + its focus ServiceRequest (+ the Patient, if fetched,
    + the Goal / Appointment / HealthcareService resources they reference, already reduced).

    Raises MappingError naming the element (``task.status``, ``task.focus`` ...) when the
    resources do not describe a referral the bridge can handle.
    """
    validated(dict(task), "task")
    validated(dict(service_request), "service_request")
    if patient is not None:
        validated(dict(patient), "patient")
    if task.get("resourceType") != "Task":
        raise MappingError("task.resourceType", "must be Task")
    if service_request.get("resourceType") != "ServiceRequest":
        raise MappingError("service_request.resourceType", "must be ServiceRequest")
    task_id, sr_id = task.get("id"), service_request.get("id")
    if not task_id:
        raise MappingError("task.id", "required")
    if not sr_id:
        raise MappingError("service_request.id", "required")
    if _ref_id(task.get("focus"), "ServiceRequest") != sr_id:
        raise MappingError("task.focus", "does not reference the ServiceRequest given")
    try:
        status = ReferralStatus(task["status"])
    except ValueError:
        raise MappingError("task.status", "not in the SDOH Clinical Care set") from None

    business = task.get("businessStatus")
    business_code = None
    if business:
        business_code = next((c.get("code") for c in business.get("coding") or [] if c.get("code")), None)
        business_code = business_code or business.get("text")
    patient_id = _ref_id(task.get("for"), "Patient") or _ref_id(service_request.get("subject"), "Patient")
    if patient is not None and patient.get("id") and patient_id and patient["id"] != patient_id:
        raise MappingError("patient.id", "is not the Task's patient")
    requester = (service_request.get("requester") or {}).get("display") or (task.get("requester") or {}).get(
        "display"
    )
    priority = service_request.get("priority")
    if priority is not None and priority not in REQUEST_PRIORITY:
        raise MappingError("service_request.priority", "unknown priority")

    goals: list[str] = []
    programs: list[str] = []
    appointments: list[ReferralAppointment] = []
    for i, item in enumerate(task.get("input") or []):
        code = _input_code(item)
        if code == _INPUT_GOAL and item.get("valueString"):
            goals.append(item["valueString"])
        elif code == _INPUT_PROGRAM and item.get("valueString"):
            programs.append(item["valueString"])
        elif code == _INPUT_APPOINTMENT:
            start = _datetime(item.get("valueDateTime"), f"task.input.{i}.valueDateTime")
            if start is None:
                raise MappingError(f"task.input.{i}.valueDateTime", "an appointment needs a start")
            appointments.append(
                ReferralAppointment(start=start, description=(item.get("type") or {}).get("text"))
            )
    occurrence = service_request.get("occurrenceDateTime") or (
        service_request.get("occurrencePeriod") or {}
    ).get("start")
    requested = _instant(occurrence)
    if requested is not None:  # a date alone ("in December") is valid FHIR but not an appointment
        appointments.append(ReferralAppointment(start=requested, description=None))
    for res in supporting:
        rtype = res.get("resourceType")
        if rtype == "Goal":
            text = _concept_text(res.get("description"))
            if text:
                goals.append(text)
        elif rtype == "HealthcareService" and res.get("name"):
            programs.append(str(res["name"]))
        elif rtype == "Appointment" and res.get("status") not in ("cancelled", "noshow", "entered-in-error"):
            start = _instant(res.get("start"))  # a bad one is left out, not the referral with it
            if start is not None:
                appointments.append(ReferralAppointment(start=start, description=res.get("description")))
    reasons = [t for t in (_concept_text(c) for c in service_request.get("reasonCode") or []) if t]
    consent = next(
        (
            s["reference"]
            for s in service_request.get("supportingInfo") or []
            if str(s.get("reference", "")).startswith("Consent/")
        ),
        None,
    )
    outputs = tuple(
        str(o["valueReference"]["reference"])
        for o in task.get("output") or []
        if isinstance(o.get("valueReference"), dict) and o["valueReference"].get("reference")
    )
    try:
        return Referral(
            id=referral_id or referral_id_for(endpoint, task_id),
            endpoint=endpoint,
            task_id=task_id,
            task_version=(task.get("meta") or {}).get("versionId"),
            service_request_id=sr_id,
            status=status,
            business_status=business_code,
            status_reason=_concept_text(task.get("statusReason")),
            authored_on=_datetime(task.get("authoredOn"), "task.authoredOn"),
            last_modified=_datetime(task.get("lastModified"), "task.lastModified"),
            task_updated=_datetime((task.get("meta") or {}).get("lastUpdated"), "task.meta.lastUpdated"),
            requester=requester,
            requester_ref=_requester_ref(task, service_request),
            patient_id=patient_id,
            contact=_contact(patient) if patient is not None else None,
            reason="; ".join(reasons) or None,
            goals=tuple(dict.fromkeys(goals)),
            programs=tuple(dict.fromkeys(programs)),
            appointments=_unique_appointments(appointments),
            priority=priority,
            due=_instant(((task.get("restriction") or {}).get("period") or {}).get("end")),
            outputs=outputs,
            consent_ref=consent,
        )
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise MappingError("referral." + ".".join(str(p) for p in err["loc"]), str(err["msg"])) from exc


# --- outbound ----------------------------------------------------------------------------------


def _business_status(code: str, field: str) -> dict[str, Any]:
    if code not in BSER_STATUS:
        raise MappingError(field, "not a BSeR Task business status")
    return {"coding": [{"system": BSER_BUSINESS_STATUS, "code": code, "display": BSER_STATUS[code]}]}


def _output(ref: str, field: str) -> dict[str, Any]:
    if not _OUTPUT_REF.match(ref):
        raise MappingError(field, "must reference a Procedure, Encounter or DocumentReference")
    return {
        "type": {
            "coding": [
                {
                    "system": SDOHCC_TEMPORARY_CODES,
                    "code": RESULTING_ACTIVITY[0],
                    "display": RESULTING_ACTIVITY[1],
                }
            ]
        },
        "valueReference": reference(ref),
    }


def _input(code: str, value: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": LOCAL_REFERRAL_INPUT, "code": code}]}
    if text:
        concept["text"] = text
    return {"type": concept, **value}


def referral_to_fhir(
    referral: Referral,
    *,
    owner_ref: str | None = None,
    requester_ref: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ServiceRequest and Task a clinician's system would hold for ``referral`` (validated).

    Used to seed referrals (tests, demo) and to compare with what an EHR holds. ``owner_ref`` is the
    peer organization at that EHR (an empty owner lets any eligible organization claim the Task).
    """
    if referral.patient_id is None:
        raise MappingError("referral.patient_id", "required to address the ServiceRequest and Task")
    requester_ref = requester_ref or referral.requester_ref
    if referral.priority is not None and referral.priority not in REQUEST_PRIORITY:
        raise MappingError("referral.priority", "unknown priority")
    patient = f"Patient/{referral.patient_id}"
    requester: dict[str, str] = {}
    if requester_ref:
        requester["reference"] = requester_ref
    if referral.requester:
        requester["display"] = referral.requester

    sr: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": referral.service_request_id,
        "meta": {"profile": [SDOHCC_SERVICE_REQUEST]},
        "status": "revoked" if referral.status is ReferralStatus.CANCELLED else "active",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": SDOHCC_TEMPORARY_CODES,
                        "code": "social-connection",
                        "display": "Social Connection",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": SNOMED, "code": PEER_SUPPORT_REFERRAL[0], "display": PEER_SUPPORT_REFERRAL[1]}
            ]
        },
        "subject": reference(patient),
    }
    if referral.authored_on is not None:
        sr["authoredOn"] = fhir_datetime(referral.authored_on, "referral.authored_on")
    if requester:
        sr["requester"] = requester
    if referral.priority is not None:
        sr["priority"] = referral.priority
    if referral.reason:
        sr["reasonCode"] = [{"text": referral.reason}]
    if referral.consent_ref:
        sr["supportingInfo"] = [reference(referral.consent_ref)]

    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": referral.task_id,
        "meta": {"profile": [SDOHCC_TASK_REFERRAL]},
        "status": referral.status.value,
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": FULFILL[0], "display": FULFILL[1]}]},
        "focus": reference(f"ServiceRequest/{referral.service_request_id}"),
        "for": reference(patient),
    }
    if referral.task_version is not None:
        task["meta"]["versionId"] = referral.task_version
    if referral.business_status is not None:
        task["businessStatus"] = _business_status(referral.business_status, "referral.business_status")
    if referral.status_reason:
        task["statusReason"] = {"text": referral.status_reason}
    if referral.authored_on is not None:
        task["authoredOn"] = fhir_datetime(referral.authored_on, "referral.authored_on")
    if referral.last_modified is not None:
        task["lastModified"] = fhir_datetime(referral.last_modified, "referral.last_modified")
    if requester:
        task["requester"] = requester
    if referral.due is not None:
        task["restriction"] = {"period": {"end": fhir_datetime(referral.due, "referral.due")}}
    if owner_ref:
        task["owner"] = reference(owner_ref)
    inputs = [_input(_INPUT_GOAL, {"valueString": g}) for g in referral.goals]
    inputs += [_input(_INPUT_PROGRAM, {"valueString": p}) for p in referral.programs]
    inputs += [
        _input(
            _INPUT_APPOINTMENT,
            {"valueDateTime": fhir_datetime(a.start, f"referral.appointments.{i}.start")},
            a.description,
        )
        for i, a in enumerate(referral.appointments)
    ]
    if inputs:
        task["input"] = inputs
    if referral.outputs:
        task["output"] = [_output(ref, f"referral.outputs.{i}") for i, ref in enumerate(referral.outputs)]
    return validated(sr, "service_request"), validated(task, "task")


def task_with_status(
    task: Mapping[str, Any],
    status: ReferralStatus | str,
    *,
    now: datetime,
    reason: str | None = None,
    business_status: str | None = None,
    outputs: Sequence[str] = (),
) -> dict[str, Any]:
    """The Task after the peer organization moves it to ``status`` (a new dict; validated).

    Sets ``businessStatus`` (BSeR; a default per status, or ``business_status``), ``statusReason``
    (required for rejected, cancelled, on-hold and failed; cleared otherwise so a stale reason does
    not mislead), ``lastModified`` = ``now``, ``executionPeriod`` start/end on start/complete, and
    appends ``outputs`` (references to the Procedures/Encounters delivered) once each.
    Send it with ``If-Match`` on the version it was read at: that is the exchange layer's part.
    """
    try:
        new_status = ReferralStatus(status)
    except ValueError:
        raise MappingError("status", "not in the SDOH Clinical Care set") from None
    if new_status in STATUS_NEEDS_REASON and not (reason and reason.strip()):
        raise MappingError("reason", f"required when the status becomes {new_status.value}")
    stamp = fhir_datetime(now, "now")
    out = copy.deepcopy(dict(task))
    out["status"] = new_status.value
    code = business_status or DEFAULT_BUSINESS_STATUS.get(new_status)
    if code is not None:
        out["businessStatus"] = _business_status(code, "business_status")
    else:
        out.pop("businessStatus", None)
    if reason:
        out["statusReason"] = {"text": reason}
    else:
        out.pop("statusReason", None)
    out["lastModified"] = stamp
    if new_status is ReferralStatus.IN_PROGRESS:
        out.setdefault("executionPeriod", {}).setdefault("start", stamp)
    elif new_status is ReferralStatus.COMPLETED:
        # an end alone is a valid Period; a start we never saw is not invented
        out.setdefault("executionPeriod", {})["end"] = stamp
    elif new_status in (ReferralStatus.FAILED, ReferralStatus.CANCELLED) and "executionPeriod" in out:
        out["executionPeriod"]["end"] = stamp
    existing = {
        o["valueReference"].get("reference")
        for o in out.get("output") or []
        if isinstance(o.get("valueReference"), dict)
    }
    for i, ref in enumerate(outputs):
        if ref not in existing:
            out.setdefault("output", []).append(_output(ref, f"outputs.{i}"))
            existing.add(ref)
    # the Task's narrative says where it stands now, unless the clinic wrote its own
    if (out.get("text") or {}).get("status", "generated") == "generated":
        business = (out.get("businessStatus") or {}).get("coding", [{}])[0].get("code")
        out = with_text(
            out,
            task_lines(
                _STATUS_WORDS.get(new_status, new_status.value),
                BSER_STATUS.get(str(business)) if business else None,
                now,
                [str(o["valueReference"]["reference"]) for o in out.get("output") or []],
                reason,
            ),
        )
    return validated(out, "task")


_STATUS_WORDS: dict[ReferralStatus, str] = {
    ReferralStatus.REQUESTED: "requested",
    ReferralStatus.ACCEPTED: "accepted by the peer organization",
    ReferralStatus.REJECTED: "declined by the peer organization",
    ReferralStatus.IN_PROGRESS: "in progress: the peer is working with the person",
    ReferralStatus.ON_HOLD: "on hold",
    ReferralStatus.COMPLETED: "completed",
    ReferralStatus.FAILED: "could not be completed",
    ReferralStatus.CANCELLED: "cancelled",
}
