"""Issue 10, attack 4: CSRF. A page on another port of the same host (same site: SameSite=Strict
lets the cookie through) posted the inbox forms with the victim's cookie, and signed a victim in
as the attacker. Now every inbox form carries a form token and a foreign Origin/Referer is refused."""

from __future__ import annotations

import re

from bridge.mappers import referral_id_for
from tests.security.conftest import People, eventually, task_status

EVIL = "http://127.0.0.1:1"  # another port of the same host: same site, another origin


async def _sign_in(p: People, who: str, role: str = "peer-specialist") -> str:
    token = p.make_token(role, practitioner_id=who)
    resp = await p.client.post("/inbox/login", data={"credential": token}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    page = await (await p.client.get("/inbox")).text()
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, "the page's forms carry a token"
    return found.group(1)


async def test_a_cross_origin_form_cannot_accept_a_referral(with_referral: People) -> None:
    p = with_referral
    [task_id] = p.tasks
    rid = referral_id_for("clinic", task_id)
    key = {"X-API-Key": p.stack.env["BRIDGE_TEST_PEER_KEY"]}

    async def listed() -> bool:
        resp = await p.client.get(f"/api/v1/referrals/{rid}", headers=key)
        return resp.status == 200

    assert await eventually(listed, within=20)
    token = await _sign_in(p, p.certified)
    url = f"/inbox/referrals/{rid}/accept"
    forged = [
        ({"Origin": EVIL}, {"csrf_token": token}, "csrf.origin"),  # even with the token
        ({"Referer": f"{EVIL}/trap.html"}, {}, "csrf.referer"),
        ({"Origin": "null"}, {}, "csrf.origin"),
        ({}, {}, "csrf.token"),  # no Origin sent, no token: the cookie alone is not enough
        ({}, {"csrf_token": "0" * 64}, "csrf.token"),
    ]
    for headers, form, rule in forged:
        resp = await p.client.post(url, data=form, headers=headers, allow_redirects=False)
        assert resp.status == 403, await resp.text()
        body = await resp.json()
        assert (body["code"], body["rule"]) == ("csrf_refused", rule)
    assert await task_status(p, task_id) == "requested"  # nothing moved at the EHR

    own = {"Origin": str(p.client.make_url("")).rstrip("/")}
    resp = await p.client.post(url, data={"csrf_token": token}, headers=own, allow_redirects=False)
    assert resp.status == 303, await resp.text()  # the page's own form still works
    assert await task_status(p, task_id) == "accepted"


async def test_a_cross_origin_form_cannot_cosign(people: People) -> None:
    p = people
    _, held = await p.submit_note(p.provisional)
    sid = held["submission_id"]
    token = await _sign_in(p, p.supervisor, "peer-supervisor")
    for headers, form in (({"Origin": EVIL}, {"csrf_token": token}), ({}, {})):
        resp = await p.client.post(f"/inbox/notes/{sid}/cosign", data=form, headers=headers)
        assert resp.status == 403 and (await resp.json())["code"] == "csrf_refused"
    assert await p.state(sid) == "held"
    for form in ({"escalation_ref": "Task/e-1"},):
        resp = await p.client.post(f"/inbox/notes/{sid}/escalation", data=form, headers={"Origin": EVIL})
        assert resp.status == 403 and (await resp.json())["code"] == "csrf_refused"


async def test_login_csrf_from_another_origin_is_refused(people: People) -> None:
    """The attacker's page signs the victim in as the attacker (whose notes the victim then writes)."""
    p = people
    attacker = p.make_token(practitioner_id=p.certified)
    for headers in ({"Origin": EVIL}, {"Referer": f"{EVIL}/"}):
        resp = await p.client.post(
            "/inbox/login", data={"credential": attacker}, headers=headers, allow_redirects=False
        )
        assert resp.status == 403, await resp.text()
        assert (await resp.json())["code"] == "csrf_refused"
        assert "Set-Cookie" not in resp.headers
    assert (await p.client.get("/inbox")).status == 401  # still signed out


async def test_sign_out_and_session_forms_need_the_token_too(people: People) -> None:
    p = people
    await _sign_in(p, p.certified)
    for path in ("/inbox/logout", "/inbox/encounters", "/inbox/notes"):
        resp = await p.client.post(path, data={}, allow_redirects=False)
        assert resp.status == 403, (path, await resp.text())
    assert (await p.client.get("/inbox")).status == 200  # still signed in
