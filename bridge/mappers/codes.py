"""Code systems and code tables the mappers use, each with the page it comes from.

One place for every code (cumulus-etl ``external_mappings.py`` style) so a reviewer can check them
against their sources. Items marked *unverified* were not confirmed in a primary source (see the
shared domain reference) and are kept here, not scattered through the mappers.
"""

from __future__ import annotations

from typing import Final

from bridge.domain import Activity, ContactMethod, NoteKind, ReferralStatus, Setting

# --- code systems ------------------------------------------------------------------------------

# https://terminology.hl7.org/CodeSystem-v3-ActCode.html
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# https://terminology.hl7.org/CodeSystem-v3-Confidentiality.html
V3_CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
# https://terminology.hl7.org/CodeSystem-v3-ParticipationType.html
V3_PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# https://terminology.hl7.org/CodeSystem-v3-ParticipationMode.html
V3_PARTICIPATION_MODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
# https://terminology.hl7.org/CodeSystem-provenance-participant-type.html
PROVENANCE_PARTICIPANT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
# https://hl7.org/fhir/us/core/CodeSystem-us-core-provenance-participant-type.html
US_CORE_PROVENANCE_PARTICIPANT_TYPE: Final = (
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type"
)
# https://hl7.org/fhir/us/core/CodeSystem-us-core-documentreference-category.html
US_CORE_DOCREF_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
# https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets (system URI as given in the domain reference)
HCPCS: Final = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
# https://loinc.org
LOINC: Final = "http://loinc.org"
# https://www.snomed.org (FHIR system URI: https://terminology.hl7.org/SNOMEDCT.html)
SNOMED: Final = "http://snomed.info/sct"
# https://ucum.org
UCUM: Final = "http://unitsofmeasure.org"
# https://terminology.hl7.org/NamingSystem-npi.html
NPI: Final = "http://hl7.org/fhir/sid/us-npi"
# https://nucc.org/index.php/code-sets-mainmenu-41/provider-taxonomy-mainmenu-40
NUCC_TAXONOMY: Final = "http://nucc.org/provider-taxonomy"
# https://hl7.org/fhir/R4/codesystem-task-code.html
TASK_CODE: Final = "http://hl7.org/fhir/CodeSystem/task-code"
# https://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem-SDOHCC-CodeSystemTemporaryCodes.html
SDOHCC_TEMPORARY_CODES: Final = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
)
# https://hl7.org/fhir/us/bser/CodeSystem-TaskBusinessStatusCS.html
BSER_BUSINESS_STATUS: Final = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"

# Local code systems: no standard code exists for a peer-note type or for the peer activities
# (domain reference: "no LOINC 'peer support note' exists"). Canonical URLs owned by the bridge,
# stable across organizations so EHR-side consumers can map them once (example.org until the
# project owns a domain).
LOCAL_NOTE_KIND: Final = "https://peer-bridge.example.org/fhir/CodeSystem/peer-note-kind"
LOCAL_ACTIVITY: Final = "https://peer-bridge.example.org/fhir/CodeSystem/peer-activity"
LOCAL_REFERRAL_INPUT: Final = "https://peer-bridge.example.org/fhir/CodeSystem/referral-input"

# --- profiles ----------------------------------------------------------------------------------

# https://hl7.org/fhir/us/core/StructureDefinition-us-core-encounter.html (and siblings)
US_CORE_ENCOUNTER: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"
US_CORE_PROCEDURE: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure"
US_CORE_DOCUMENTREFERENCE: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"
US_CORE_PROVENANCE: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"
US_CORE_PRACTITIONER: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner"
US_CORE_ORGANIZATION: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization"
# https://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition-SDOHCC-ServiceRequest.html
SDOHCC_SERVICE_REQUEST: Final = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-ServiceRequest"
)
# https://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition-SDOHCC-TaskForReferralManagement.html
SDOHCC_TASK_REFERRAL: Final = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"
)

# --- tables ------------------------------------------------------------------------------------

# Encounter.class (v3-ActCode): AMB ambulatory, HH home health, FLD field, VR virtual.
ENCOUNTER_CLASS: Final[dict[Setting, tuple[str, str]]] = {
    Setting.OFFICE: ("AMB", "ambulatory"),
    Setting.HOME: ("HH", "home health"),
    Setting.COMMUNITY: ("FLD", "field"),
    Setting.VIRTUAL: ("VR", "virtual"),
}

