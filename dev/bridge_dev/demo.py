"""``bridge demo``: the whole story against a sandbox EHR, on free ports, with a SQLite store.

clinic referral -> peer inbox -> accept -> session and note -> an out-of-scope note blocked with its
reasons -> co-sign -> Encounter, DocumentReference, Provenance, Procedure delivered -> Task completed.

Everything is real: the sandbox EHR (``sekmet-fhir``, a dev/demo dependency) and an OpenID Provider
(npm ``oidc-provider``, ``dev/idp``) run as child processes, the bridge runs its HTTP service in this
process. People sign in at that provider (four demo accounts, printed with their passwords): the
peer's app calls the bridge's public API with the provider's access token as its bearer token, the
supervisor works from a browser session opened by signing in at the bridge. The clinician's
side (placing the referral) is played by writing ServiceRequest + Task to the EHR directly, as the
clinic's own system would. Each step prints the FHIR ids it produced.

``--keep-running`` leaves everything up (sign in at the printed inbox URL with the printed accounts);
``--export DIR`` writes every resource the demo left in the EHR as NDJSON, one file per type.
``--ehr medplum`` plays it against Medplum's FHIR router in memory instead (no subscriptions
there: the clinic's side pings the bridge's ``/fhir/notify`` after placing the referral, and the
bridge polls at once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

import httpx
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bridge.config import Settings, settings_from_dict
from bridge.domain import (
    ConsentRecord,
    HumanName,
    Participant,
    PeerWorker,
    Role,
)
from bridge.errors import ExchangeError
from bridge.exchange.directory import InMemoryDirectory
from bridge.mappers import MappingContext, organization_to_fhir, referral_id_for
from bridge.observability import configure_logging
from bridge.roles.loader import packaged_rules_dir
from bridge.web.app import create_app
from bridge_dev import idp as oidc
from bridge_dev import samples
from bridge_dev.medplum import MedplumServer, medplum
from bridge_dev.sandbox import Sandbox, free_port, sandbox
from bridge_dev.stack import bridge_config

log = logging.getLogger("bridge.demo")

ORG_ID = "harbor-recovery"
MRN_SYSTEM = "urn:oid:1.2.3.4.5.1"
ISSUER = "https://idp.harbor-recovery.example.org"
AUDIENCE = "peer-bridge"
CENTRAL = timezone(timedelta(hours=-6))  # the story happens in Austin
EXPORT_TYPES = (
    "Organization",
    "Practitioner",
    "Patient",
    "ServiceRequest",
    "Task",
    "Encounter",
    "Procedure",
    "DocumentReference",
    "Provenance",
    "Subscription",
    "Basic",
)

# Made-up people; a test scans the bridge's logs for these names and the note texts (no PHI in logs).
PARTICIPANT_NAME = HumanName(given="Marisol", family="Okafor-Lindqvist")
PEER_NAME = HumanName(given="Jordan", family="Reyes-Whitfield")
SUPERVISOR_NAME = HumanName(given="Pat", family="Abernathy-Sato")
COLLEAGUE_NAME = HumanName(given="Robin", family="Castellanos-Moore")
OUT_OF_SCOPE_NOTE = (
    "Marisol meets criteria for opioid use disorder, severe. I told her to cut her buprenorphine dose "
    "in half until she sees the doctor."
)
IN_SCOPE_NOTE = (
    "Met Marisol at the recovery center. We worked on her recovery plan goal of stable housing and "
    "filled in the housing application together. She will call the benefits office on Monday and "
    "talk with her prescriber about her questions on medication."
)
STORY_TEXTS = (
    PARTICIPANT_NAME.given,
    PARTICIPANT_NAME.family,
    PEER_NAME.family,
    SUPERVISOR_NAME.family,
    COLLEAGUE_NAME.family,
    OUT_OF_SCOPE_NOTE,
    IN_SCOPE_NOTE,
)


def rules_dir() -> Path:
    """The rule files shipped in the package (the repository's ``config/rules``): the demo runs
    from an installed wheel too."""
    return packaged_rules_dir()


@dataclass
class DemoResult:
    """What the story produced (ids only), for tests and for ``--keep-running``."""

    bridge_url: str = ""
    ehr_url: str = ""
    referral_id: str = ""
    task_id: str = ""
    fhir_ids: dict[str, str] = field(default_factory=dict)
    task_status: str = ""
    blocked_rules: list[str] = field(default_factory=list)
    steps: int = 0
    peer_token: str = ""
    exported: dict[str, int] = field(default_factory=dict)


class Story:
    """Prints numbered steps; each names who acted and the FHIR ids involved."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.n = 0

    def step(self, who: str, text: str) -> None:
        self.n += 1
        print(f"[{self.n:2}] {who:<10} {text}", file=self.out, flush=True)

    def detail(self, text: str) -> None:
        print(f"     {'':<10} {text}", file=self.out, flush=True)


class IdentityProvider:
    """A throwaway IdP: one EC key, its public JWKS written for the bridge, tokens on demand (the
    API benchmark's; the demo itself uses the real provider in ``bridge_dev.idp``)."""

    def __init__(self, workdir: Path) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "demo-idp-1", "alg": "ES256"})
        self.jwks_file = workdir / "idp-jwks.json"
        self.jwks_file.write_text(json.dumps(KeySet([self.key]).as_dict(private=False)))

    def token(self, *, role: Role, practitioner_id: str | None, hours: float = 8) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"demo-{role.value}",
            "iat": now,
            "exp": now + int(hours * 3600),
            "role": role.value,
            "organization": ORG_ID,
        }
        if practitioner_id:
            claims["practitioner_id"] = practitioner_id
        return jwt.encode({"alg": "ES256", "kid": "demo-idp-1"}, claims, self.key)


