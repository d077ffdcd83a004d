"""The mapped transaction against the real sandbox EHR: idempotent, references resolved."""

from __future__ import annotations

from typing import Any

import httpx

from bridge.domain import Participant, ReferralStatus
from bridge.mappers import (
    MappingContext,
    build_submission_bundle,
    patient_reference_for,
    referral_from_fhir,
    referral_to_fhir,
    task_with_status,
)
from bridge_dev.sandbox import Sandbox

from . import samples as s

COUNTED = ("Organization", "Practitioner", "Encounter", "Procedure", "DocumentReference", "Provenance")


def _client(ehr: Sandbox) -> httpx.Client:
    return httpx.Client(
        base_url=ehr.base_url, headers={"Content-Type": "application/fhir+json"}, timeout=30.0
    )


def _count(client: httpx.Client, rtype: str) -> int:
    r = client.get(f"/{rtype}", params={"_summary": "count"})
    r.raise_for_status()
    return int(r.json()["total"])


def _post(client: httpx.Client, bundle: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.post("", json=bundle)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    return list(body["entry"])


def _id_of(entry: dict[str, Any]) -> str:
    # location is [base]/Type/id/_history/n
    return "/".join(entry["response"]["location"].split("/_history")[0].split("/")[-2:])


def _create_patient(client: httpx.Client, participant: Participant, *, named: bool = False) -> str:
    mrn = participant.identifiers["clinic"]
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": mrn.system, "value": mrn.value}],
    }
    if named:
        body["name"] = [{"family": participant.name.family, "given": [participant.name.given]}]
    r = client.post("/Patient", json=body)
    assert r.status_code == 201
    return str(r.json()["id"])


def _ctx(participant: Participant, **kw: Any) -> MappingContext:
    return s.ctx(patient_reference=patient_reference_for(participant, "clinic"), **kw)


def test_transaction_twice_creates_nothing_new(fresh_ehr: Sandbox) -> None:
    with _client(fresh_ehr) as client:
        participant = s.participant()
        patient_id = _create_patient(client, participant, named=True)
        referral = s.referral(patient_id=patient_id)
        sr, task = referral_to_fhir(referral)
        for resource in (sr, task):
            r = client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
            assert r.status_code in (200, 201), r.text

        ctx = _ctx(participant)
        bundle = build_submission_bundle(
            ctx,
            encounter=s.encounter(referral_id=referral.id),
            participant=participant,
            peer=s.peer(),
            note=s.cosigned_note(),
            cosigner=s.supervisor(),
            referral=referral,
        )
        before = {t: _count(client, t) for t in COUNTED}
        first = _post(client, bundle)
        assert [e["response"]["status"] for e in first] == ["201 Created"] * len(bundle["entry"])
        after_first = {t: _count(client, t) for t in COUNTED}
        assert after_first == {
            "Organization": before["Organization"] + 1,
            "Practitioner": before["Practitioner"] + 2,
            "Encounter": before["Encounter"] + 1,
            "Procedure": before["Procedure"] + 1,
            "DocumentReference": before["DocumentReference"] + 1,
            "Provenance": before["Provenance"] + 1,
        }

        second = _post(client, bundle)
        assert [e["response"]["status"] for e in second] == ["200 OK"] * len(bundle["entry"])
        assert [_id_of(e) for e in second] == [_id_of(e) for e in first]
        assert {t: _count(client, t) for t in COUNTED} == after_first

        # the server resolved every urn:uuid and the conditional patient reference
        ids: dict[str, str] = {}  # first of each type: the peer's Practitioner comes before the co-signer's
        for sent, answer in zip(bundle["entry"], first, strict=True):
            ids.setdefault(sent["resource"]["resourceType"], _id_of(answer))
        cosigner_id = _id_of(first[2])
        enc = client.get(f"/{ids['Encounter']}").json()
        assert enc["subject"]["reference"] == f"Patient/{patient_id}"
        assert enc["participant"][0]["individual"]["reference"] == ids["Practitioner"]
        assert enc["serviceProvider"]["reference"] == ids["Organization"]
        assert enc["basedOn"] == [{"reference": "ServiceRequest/sr-1", "display": "Referral to peer support"}]
        doc = client.get(f"/{ids['DocumentReference']}").json()
        assert [e["reference"] for e in doc["context"]["encounter"]] == [ids["Encounter"]]
        assert doc["authenticator"]["reference"] == cosigner_id
        prov = client.get(f"/{ids['Provenance']}").json()
        assert [t["reference"] for t in prov["target"]] == [ids["DocumentReference"]]
        assert [a["who"]["reference"] for a in prov["agent"]] == [
            ids["Practitioner"],
            cosigner_id,
            ids["Organization"],
        ]
        found = client.get(
            "/DocumentReference",
            params={"_security": "http://terminology.hl7.org/CodeSystem/v3-ActCode|42CFRPart2"},
        )
        assert found.json()["total"] == 1

        # close the loop: the Task points at the Procedure delivered, and reads back as completed
        current = client.get(f"/Task/{task['id']}").json()
        done = task_with_status(current, ReferralStatus.COMPLETED, now=s.NOW, outputs=[ids["Procedure"]])
        r = client.put(f"/Task/{task['id']}", json=done)
        assert r.status_code == 200, r.text
        stored_task = client.get(f"/Task/{task['id']}").json()
        stored_sr = client.get(f"/ServiceRequest/{sr['id']}").json()
        back = referral_from_fhir(stored_task, stored_sr, None, "clinic", referral_id=referral.id)
        assert back.status is ReferralStatus.COMPLETED
        assert back.business_status == "7.0"
        assert back.outputs == (ids["Procedure"],)


