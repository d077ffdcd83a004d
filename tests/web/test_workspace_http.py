"""The workspace's operations over plain HTTP on the real exchange (sandbox EHR, SQLite store):
return-with-comment and who may do it, escalations recorded as told, a co-signed risk note that
still waits, the live check agreeing with the submission, paging / filter / search, a session form
that keeps what was typed, the risk webhook, and anonymous page loads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import settings_from_dict
from bridge.domain import HumanName, PeerEncounter, ReferralContact, ReferralStatus, parse
from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService
from bridge.web.csrf import form_token
from bridge_dev import samples
from bridge_dev.sandbox import Sandbox
from tests.web import payloads
from tests.web.conftest import TokenFactory, bearer, open_app, settings_dict

Client = TestClient[Any, Any]
RISK = "Said she keeps thinking about suicide tonight; we called her supervisor together."
PLAIN = "Talked through the housing application together."


def _csrf(client: Client) -> str:
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    return form_token(cookies["bridge_session"].value)


async def _sign_in(client: Client, credential: str) -> None:
    resp = await client.post("/inbox/login", data={"credential": credential}, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def _post(client: Client, path: str, data: Any) -> Any:
    if isinstance(data, dict):
        data = {**data, "csrf_token": _csrf(client)}
    else:
        data = [*data, ("csrf_token", _csrf(client))]
    return await client.post(path, data=data, allow_redirects=False)


async def _held(client: Client, token: str, note: dict[str, Any]) -> str:
    resp = await client.post("/api/v1/notes", json=note, headers=bearer(token))
    assert resp.status == 202 and (await resp.json())["state"] == "held", await resp.text()
    return str((await resp.json())["submission_id"])


# --- return with a comment -------------------------------------------------------------------------


async def test_only_the_authors_supervisor_returns_a_note(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    sid = await _held(
        client, make_token(practitioner_id=payloads.PROVISIONAL), payloads.provisional_note(PLAIN)
    )
    # a peer, naming the supervisor in the form: identity comes from authentication, not the body
    await _sign_in(client, make_token(practitioner_id="peer-1"))
    resp = await _post(client, f"/inbox/notes/{sid}/return", {"comment": "redo", "by": "sup-1"})
    assert resp.status == 403 and (await resp.json())["rule"] == "role:peer-specialist"
    # a supervisor, but not this author's
    await _sign_in(client, make_token("peer-supervisor", practitioner_id="sup-7"))
    resp = await _post(client, f"/inbox/notes/{sid}/return", {"comment": "redo"})
    assert resp.status == 403 and "cosign.supervisor" in await resp.text()  # the page, rule in details
    item = await exchange.store.outbox.get(sid)
    assert item.state.value == "held" and all(v.get("severity") != "returned" for v in item.hold or [])

    await _sign_in(client, make_token("peer-supervisor", practitioner_id="sup-1"))
    empty = await _post(client, f"/inbox/notes/{sid}/return", {"comment": "  "})
    assert empty.status == 422 and "what to change" in await empty.text()
    ok = await _post(
        client, f"/inbox/notes/{sid}/return", {"comment": "Add the <b>follow-up</b> you agreed."}
    )
    assert ok.status == 303 and "Returned to the author" in unquote_plus(ok.headers["Location"])
    home = await (await client.get("/inbox")).text()
    assert f'id="held-{sid}"' not in home  # with its author now

    entries = [e for e in await exchange.store.audit.entries(subject=sid) if e.action == "note.return"]
    assert [(e.outcome, e.actor, (e.detail or {}).get("rule")) for e in entries] == [
        ("refused", "practitioner:peer-1", "role:peer-specialist"),
        ("refused", "practitioner:sup-7", "cosign.supervisor"),
        ("ok", "practitioner:sup-1", None),
    ]
    assert "follow-up" not in str(entries[-1].detail)  # sizes, never the comment

    # the author sees it, escaped, and what to do next
    await _sign_in(client, make_token(practitioner_id=payloads.PROVISIONAL))
    notes = await (await client.get("/inbox/my-notes")).text()
    assert "Returned to you" in notes and f"/inbox/notes/new?revise={sid}" in notes
    page = await (await client.get(f"/inbox/notes/{sid}")).text()
    assert "Add the &lt;b&gt;follow-up&lt;/b&gt; you agreed." in page


async def test_a_returned_note_revised_by_its_author_is_judged_again_under_the_same_tracking_id(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    note = payloads.provisional_note(PLAIN)
    sid = await _held(client, make_token(practitioner_id=payloads.PROVISIONAL), note)
    await _sign_in(client, make_token("peer-supervisor", practitioner_id="sup-1"))
    assert (await _post(client, f"/inbox/notes/{sid}/return", {"comment": "Add the goal."})).status == 303

    await _sign_in(client, make_token(practitioner_id=payloads.PROVISIONAL))
    form = await (await client.get(f"/inbox/notes/new?revise={sid}")).text()
    assert "Add the goal." in form and PLAIN in form
    fields = {k: note[k] for k in ("id", "participant_id", "encounter_id", "audience")}
    resp = await _post(client, "/inbox/notes", {**fields, "text": PLAIN + " Goal: stable housing."})
    assert resp.status == 303 and resp.headers["Location"].startswith(f"/inbox/notes/{sid}")
    item = await exchange.store.outbox.get(sid)
    assert item.state.value == "held" and [v["rule"] for v in item.hold or []] == ["supervision.cosign"]
    await _sign_in(client, make_token("peer-supervisor", practitioner_id="sup-1"))
    assert f'id="held-{sid}"' in await (await client.get("/inbox")).text()  # back in the queue


# --- escalations ---------------------------------------------------------------------------------------


async def test_an_escalation_is_recorded_as_told_without_a_reference(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    sid = await _held(client, make_token(), payloads.note(text=RISK))
    await _sign_in(client, make_token(practitioner_id="peer-1"))
    page = await (await client.get(f"/inbox/notes/{sid}")).text()
    assert "988" in page and 'id="escalation"' in page  # crisis resources, and the form
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    told = {"told": "Dr. Patel", "role": "clinician", "method": "phone call", "when": when, "tz": "UTC"}
    bad = await _post(client, f"/inbox/notes/{sid}/escalation", {**told, "role": "my cousin"})
    assert bad.status == 422 and "Dr. Patel" not in str(await exchange.store.audit.entries(subject=sid))
    again = await bad.text()  # the form again, as typed
    assert (
        'value="Dr. Patel"' in again and 'value="phone call" selected' in again and f'value="{when}"' in again
    )
    # another peer cannot record it for them
    await _sign_in(client, make_token(practitioner_id="peer-2"))
    other = await _post(client, f"/inbox/notes/{sid}/escalation", told)
    assert other.status == 403

    await _sign_in(client, make_token(practitioner_id="peer-1"))
    ok = await _post(client, f"/inbox/notes/{sid}/escalation", told)
    assert ok.status == 303 and "on its way" in unquote_plus(ok.headers["Location"])
    item = await exchange.store.outbox.get(sid)
    assert item.state.value == "queued"
    assert re.fullmatch(r"Communication/esc-[0-9a-f]{16}", item.payload["note"]["escalation_ref"])
    entries = await exchange.store.audit.entries(subject=sid)
    assert [e.outcome for e in entries if e.action == "note.escalation"] == [
        "refused",
        "ok",
    ]  # peer-2, peer-1
    entry = [e for e in entries if e.action == "note.escalation"][-1]
    assert entry.detail is not None and entry.detail["made"]["told_role"] == "clinician"
    assert entry.detail["made"]["method"] == "phone call"


async def test_cosigning_a_risk_note_shows_what_remains(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    sid = await _held(
        client, make_token(practitioner_id=payloads.PROVISIONAL), payloads.provisional_note(RISK)
    )
    await _sign_in(client, make_token("peer-supervisor", practitioner_id="sup-1"))
    home = await (await client.get("/inbox")).text()
    assert 'id="risk-badge"' in home and f'id="escalate-{sid}"' in home
    resp = await _post(client, f"/inbox/notes/{sid}/cosign", {})
    assert resp.status == 303
    where = unquote_plus(resp.headers["Location"])
    assert where.startswith(f"/inbox/notes/{sid}") and "One thing remains" in where
    page = await (await client.get(f"/inbox/notes/{sid}")).text()
    assert f'id="cosign-{sid}"' not in page  # co-signed: the button is gone
    assert 'id="escalation"' in page and "988" in page  # what remains, and how to do it
    assert (await exchange.store.outbox.get(sid)).state.value == "held"


# --- the live check is the submission's own check -----------------------------------------------------


async def test_the_live_check_gives_the_submissions_verdict(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    # a billable session: its note needs the billing fields the rules list (summary among them)
    actor = Actor("practitioner:peer-1", "peer-specialist", "harbor-recovery", practitioner_id="peer-1")
    session = parse(PeerEncounter, payloads.encounter(id="enc-billable", peer_id="peer-1", billable=True))
    await exchange.submissions.submit_encounter(session, actor=actor)
    await _sign_in(client, make_token(practitioner_id="peer-1"))
    form = {
        "id": "note-live-billable",
        "participant_id": payloads.PARTICIPANT,
        "encounter_id": "enc-billable",
        "audience": "care-team",
        "text": PLAIN,
    }
    live = await _post(client, "/inbox/notes/check", form)
    body = await live.json()
    assert live.status == 200 and body["verdict"] == "block"
    assert "billing.missing-field" in {f["rule"] for f in body["findings"]}
    submitted = await _post(client, "/inbox/notes", form)
    assert submitted.status == 422 and "billing.missing-field" in await submitted.text()

    filled = {**form, "summary": "Recovery coaching", "goal": "Stable housing", "progress": "Applied"}
    live = await (await _post(client, "/inbox/notes/check", filled)).json()
    submitted = await _post(client, "/inbox/notes", filled)
    assert live["verdict"] in ("allow", "warn") and submitted.status == 303  # sent, as the check said
    assert (await exchange.submissions.list())[-1].state == "queued"


# --- referrals: paging, filter, search ------------------------------------------------------------


async def test_referrals_are_paged_filtered_and_searched(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    now = datetime.now(UTC)
    for i in range(25):
        ref = samples.referral(
            f"page-ref-{i:02d}",
            task_id=f"page-task-{i}",
            status=ReferralStatus.COMPLETED if i < 3 else ReferralStatus.REQUESTED,
            authored_on=now - timedelta(hours=i),
            due=now + timedelta(days=1),
            contact=ReferralContact(name=HumanName(given=f"Sam{i:02d}", family="Pager")),
        )
        await exchange.store.inbox.upsert(ref, now=now - timedelta(minutes=i))
    await _sign_in(client, make_token())
    first = await (await client.get("/inbox")).text()
    assert first.count('class="card referral"') == 20 and "page 1 of 2" in first
    assert "due tomorrow" in first and "Sam24" not in first  # the newest first; the oldest on page 2
    second = await (await client.get("/inbox?page=2")).text()
    assert second.count('class="card referral"') == 2
    everything = await (await client.get("/inbox?show=all")).text()
    done = 'data-status="completed"'
    assert "page 1 of 2" in everything and done not in everything  # open first, closed after
    assert done in await (await client.get("/inbox?show=all&page=2")).text()
    closed = await (await client.get("/inbox?show=closed")).text()
    assert closed.count('class="card referral"') == 3 and closed.count(done) == 3
    found = await (await client.get("/inbox?q=sam07")).text()
    assert found.count('class="card referral"') == 1 and "Sam07 Pager" in found
    both = await (await client.get("/inbox", params={"q": "Sam07 pager"})).text()  # given and family
    assert both.count('class="card referral"') == 1
    accented = samples.referral(
        "page-ref-jose",
        task_id="page-task-jose",
        contact=ReferralContact(name=HumanName(given="José", family="Núñez")),
    )
    await exchange.store.inbox.upsert(accented, now=now)
    for q in ("josé", "Núñez", "José Núñez"):  # escaped in the stored JSON: found all the same
        html = await (await client.get("/inbox", params={"q": q})).text()
        assert html.count('class="card referral"') == 1 and "José Núñez" in html, q


# --- the session form keeps what was typed ------------------------------------------------------------


async def test_a_refused_session_form_keeps_everything_typed(
    client: Client, make_token: TokenFactory
) -> None:
    await _sign_in(client, make_token())
    form = [
        ("participant_id", payloads.PARTICIPANT),
        ("start", "2026-03-02T14:45"),
        ("end", "2026-03-02T14:00"),  # before the start
        ("tz", "America/Chicago"),
        ("setting", "home"),
        ("location_name", "Her kitchen table"),
        ("method", "phone"),
        ("activities", "advocacy"),
        ("activities", "outreach"),
    ]
    resp = await _post(client, "/inbox/encounters", form)
    html = await resp.text()
    assert resp.status == 422 and "the end time" in html
    assert 'value="Her kitchen table"' in html and 'value="2026-03-02T14:45"' in html
    assert re.search(r'value="advocacy" checked', html) and re.search(r'value="outreach" checked', html)
    assert re.search(r'value="home" selected', html) and re.search(r'value="phone" selected', html)
    assert not re.search(r'value="recovery-coaching" checked', html)


# --- anonymous page loads ------------------------------------------------------------------------------


async def test_opening_the_sign_in_page_is_not_a_failed_sign_in(
    client: Client, make_token: TokenFactory
) -> None:
    for _ in range(101):  # past the throttle's 100 failures a minute
        assert (await client.get("/inbox")).status == 401
    await _sign_in(client, make_token())


# --- the risk webhook ----------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP endpoint on loopback recording what it is sent."""
    seen: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append({"body": await request.json(), "auth": request.headers.get("Authorization")})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield str(c.make_url("/hook")), seen