@dataclass
class People:
    participant: Participant
    peer: PeerWorker  # provisionally certified: the story's author
    supervisor: PeerWorker
    consent: ConsentRecord
    certified: PeerWorker  # a certified colleague (the "peer" sign-in account)


def make_people(tag: str, now: datetime) -> People:
    participant = samples.participant(f"pt-{tag}", f"MRN-{tag}", name=PARTICIPANT_NAME)
    supervisor = samples.supervisor(
        f"sup-{tag}",
        name=SUPERVISOR_NAME,
        credential="PRSS",
        organization_id=ORG_ID,
        npi=None,
        role=Role.PEER_SUPERVISOR,
    )
    # a provisionally certified peer: Texas rules hold their notes until a supervisor co-signs
    peer = samples.peer(
        f"peer-{tag}",
        name=PEER_NAME,
        credential="PRSS-I",
        organization_id=ORG_ID,
        supervisor_id=supervisor.id,
        last_supervision=(now - timedelta(days=2)).date(),
    )
    consent = ConsentRecord(
        id=f"consent-{tag}",
        participant_id=participant.id,
        recipient="clinic",
        start=now - timedelta(days=30),
    )
    certified = samples.certified_peer(
        f"cpeer-{tag}", name=COLLEAGUE_NAME, credential="PRSS", organization_id=ORG_ID
    )
    return People(participant, peer, supervisor, consent, certified)


def demo_settings(
    ehr: Sandbox | MedplumServer, workdir: Path, port: int, provider: oidc.IdentityProvider
) -> Settings:
    cfg = bridge_config(
        ehr.base_url,
        org=ORG_ID,
        store_url=f"sqlite+aiosqlite:///{workdir / 'bridge.db'}",
        endpoint={
            "patient_identifier_system": MRN_SYSTEM,
            "poll_interval_seconds": 60,  # the fallback if a notification is lost
            "retry_max_seconds": 20,
        },
        rules={"dir": str(rules_dir())},
        server={
            "host": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "notification_token_env": "BRIDGE_DEMO_NOTIFY_TOKEN",
        },
        outbox={"base_backoff_seconds": 0.5, "max_backoff_seconds": 5},
        # the API takes the provider's access tokens (checked against its JWKS), as an app would send
        api_auth={"issuer": provider.issuer, "audience": AUDIENCE, "jwks_url": f"{provider.issuer}/jwks"},
        identity_provider={
            "issuer": provider.issuer,
            "client_id": oidc.CLIENT_ID,
            "client_secret_env": "BRIDGE_DEMO_OIDC_SECRET",
        },
    )
    return settings_from_dict(cfg, source="(demo)", base_dir=str(workdir))


