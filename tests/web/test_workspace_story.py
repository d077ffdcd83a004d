"""The whole working day from the pages alone, in headless Chromium, on a phone (390 x 844) and on
a desktop (1280 x 900): a clinic places a referral; the peer signs in, accepts it, logs a session
(everything prefilled), writes the note, sees it blocked with the words marked, fixes it and
submits it (held: a provisional peer's note waits for a co-sign); the supervisor returns it once
with a comment; the peer revises and submits again; the supervisor co-signs; the peer completes the
referral with what was delivered — and the sandbox EHR holds the Task completed with those outputs,
the Encounter, the Procedure and the co-signed DocumentReference. No step types an id.

Every page visited passes axe-core (no serious or critical violation), has no horizontal overflow
and touch targets of at least 44 px; a screenshot of each is kept under ``var/screenshots/``.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from bridge.domain import ReferralAppointment
from bridge.exchange.wiring import ExchangeService
from bridge.mappers import referral_id_for
from bridge_dev import samples
from tests.web import payloads
from tests.web.accounts import Account, sign_in, sign_out
from tests.web.conftest import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, SigninBridge
from tests.web.pagecheck import PageChecks

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
        reason="Debian chromium is not installed (make test installs it)",
    ),
]

VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 900)}
BLOCKED = "We met at the library. Told her to cut her dose to 8 mg before the weekend."
BLOCKED_WORDS = "cut her dose to 8 mg"
FIXED = (
    "We met at the library. She wants to ask her prescriber about her dose; "
    "we wrote down her questions together and she filled in the housing application."
)
REVISED = FIXED + " She will call the housing office on Monday; I will check in with her on Tuesday."
RETURN_COMMENT = "Please add the follow-up you agreed on."


@dataclass
class Clinic:
    """The referral as the clinic placed it."""

    task_id: str
    referral_id: str
    name: str


async def place_referral(exchange: ExchangeService) -> Clinic:
    """What a clinician's system writes: the patient (known to the bridge's directory as
    ``part-1`` by the MRN), a ServiceRequest and a Task owned by the peer organization, due in three
    days, with a goal and an appointment. The bridge then fetches it (as a notification would)."""
    tag = uuid.uuid4().hex[:10]
    owner = await exchange.intake.organization_ref("clinic")
    participant = await exchange.directory.participant(payloads.PARTICIPANT)
    ident = participant.identifiers["clinic"]
    now = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=exchange.clients["clinic"].base_url + "/", timeout=30) as ehr:
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": ident.system, "value": ident.value}],
            "name": [{"family": participant.name.family, "given": [participant.name.given]}],
        }
        resp = await ehr.post(
            "Patient", json=patient, headers={"If-None-Exist": f"identifier={ident.system}|{ident.value}"}
        )
        patient_id = resp.raise_for_status().json()["id"]
        resources = samples.referral_resources(
            tag,
            patient_id=patient_id,
            owner_ref=owner,
            authored_on=now - timedelta(days=1),
            due=now + timedelta(days=3),
            goals=("Find stable housing",),
            programs=("Peer support",),
            appointments=(ReferralAppointment(start=now + timedelta(days=2), description="Housing office"),),
        )
        for res in resources:
            (await ehr.put(f"{res['resourceType']}/{res['id']}", json=res)).raise_for_status()
    task_id = str(resources[-1]["id"])
    await exchange.inbound.fetch_task("clinic", task_id)
    return Clinic(
        task_id, referral_id_for("clinic", task_id), f"{participant.name.given} {participant.name.family}"
    )


@pytest.fixture(params=sorted(VIEWPORTS))
async def story_page(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Page, PageChecks]]:
    width, height = VIEWPORTS[request.param]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": width, "height": height}, timezone_id="America/Chicago"
            )
            page = await context.new_page()
            yield page, PageChecks(f"story-{request.param}")
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
                await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        finally:
            await browser.close()


@dataclass
class Day:
    page: Page
    checks: PageChecks
    clinic: Clinic
    peer: Account
    supervisor: Account


def _people(bridge: SigninBridge) -> tuple[Account, Account]:
    """The provisional peer and their supervisor, signing in at the real OpenID Provider."""
    url, idp = bridge.url, bridge.idp
    return (
        Account(
            url, "Jordan Reyes", "peer-specialist", payloads.PROVISIONAL, login=idp.account("provisional")
        ),
        Account(url, "Morgan Lee", "peer-supervisor", "sup-1", login=idp.account("supervisor")),
    )


async def test_a_working_day_from_the_pages_alone(
    story_page: tuple[Page, PageChecks], signin_bridge: SigninBridge
) -> None:
    page, checks = story_page
    exchange = signin_bridge.exchange
    peer, supervisor = _people(signin_bridge)
    day = Day(page, checks, await place_referral(exchange), peer, supervisor)
    await peer_accepts_and_logs_a_session(day)
    await peer_writes_the_note(day)
    await supervisor_returns_it(day)
    await peer_revises_it(day)
    await supervisor_cosigns_it(day)
    await exchange.worker.drain("clinic")  # delivery runs in the background in production
    await peer_completes_the_referral(day)
    await the_ehr_holds_the_day(exchange, day.clinic)
    assert checks.problems == [], "\n".join(checks.problems)


async def peer_accepts_and_logs_a_session(day: Day) -> None:
    page, checks, clinic = day.page, day.checks, day.clinic
    await sign_in(page, day.peer)
    await checks.visit(page, "home")
    card = page.locator(f'[id="referral-{clinic.referral_id}"]')
    await expect(card).to_contain_text(clinic.name)
    await expect(card).to_contain_text("due ")  # in words: "due Thursday"
    await page.get_by_label("Search by name").fill(clinic.name.split()[1])
    await page.get_by_role("button", name="Show", exact=True).click()
    await expect(page.locator("#referral-count")).to_contain_text("matching")
    await checks.visit(page, "search")
    await card.get_by_role("link", name=clinic.name).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(clinic.name)
    await checks.visit(page, "referral new")
    await page.get_by_role("button", name="Accept", exact=True).click()
    await expect(page.locator("#notice")).to_contain_text(f"Accepted: {clinic.name}")
    await page.get_by_role("button", name="Start services").click()
    await expect(page.locator("#notice")).to_contain_text("Services started")
    await checks.visit(page, "referral in progress")
    # everything known is prefilled: the person, the referral, the times, the zone
    await page.get_by_role("link", name="Log a session").click()
    await expect(page.locator("#s-who")).to_have_text(clinic.name)
    assert await page.get_by_label("Started").input_value()  # now minus the usual length
    await expect(page.locator("#tz-hint")).to_contain_text("America/Chicago")
    await page.get_by_label("Place").fill("Central library")
    await checks.visit(page, "session form")
    await page.get_by_role("button", name="Save session and write the note").click()


async def peer_writes_the_note(day: Day) -> None:
    page, checks = day.page, day.checks
    await expect(page.get_by_role("heading", name="Write the note")).to_be_visible()
    await page.get_by_label("Progress toward the goal").fill("Housing application filled in")
    await page.get_by_label("Note", exact=True).fill(BLOCKED)
    feedback = page.locator("#note-feedback")
    await expect(feedback).to_have_attribute("data-verdict", "block")
    await expect(page.locator("#note-marked mark")).to_contain_text(BLOCKED_WORDS)
    await checks.visit(page, "note live check blocked")
    await page.get_by_role("button", name="Submit note").click()
    await expect(page.locator("#error")).to_contain_text("can't be sent as written")
    await expect(page.locator("#note-marked mark")).to_contain_text(BLOCKED_WORDS)
    await expect(page.get_by_label("Note", exact=True)).to_have_value(BLOCKED)  # kept as typed
    await expect(page.get_by_label("Progress toward the goal")).to_have_value("Housing application filled in")
    await checks.visit(page, "note blocked")
    await page.get_by_label("Note", exact=True).fill(FIXED)
    await expect(feedback).to_have_attribute("data-verdict", "hold")  # the same verdict as the submission
    await page.get_by_role("button", name="Submit note").click()
    await expect(page.locator("#notice")).to_contain_text("waiting for your supervisor")
    await expect(page.locator("#note-state")).to_have_text("Held")
    await checks.visit(page, "note held")
    await page.get_by_role("link", name="My notes", exact=True).click()
    await checks.visit(page, "my notes")
    await sign_out(page)


async def supervisor_returns_it(day: Day) -> None:
    page, checks = day.page, day.checks
    await sign_in(page, day.supervisor)
    await expect(page.locator("#held")).to_contain_text(day.clinic.name)
    await checks.visit(page, "supervisor home")
    await page.get_by_role("link", name="To review").click()
    await checks.visit(page, "queue")
    await page.locator("#queue-list").get_by_role("link", name="Read and decide").first.click()
    await expect(page.locator("#note-text")).to_contain_text("housing application")
    await checks.visit(page, "supervisor note")
    await page.get_by_label("What should the author change?").fill(RETURN_COMMENT)
    await page.get_by_role("button", name="Return to the author").click()
    await expect(page.locator("#notice")).to_contain_text("Returned to the author")
    await expect(page.locator("#held")).to_have_count(0)  # with the author now
    await sign_out(page)


async def peer_revises_it(day: Day) -> None:
    page, checks = day.page, day.checks
    await sign_in(page, day.peer)
    await expect(page.locator("#held-mine")).to_contain_text("Returned to you")
    await page.locator("#held-mine").get_by_role("link").first.click()
    await expect(page.locator("#returned-comment")).to_contain_text(RETURN_COMMENT)
    await checks.visit(page, "note returned")
    await page.get_by_role("link", name="Revise the note").click()
    await expect(page.get_by_label("Note", exact=True)).to_have_value(FIXED)
    await page.get_by_label("Note", exact=True).fill(REVISED)
    await checks.visit(page, "note revise")
    await page.get_by_role("button", name="Submit note").click()
    await expect(page.locator("#note-state")).to_have_text("Held")
    await sign_out(page)


async def supervisor_cosigns_it(day: Day) -> None:
    page = day.page
    await sign_in(page, day.supervisor)
    await page.locator("#held").get_by_role("button", name="Co-sign").first.click()
    await expect(page.locator("#notice")).to_contain_text("Co-signed")
    await day.checks.visit(page, "co-signed")
    await sign_out(page)


async def peer_completes_the_referral(day: Day) -> None:
    page, checks, clinic = day.page, day.checks, day.clinic
    await sign_in(page, day.peer)
    await page.get_by_role("link", name="Caseload", exact=True).click()
    await expect(page.locator("#caseload")).to_contain_text(clinic.name)
    await expect(page.locator("#caseload")).to_contain_text("Housing office")  # the next appointment
    await checks.visit(page, "caseload")
    await page.locator("#caseload").get_by_role("link", name=clinic.name).click()
    # the session's Encounter and Procedure and the note, delivered: offered, ticked
    await expect(page.get_by_role("checkbox")).to_have_count(3)
    await checks.visit(page, "referral complete form")
    await page.get_by_role("button", name="Complete the referral").click()
    await expect(page.locator("#notice")).to_contain_text(f"Completed: {clinic.name}")
    await checks.visit(page, "referral completed")
    await page.get_by_role("link", name="My notes", exact=True).click()
    await expect(page.locator("#my-notes .state").first).to_have_text("Sent")
    await checks.visit(page, "my notes sent")


async def the_ehr_holds_the_day(exchange: ExchangeService, clinic: Clinic) -> None:
    ehr = exchange.clients["clinic"]
    task = await ehr.read_raw(f"Task/{clinic.task_id}")
    assert task["status"] == "completed"
    refs = sorted(o["valueReference"]["reference"] for o in task["output"])
    assert [r.split("/")[0] for r in refs] == ["DocumentReference", "Encounter", "Procedure"]
    resources = {r.split("/")[0]: await ehr.read_raw(r) for r in refs}
    assert resources["DocumentReference"]["docStatus"] == "final"  # co-signed
    assert resources["Encounter"]["location"][0]["location"]["display"] == "Central library"
    attachment = resources["DocumentReference"]["content"][0]["attachment"]
    assert "check in with her on Tuesday" in base64.b64decode(attachment["data"]).decode()  # the revision


RISK_TEXT = "She said she has been thinking about ending her life and has pills saved up."


async def test_risk_language_brings_crisis_resources_and_the_escalation_is_recorded_from_the_note(
    story_page: tuple[Page, PageChecks], signin_bridge: SigninBridge
) -> None:
    page, checks = story_page
    checks.folder += "-risk"
    exchange = signin_bridge.exchange
    clinic = await place_referral(exchange)
    peer, supervisor = _people(signin_bridge)

    await sign_in(page, peer)
    await page.locator(f'[id="referral-{clinic.referral_id}"]').get_by_role("button", name="Accept").click()
    await page.get_by_role("link", name="Log a session").click()
    await page.get_by_label("Place").fill("Her apartment")
    await page.get_by_label("Where").select_option("home")
    await page.get_by_role("button", name="Save session and write the note").click()
    await page.get_by_label("Progress toward the goal").fill("Safety plan started")
    await page.get_by_label("Note", exact=True).fill(RISK_TEXT)
    await expect(page.locator("#note-feedback")).to_have_attribute("data-verdict", "hold")
    crisis = page.locator("#crisis-live")
    await expect(crisis).to_be_visible()
    await expect(crisis).to_contain_text("988")
    await checks.visit(page, "note risk live")
    await page.get_by_role("button", name="Submit note").click()
    await expect(page.locator("#notice")).to_contain_text("risk of harm")
    await expect(page.locator("main")).to_contain_text("988")
    await expect(page.locator("#escalation")).to_be_visible()  # the peer can record it here too
    await checks.visit(page, "note risk held")
    await sign_out(page)

    await sign_in(page, supervisor)
    await expect(page.locator("#risk-badge")).to_have_text("1 risk")
    await page.get_by_role("link", name="To review").click()
    await page.locator("#queue-list .risk").get_by_role("link", name="Read and decide").click()
    await page.get_by_role("button", name="Co-sign").click()
    # co-signed, but still held: the page says what remains, and the button is gone
    await expect(page.locator("#notice")).to_contain_text("One thing remains")
    await expect(page.get_by_role("button", name="Co-sign")).to_have_count(0)
    await checks.visit(page, "risk co-signed, escalation remains")
    await page.get_by_label("Who you told").fill("Dr. Sam Patel")
    await page.get_by_label("Their role").select_option("clinician")
    await page.get_by_label("How").select_option("phone call")
    await page.get_by_role("button", name="Record escalation").click()
    await expect(page.locator("#notice")).to_contain_text("on its way to the clinic")
    await checks.visit(page, "escalation recorded")
    await exchange.worker.drain("clinic")
    notes = [s for s in await exchange.submissions.list() if s.kind == "note"]
    assert notes[-1].state == "delivered" and "DocumentReference" in notes[-1].fhir_ids
    assert checks.problems == [], "\n".join(checks.problems)