# How the peer and the person met (v3-ParticipationMode).
CONTACT_METHOD: Final[dict[ContactMethod, tuple[str, str]]] = {
    ContactMethod.FACE_TO_FACE: ("FACE", "face-to-face"),
    ContactMethod.PHONE: ("PHONE", "telephone"),
    ContactMethod.TELEHEALTH: ("VIDEOCONF", "videoconferencing"),
}

# HCPCS: H0038 "Self-help/peer services, per 15 minutes"; HQ modifier "group setting".
PEER_SERVICE: Final = ("H0038", "Self-help/peer services, per 15 minutes")
GROUP_MODIFIER: Final = ("HQ", "Group setting")

# Peer activities (local codes; display text shown in the EHR).
ACTIVITY: Final[dict[Activity, str]] = {
    Activity.RECOVERY_COACHING: "Recovery coaching",
    Activity.LIVED_EXPERIENCE: "Sharing lived experience",
    Activity.RECOVERY_PLANNING: "Recovery (wellness) planning",
    Activity.RESOURCE_NAVIGATION: "Resource navigation and linkage",
    Activity.ACCOMPANIMENT: "Accompaniment to an appointment or court",
    Activity.GROUP_FACILITATION: "Group facilitation",
    Activity.ADVOCACY: "Advocacy",
    Activity.CRISIS_SUPPORT: "Non-clinical crisis support",
    Activity.WARM_HANDOFF: "Warm handoff after an emergency visit",
    Activity.TRANSPORTATION: "Transportation",
    Activity.OUTREACH: "Outreach",
    Activity.CASE_MANAGEMENT: "Case management",
}

# DocumentReference.type: LOINC 11506-3 "Progress note" plus the local peer-note kind.
PROGRESS_NOTE: Final = ("11506-3", "Progress note")
NOTE_KIND: Final[dict[NoteKind, str]] = {
    NoteKind.PROGRESS: "Peer support progress note",
    NoteKind.GROUP: "Peer support group note",
    NoteKind.CRISIS: "Peer support crisis note",
    NoteKind.SUPERVISION: "Peer support supervision note",
    NoteKind.OUTREACH: "Peer support outreach note",
}
CLINICAL_NOTE: Final = ("clinical-note", "Clinical Note")

# Practitioner qualification: NUCC 175T00000X "Peer Specialist" (*unverified* code).
PEER_SPECIALIST_TAXONOMY: Final = ("175T00000X", "Peer Specialist")

# SNOMED CT 461481000124109 "Referral to peer support (procedure)".
PEER_SUPPORT_REFERRAL: Final = ("461481000124109", "Referral to peer support (procedure)")
# ServiceRequest.category used by the HL7 behavioral-health profiles for peer support.
SOCIAL_CONNECTION: Final = ("social-connection", "Social Connection")
# Task.output type for the Procedure delivered (SDOH Clinical Care).
RESULTING_ACTIVITY: Final = ("resulting-activity", "Resulting Activity")
# Task.code: the Task asks the owner to fulfill its focus.
FULFILL: Final = ("fulfill", "Fulfill the focal request")

# CDC BSeR Task business statuses (domain reference). Keys are the codes.
BSER_STATUS: Final[dict[str, str]] = {
    "2.0": "Created",
    "3.0": "Accepted",
    "4.0": "Declined",
    "5.1.1": "Scheduled",
    "5.1.2": "Unattended",
    "5.1.4": "Event Completed",
    "6.0": "Fulfillment Cancelled",
    "7.0": "Fulfillment Completed",
}
# The business status a Task gets by default when the bridge moves it to a status.
# in-progress has no BSeR counterpart of its own; callers may pass 5.1.1 / 5.1.4 explicitly.
DEFAULT_BUSINESS_STATUS: Final[dict[ReferralStatus, str]] = {
    ReferralStatus.REQUESTED: "2.0",
    ReferralStatus.ACCEPTED: "3.0",
    ReferralStatus.REJECTED: "4.0",
    ReferralStatus.CANCELLED: "6.0",
    ReferralStatus.COMPLETED: "7.0",
}
# Task statuses that need a statusReason (SDOH Clinical Care TaskForReferralManagement).
STATUS_NEEDS_REASON: Final = frozenset(
    {ReferralStatus.REJECTED, ReferralStatus.CANCELLED, ReferralStatus.ON_HOLD, ReferralStatus.FAILED}
)
# ServiceRequest.priority (http://hl7.org/fhir/R4/valueset-request-priority.html)
REQUEST_PRIORITY: Final = frozenset({"routine", "urgent", "asap", "stat"})