def demo_accounts(people: People) -> list[oidc.Account]:
    names = {
        "peer": COLLEAGUE_NAME,
        "provisional": PEER_NAME,
        "supervisor": SUPERVISOR_NAME,
    }
    return oidc.demo_accounts(
        organization=ORG_ID,
        peer=people.certified.id,
        provisional=people.peer.id,
        supervisor=people.supervisor.id,
        names={k: f"{n.given} {n.family}" for k, n in names.items()} | {"integrator": "Demo integrator"},
    )


ACCOUNT_ROLES = {
    "peer": "peer specialist (certified)",
    "provisional": "peer specialist (provisional: notes wait for a co-sign)",
    "supervisor": "peer supervisor (co-signs)",
    "integrator": "integrator (no inbox; outbox and submissions)",
}


def print_sign_in(out: TextIO, bridge_url: str, provider: oidc.IdentityProvider) -> None:
    """How each demo account signs in (the passwords are made for this run)."""
    print(f"\nSign in at {bridge_url}/inbox (OpenID provider {provider.issuer}):", file=out)
    for a in provider.accounts:
        print(f"  {a.username:<32} password {a.password:<24} {ACCOUNT_ROLES[a.kind]}", file=out)
    print("", file=out, flush=True)


# --- the clinic's side: what the EHR's own users and systems do -------------------------------------


async def put_task_topic(ehr: httpx.AsyncClient) -> None:
    """The sandbox seeds no SubscriptionTopic for Task; a clinic that offers referrals has one."""
    basic = samples.task_topic("A referral Task was created or updated")
    (await ehr.put(f"Basic/{basic['id']}", json=basic)).raise_for_status()


async def create_patient(ehr: httpx.AsyncClient, p: Participant) -> str:
    ident = p.identifiers["clinic"]
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": ident.system, "value": ident.value}],
        "name": [{"family": p.name.family, "given": [p.name.given]}],
        "birthDate": "1988-04-12",
    }
    resp = await ehr.post(
        "Patient", json=body, headers={"If-None-Exist": f"identifier={ident.system}|{ident.value}"}
    )
    resp.raise_for_status()
    return str(resp.json()["id"])


async def peer_organization_ref(ehr: httpx.AsyncClient, settings: Settings) -> str:
    """The peer organization at the EHR, found or created by the same identifier the bridge uses."""
    ctx = MappingContext.from_organization(settings.organization, endpoint="clinic", now=datetime.now(UTC))
    ident = ctx.identifier("organization", settings.organization.id)
    resp = await ehr.post(
        "Organization",
        json=organization_to_fhir(ctx),
        headers={"If-None-Exist": f"identifier={ident['system']}|{ident['value']}"},
    )
    resp.raise_for_status()
    return f"Organization/{resp.json()['id']}"


async def place_referral(ehr: httpx.AsyncClient, *, tag: str, patient_id: str, owner_ref: str) -> str:
    sr, task = samples.referral_resources(
        tag,
        patient_id=patient_id,
        owner_ref=owner_ref,
        authored_on=datetime.now(CENTRAL).replace(microsecond=0),
        requester="Dr. Sam Patel, Riverside Clinic",
        reason="Recovery support after an emergency department visit",
    )
    for res in (sr, task):
        (await ehr.put(f"{res['resourceType']}/{res['id']}", json=res)).raise_for_status()
    return str(task["id"])


# --- the bridge's side: every step through its public API ---------------------------------------------