def test_without_encounter_the_note_carries_the_period(sandbox_ehr: Sandbox) -> None:
    # shared sandbox: identifiers unique to this test
    participant = s.participant("pt-nx", mrn="MRN-NX-1")
    with _client(sandbox_ehr) as client:
        _create_patient(client, participant)
        ctx = _ctx(participant, identifier_system=f"{s.ORG_SYSTEM}/no-encounter-test")
        bundle = build_submission_bundle(
            ctx,
            encounter=s.encounter("enc-nx", participant_id="pt-nx"),
            participant=participant,
            peer=s.peer(),
            note=s.note("note-nx", participant_id="pt-nx", encounter_id="enc-nx"),
            send_encounter=False,
        )
        types = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert "Encounter" not in types
        first = _post(client, bundle)
        assert {e["response"]["status"] for e in first} == {"201 Created"}
        second = _post(client, bundle)
        assert {e["response"]["status"] for e in second} == {"200 OK"}
        doc = client.get(f"/{_id_of(first[types.index('DocumentReference')])}").json()
        assert doc["context"] == {
            "period": {"start": "2026-11-26T14:00:00-06:00", "end": "2026-11-26T14:50:00-06:00"}
        }
        assert doc["docStatus"] == "preliminary"


def test_cosignature_replaces_the_preliminary_note(sandbox_ehr: Sandbox) -> None:
    participant = s.participant("pt-cs", mrn="MRN-CS-1")
    with _client(sandbox_ehr) as client:
        _create_patient(client, participant)
        ctx = _ctx(participant, identifier_system=f"{s.ORG_SYSTEM}/cosign-test")
        common: dict[str, Any] = {
            "encounter": s.encounter("enc-cs", participant_id="pt-cs"),
            "participant": participant,
            "peer": s.peer(),
        }
        first = _post(
            client,
            build_submission_bundle(
                ctx, note=s.note("note-cs", participant_id="pt-cs", encounter_id="enc-cs"), **common
            ),
        )
        cosigned = build_submission_bundle(
            ctx,
            note=s.cosigned_note("note-cs", participant_id="pt-cs", encounter_id="enc-cs"),
            cosigner=s.supervisor(),
            update_note=True,
            **common,
        )
        second = _post(client, cosigned)
        statuses = {
            e["resource"]["resourceType"] + str(i): a["response"]["status"]
            for i, (e, a) in enumerate(zip(cosigned["entry"], second, strict=True))
        }
        assert statuses == {
            "Organization0": "200 OK",
            "Practitioner1": "200 OK",
            "Practitioner2": "201 Created",  # the co-signer is new
            "Encounter3": "200 OK",
            "Procedure4": "200 OK",
            "DocumentReference5": "200 OK",  # updated in place
            "Provenance6": "200 OK",
        }
        doc_id, prov_id = _id_of(first[-2]), _id_of(first[-1])
        assert (_id_of(second[-2]), _id_of(second[-1])) == (doc_id, prov_id)
        doc = client.get(f"/{doc_id}").json()
        assert doc["docStatus"] == "final"
        assert doc["authenticator"]["reference"] == _id_of(second[2])
        assert doc["meta"]["versionId"] == "2"
        prov = client.get(f"/{prov_id}").json()
        assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == [
            "author",
            "verifier",
            "transmitter",
        ]
        ident = ctx.search_by_identifier("note", "note-cs")
        assert client.get(f"/DocumentReference?{ident}").json()["total"] == 1