async def test_a_note_held_for_risk_calls_the_webhook_without_phi(
    env: None,
    sandbox_ehr: Sandbox,
    tmp_path: Path,
    jwks: dict[str, Any],
    make_token: TokenFactory,
    receiver: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, seen = receiver
    monkeypatch.setenv("BRIDGE_TEST_HOOK_TOKEN", "hook-secret")
    cfg = settings_dict(sandbox_ehr.base_url, tmp_path / "bridge.db")
    cfg["alerts"] = {"risk_webhook_url": url, "risk_webhook_token_env": "BRIDGE_TEST_HOOK_TOKEN"}
    async for client, exchange in open_app(settings_from_dict(cfg), jwks):
        plain = await _held(
            client, make_token(practitioner_id=payloads.PROVISIONAL), payloads.provisional_note(PLAIN)
        )
        risky = await _held(client, make_token(), payloads.note(text=RISK))
        assert [s["body"]["submission_id"] for s in seen] == [risky]  # a co-sign hold alone: no alert
        [call] = seen
        assert call["auth"] == "Bearer hook-secret" and call["body"]["event"] == "note.held-for-risk"
        assert "suicide" not in str(call) and "Avery" not in str(call)
        entries = await exchange.store.audit.entries(subject=risky)
        assert [(e.action, e.outcome) for e in entries if e.action == "alert.risk"] == [("alert.risk", "ok")]
        assert plain != risky


async def test_a_session_is_logged_from_a_person_met_without_a_referral(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    await _sign_in(client, make_token(practitioner_id="peer-1"))
    caseload = await (await client.get("/inbox/caseload")).text()
    link = f"/inbox/sessions/new?participant_id={payloads.PARTICIPANT}"
    assert "Others you have met" in caseload and link in caseload  # the seeded session, no referral
    form = await (await client.get(link)).text()
    assert 'id="s-who">Avery Quinn<' in form and 'value="Harbor drop-in center"' in form  # as last time
    start = re.search(r'id="s-start" name="start" type="datetime-local" required value="([^"]+)"', form)
    end = re.search(r'id="s-end" name="end" type="datetime-local" required value="([^"]+)"', form)
    assert start and end
    held = datetime.fromisoformat(end[1]) - datetime.fromisoformat(start[1])
    assert held == timedelta(minutes=45)  # the peer's usual length
    fields = [
        ("participant_id", payloads.PARTICIPANT),
        ("referral_id", ""),
        ("tz", "UTC"),
        ("start", start[1]),
        ("end", end[1]),
        ("setting", "community"),
        ("method", "face-to-face"),
        ("location_name", "Harbor drop-in center"),
        ("activities", "recovery-coaching"),
    ]
    resp = await _post(client, "/inbox/encounters", fields)
    assert resp.status == 303 and resp.headers["Location"].startswith("/inbox/notes/new?session=ses-")
    session = (await exchange.submissions.list())[-1]
    assert session.kind == "encounter" and re.fullmatch(r"ses-[0-9a-f]{16}", session.record_id)


async def test_a_group_session_names_its_size(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    await _sign_in(client, make_token(practitioner_id="peer-1"))
    fields = [
        ("participant_id", payloads.PARTICIPANT),
        ("tz", "America/Chicago"),
        ("start", "2026-03-02T10:00"),
        ("end", "2026-03-02T11:00"),
        ("setting", "community"),
        ("method", "face-to-face"),
        ("location_name", "Recovery center"),
        ("activities", "group-facilitation"),
        ("modality", "group"),
    ]
    missing = await _post(client, "/inbox/encounters", [*fields, ("group_size", "")])
    html = await missing.text()
    assert missing.status == 422 and "how many took part" in html and 'value="group" selected' in html
    ok = await _post(client, "/inbox/encounters", [*fields, ("group_size", "6")])
    assert ok.status == 303, await ok.text()
    item = (await exchange.store.outbox.list(limit=1000))[-1]
    enc = item.payload["encounter"]
    assert (enc["modality"], enc["group_size"], enc["start"]) == ("group", 6, "2026-03-02T10:00:00-06:00")


@pytest.mark.parametrize("broken", ["nobody listens", "token variable unset"])
async def test_a_failing_risk_webhook_does_not_fail_the_submission(
    env: None,
    sandbox_ehr: Sandbox,
    tmp_path: Path,
    jwks: dict[str, Any],
    make_token: TokenFactory,
    broken: str,
) -> None:
    from bridge_dev.sandbox import free_port

    cfg = settings_dict(sandbox_ehr.base_url, tmp_path / "bridge.db")
    cfg["alerts"] = {"risk_webhook_url": f"http://127.0.0.1:{free_port()}/hook", "timeout_seconds": 2}
    if broken == "token variable unset":
        cfg["alerts"]["risk_webhook_token_env"] = "BRIDGE_TEST_HOOK_TOKEN_UNSET"
    async for client, exchange in open_app(settings_from_dict(cfg), jwks):
        risky = await _held(client, make_token(), payloads.note(text=RISK))  # 202 held all the same
        entries = await exchange.store.audit.entries(subject=risky)
        assert [(e.action, e.outcome) for e in entries if e.action == "alert.risk"] == [
            ("alert.risk", "failed")
        ]