async def _until(what: str, check: Callable[[], Any], *, within: float = 60.0) -> Any:
    """Poll ``check`` (an async callable) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise ExchangeError(f"demo: {what} did not happen within {within:.0f}s")
        await asyncio.sleep(0.2)


async def _delivered(api: httpx.AsyncClient, token: str, submission_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        resp = await api.get(f"api/v1/submissions/{submission_id}", headers=_bearer(token))
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        if body["state"] == "dead":
            raise ExchangeError(f"demo: submission {submission_id} dead-lettered: {body.get('last_error')}")
        return body if body["state"] == "delivered" else None

    result: dict[str, Any] = await _until(f"delivery of {submission_id}", check)
    return result


async def _show_delivery(
    api: httpx.AsyncClient,
    token: str,
    submission_id: str,
    story: Story,
    res: DemoResult,
    kinds: tuple[str, ...],
) -> None:
    """Wait for the delivery, keep its FHIR ids, and print those of the resource types ``kinds``."""
    done = await _delivered(api, token, submission_id)
    res.fhir_ids.update(done["fhir_ids"])
    story.detail("delivered: " + ", ".join(v for k, v in sorted(done["fhir_ids"].items()) if k in kinds))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _supervisor_cosigns(
    browser: httpx.AsyncClient, bridge_url: str, provider: oidc.IdentityProvider, held_id: str, story: Story
) -> dict[str, Any]:
    """The supervisor signs in at the OpenID provider (a browser's steps, over HTTP) and co-signs
    the held note from that session."""
    account = provider.account("supervisor")
    signed_in = await oidc.sign_in_http(browser, bridge_url, account)
    if signed_in.status_code != 200:
        raise ExchangeError(f"demo: the supervisor's sign-in failed: {signed_in.status_code}")
    story.step(
        "supervisor",
        f"signed in as {account.username} at the OpenID provider {provider.issuer}: "
        "a server-side session (authorization code + PKCE, no token pasted)",
    )
    session = {"X-Bridge-Inbox": "1"}  # API calls riding on the browser's session
    queue = (await browser.get(f"{bridge_url}/api/v1/notes/held", headers=session)).json()
    story.step("supervisor", f"held notes to co-sign: {len(queue['items'])}")
    resp = await browser.post(f"{bridge_url}/api/v1/notes/{held_id}/cosign", headers=session)
    if resp.status_code != 202:
        raise ExchangeError(f"demo: co-sign refused: {resp.text}")
    sub: dict[str, Any] = resp.json()
    story.step("supervisor", f"co-signed: 202 {sub['state']}, same tracking id {sub['submission_id']}")
    return sub


def evidence_words(evidence: Any) -> list[str]:
    """The words a rule matched: evidence comes as strings or as ``{text, start, end}`` spans."""
    items = evidence if isinstance(evidence, list) else [evidence] if evidence else []
    return [str(e.get("text", "")) if isinstance(e, dict) else str(e) for e in items]


def _violations(body: dict[str, Any]) -> list[str]:
    lines = []
    for v in body.get("violations") or []:
        words = ", ".join(f"“{w}”" for w in evidence_words(v.get("evidence")))
        lines.append(f"{v['rule']} ({v['severity']}): {v['message']}" + (f" — {words}" if words else ""))
    return lines


async def _notifications(ehr: httpx.AsyncClient, story: Story, *, subscriptions: bool) -> None:
    """Wait for the bridge's subscription (sandbox), or say how it learns of referrals without."""
    if not subscriptions:
        story.step(
            "bridge",
            "this EHR offers no subscriptions: the bridge polls for Tasks (every 60 s here) "
            "and at once when pinged on /fhir/notify",
        )
        return

    async def subscribed() -> str | None:
        # the EHR marks the bridge's subscription active after a successful handshake; a referral
        # placed before that would only be noticed at the next heartbeat's event count
        bundle = (await ehr.get("Subscription", params={"status": "active"})).raise_for_status().json()
        entries = bundle.get("entry") or []
        return f"Subscription/{entries[0]['resource']['id']}" if entries else None

    subscription = await _until("the bridge's subscription becoming active", subscribed)
    story.step("bridge", f"subscribed to referral Tasks at the EHR: {subscription} (active after handshake)")


async def _ping(api: httpx.AsyncClient, story: Story) -> None:
    """What a clinic system without subscriptions can do: an empty POST on the notify endpoint."""
    token = os.environ["BRIDGE_DEMO_NOTIFY_TOKEN"]
    ping = await api.post("fhir/notify", content=b"", headers=_bearer(token))
    ping.raise_for_status()
    story.step("clinic", f"pinged the bridge: POST /fhir/notify (empty) answered {ping.status_code}")


async def play(
    settings: Settings,
    ehr_url: str,
    people: People,
    tag: str,
    story: Story,
    provider: oidc.IdentityProvider,
    *,
    subscriptions: bool = True,
) -> DemoResult:
    res = DemoResult(bridge_url=settings.server.public_url or "", ehr_url=ehr_url)
    async with httpx.AsyncClient(timeout=30) as app:  # the peer's app signs in at the provider
        peer_token = str(
            (await oidc.app_tokens(app, provider, provider.account("provisional")))["access_token"]
        )
    res.peer_token = peer_token
    p = people.participant
    async with (
        httpx.AsyncClient(base_url=ehr_url + "/", timeout=30) as ehr,
        httpx.AsyncClient(base_url=res.bridge_url + "/", timeout=30) as api,
        httpx.AsyncClient(timeout=30) as supervisor,  # the supervisor's browser: cookies, no token
    ):
        health = (await api.get("health")).json()
        story.step("bridge", f"up at {res.bridge_url} (health: {health['status']}), EHR at {ehr_url}")
        story.step(
            "peer",
            f"signed in to the peer app as {provider.account('provisional').username} at the OpenID "
            "provider: its access token (a JWT for the bridge's API) is the app's bearer token",
        )

        await _notifications(ehr, story, subscriptions=subscriptions)

        patient_id = await create_patient(ehr, p)
        owner = await peer_organization_ref(ehr, settings)
        res.task_id = await place_referral(ehr, tag=tag, patient_id=patient_id, owner_ref=owner)
        story.step(
            "clinic",
            f"referral placed: ServiceRequest/sr-{tag} + Task/{res.task_id} "
            f"(requested, owner {owner}, for Patient/{patient_id})",
        )

        res.referral_id = referral_id_for("clinic", res.task_id)
        if not subscriptions:
            await _ping(api, story)

        async def in_inbox() -> dict[str, Any] | None:
            resp = await api.get("api/v1/referrals", headers=_bearer(peer_token))
            resp.raise_for_status()
            return next((r for r in resp.json()["items"] if r["id"] == res.referral_id), None)

        # normally one notification (~0.1 s); if it were lost, the next heartbeat's event count
        # (every 60 s) shows the gap and the bridge catches up by polling
        seen = await _until("the referral reaching the peer inbox", in_inbox, within=150)
        story.step(
            "peer",
            f"referral {seen['id']} in the inbox from {seen.get('requester')} (status {seen['status']}; "
            "minimum necessary view: no diagnosis, results or free-text reason)",
        )

        resp = await api.post(
            f"api/v1/referrals/{res.referral_id}/accept", json={}, headers=_bearer(peer_token)
        )
        resp.raise_for_status()
        task = (await ehr.get(f"Task/{res.task_id}")).json()
        story.step("peer", f"accepted: Task/{res.task_id} is now {task['status']} at the EHR")

        resp = await api.post(
            f"api/v1/referrals/{res.referral_id}/start", json={}, headers=_bearer(peer_token)
        )
        resp.raise_for_status()
        story.step("peer", f"services started: Task/{res.task_id} is {resp.json()['status']}")

        start = datetime.now(CENTRAL).replace(second=0, microsecond=0) - timedelta(hours=2)
        encounter = {
            "id": f"enc-{tag}",
            "participant_id": p.id,
            "peer_id": people.peer.id,
            "referral_id": res.referral_id,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=50)).isoformat(),
            "setting": "community",
            "location_name": "Harbor recovery center",
            "activities": ["recovery-coaching", "resource-navigation"],
        }
        resp = await api.post(
            "api/v1/encounters",
            json=encounter,
            headers={**_bearer(peer_token), "Idempotency-Key": f"enc-{tag}"},
        )
        if resp.status_code != 202:
            raise ExchangeError(f"demo: session refused: {resp.text}")
        sub = resp.json()
        story.step("peer", f"session logged: 202, tracking id {sub['submission_id']}")
        await _show_delivery(api, peer_token, sub["submission_id"], story, res, ("Encounter", "Procedure"))

        bad = {
            "id": f"note-bad-{tag}",
            "participant_id": p.id,
            "author_id": people.peer.id,
            "encounter_id": encounter["id"],
            "audience": "care-team",
            "text": OUT_OF_SCOPE_NOTE,
            "written_at": datetime.now(CENTRAL).isoformat(),
            "summary": "Recovery coaching",
            "goal": "Stable housing",
            "progress": "Talked through next steps",
        }
        check = (await api.post("api/v1/notes/check", json=bad, headers=_bearer(peer_token))).json()
        story.step("peer", f"note draft checked (nothing stored): verdict {check['verdict']}")
        for line in _violations(check):
            story.detail(line)
        resp = await api.post("api/v1/notes", json=bad, headers=_bearer(peer_token))
        body = resp.json()
        res.blocked_rules = sorted({v["rule"] for v in body.get("violations") or []})
        story.step(
            "bridge",
            f"out-of-scope note refused: {resp.status_code} {body['code']} "
            f"(rules: {', '.join(res.blocked_rules)}); nothing queued",
        )

        note = {
            **bad,
            "id": f"note-{tag}",
            "text": IN_SCOPE_NOTE,
            "summary": "Recovery coaching and housing application",
            "goal": "Stable housing",
            "progress": "Application completed; follow-up call planned",
        }
        resp = await api.post(
            "api/v1/notes", json=note, headers={**_bearer(peer_token), "Idempotency-Key": f"note-{tag}"}
        )
        held = resp.json()
        if resp.status_code != 202 or held.get("state") != "held":
            raise ExchangeError(f"demo: the provisional peer's note was not held: {resp.text}")
        story.step(
            "bridge",
            f"in-scope note by a provisional peer: {resp.status_code} {held['state']}, tracking id "
            f"{held['submission_id']} — held until a supervisor co-signs (stored, not sent)",
        )
        for line in _violations({"violations": held["hold_reasons"]}):
            story.detail(line)

        sub = await _supervisor_cosigns(supervisor, res.bridge_url, provider, held["submission_id"], story)
        await _show_delivery(
            api, peer_token, sub["submission_id"], story, res, ("DocumentReference", "Provenance")
        )

        outputs = [res.fhir_ids[k] for k in ("Procedure", "Encounter") if k in res.fhir_ids]
        resp = await api.post(
            f"api/v1/referrals/{res.referral_id}/complete",
            json={"outputs": outputs},
            headers=_bearer(peer_token),
        )
        if resp.status_code != 200:
            raise ExchangeError(f"demo: completing the referral failed: {resp.text}")
        task = (await ehr.get(f"Task/{res.task_id}")).json()
        res.task_status = task["status"]
        got = [o.get("valueReference", {}).get("reference") for o in task.get("output") or []]
        story.step(
            "peer",
            f"referral completed: Task/{res.task_id} is {task['status']} at the EHR, "
            f"outputs {', '.join(str(g) for g in got)}",
        )
        for kind in ("Encounter", "Procedure", "DocumentReference", "Provenance"):
            if kind not in res.fhir_ids:
                raise ExchangeError(f"demo: no {kind} was delivered")
        story.step("done", "FHIR ids: " + ", ".join(res.fhir_ids[k] for k in sorted(res.fhir_ids)))
    res.steps = story.n
    return res


async def export_ndjson(ehr_url: str, directory: Path) -> dict[str, int]:
    """Every resource of the demo's types, one ``<Type>.ndjson`` file per type."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for rtype in EXPORT_TYPES:
            url: str | None = f"{ehr_url}/{rtype}?_count=100"
            lines: list[str] = []
            while url:
                page = (await client.get(url)).raise_for_status().json()
                lines += [json.dumps(e["resource"]) for e in page.get("entry") or [] if "resource" in e]
                url = next(
                    (link["url"] for link in page.get("link") or [] if link.get("relation") == "next"), None
                )
                if url and not url.startswith(ehr_url):
                    url = None  # only follow paging inside the server we exported from
            if lines:
                text = "\n".join(lines) + "\n"
                await asyncio.to_thread((directory / f"{rtype}.ndjson").write_text, text)
                counts[rtype] = len(lines)
    return counts


async def run_demo(
    *,
    out: TextIO,
    keep_running: bool = False,
    export: Path | None = None,
    workdir: Path | None = None,
    stop: asyncio.Event | None = None,
    ehr_kind: str = "sekmet",
) -> DemoResult:
    """Start the EHR (the sandbox, or Medplum with ``ehr_kind="medplum"``) and the bridge, play the
    story, optionally export and keep running."""
    own_dir = workdir is None
    work = workdir or Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    tag = uuid.uuid4().hex[:8]
    story = Story(out)
    ehr: Sandbox | MedplumServer = medplum(work / "ehr") if ehr_kind == "medplum" else sandbox(work / "ehr")
    await asyncio.to_thread(ehr.start)
    runner: web.AppRunner | None = None
    provider: oidc.IdentityProvider | None = None
    try:
        port = free_port()
        os.environ["BRIDGE_DEMO_NOTIFY_TOKEN"] = uuid.uuid4().hex
        client_secret = uuid.uuid4().hex
        os.environ["BRIDGE_DEMO_OIDC_SECRET"] = client_secret
        people = make_people(tag, datetime.now(UTC))
        bridge_url = f"http://127.0.0.1:{port}"
        provider = oidc.IdentityProvider(
            work / "idp",
            demo_accounts(people),
            [oidc.bridge_client(bridge_url, secret=client_secret), oidc.app_client()],
        )
        await asyncio.to_thread(provider.start)
        settings = demo_settings(ehr, work, port, provider)
        directory = InMemoryDirectory(
            [people.participant], [people.peer, people.supervisor, people.certified], [people.consent]
        )
        if isinstance(ehr, Sandbox):
            async with httpx.AsyncClient(base_url=ehr.base_url + "/", timeout=30) as client:
                await put_task_topic(client)
        app = create_app(settings, directory=directory)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print_sign_in(out, bridge_url, provider)
        result = await play(
            settings, ehr.base_url, people, tag, story, provider, subscriptions=isinstance(ehr, Sandbox)
        )
        if export is not None:
            result.exported = await export_ndjson(ehr.base_url, export)
            total = sum(result.exported.values())
            story.step("export", f"{total} resources in {len(result.exported)} NDJSON files under {export}")
        if keep_running:
            print_sign_in(out, result.bridge_url, provider)
            print(f"EHR ({ehr_kind}): {ehr.base_url}   API: {result.bridge_url}/api/openapi.json", file=out)
            print("Press Ctrl-C to stop.", file=out, flush=True)
            await (stop or _signal_event()).wait()
        return result
    finally:
        if runner is not None:
            await runner.cleanup()
        if provider is not None:
            await asyncio.to_thread(provider.stop)
        await asyncio.to_thread(ehr.stop)
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)


def _signal_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, event.set)
    return event


def demo(args: argparse.Namespace) -> int:
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    export = Path(args.export) if args.export else None
    ehr_kind = getattr(args, "ehr", "sekmet")
    asyncio.run(run_demo(out=sys.stdout, keep_running=args.keep_running, export=export, ehr_kind=ehr_kind))
    return 0
