"""Everyday words that look like rule words: false positives cost trust, so these are pinned.

Each line is a note and the content rules it must fire (usually none)."""

from __future__ import annotations

import pytest

from bridge.roles import NoteFacts, Policy

CASES: list[tuple[str, tuple[str, ...]]] = [
    ("He wanted to kill some time before the meeting.", ()),
    ("She is going to shoot him a text tonight.", ()),
    ("Missing court is going to hurt her chances.", ()),
    ("He is going to kill it at the interview.", ()),
    ("She plans to end things with her boyfriend.", ()),
    ("She has SI joint pain from the accident.", ()),
    ("She missed the therapy session yesterday.", ()),
    ("She has a therapy session Tuesday.", ()),
    ("Asked him to drop off his prescription at the pharmacy.", ()),
    ("Told her to change pharmacies so her meds are ready.", ()),
    ("Encouraged her to start a pill organizer for her meds.", ()),
    ("Encouraged him to start using test strips.", ()),
    ("Told her to start keeping tabs on her spending.", ()),
    ("Told him to start going to medication management.", ()),
    ("She is positive about her progress.", ()),
    ("We met at the lab building cafe and talked about her week.", ()),
    ("He is a big fan of the F-150 and wants to be a mechanic.", ()),
    ("Told her that stopping Suboxone suddenly can cause withdrawal.", ()),  # education
    ("Told her that cutting her dose is something to discuss with her prescriber.", ()),
    ("Told her that she should stop her Suboxone.", ("content.medication-change",)),
    ("Recommended stopping her Xanax.", ("content.medication-change",)),
    ("She took all her meds this morning as prescribed.", ()),
    ("He jumped off the bus at the wrong stop.", ()),
    ("She was diagnosed with breast cancer last year and is scared about chemo.", ()),
    ("He was diagnosed with hep C in jail and wants to get treated.", ()),
    ("Reminded pt to come in Dec 3 and to bring her med list.", ()),
    ("Encouraged pt to inc exercise and f/u w/ PCP.", ()),
    ("Advised pt to d/c Seroquel.", ("content.medication-change",)),
    ("Pt UDS + for cocaine, indicating relapse.", ("content.screen-interpretation",)),
    ("Reminded her to take her meds once a day at breakfast.", ()),
    ("Told him to start taking his vitamins once a day.", ()),
    ("Told her to take her Lexapro at night instead.", ("content.medication-change",)),
    ("Suggested he take his hydroxyzine twice a day instead of once.", ("content.medication-change",)),
    ("She talked about ending her life.", ("content.risk-of-harm",)),
    ("He said he wants to take his own life.", ("content.risk-of-harm",)),
    ("Encouraged him to use less and never use alone.", ()),  # harm reduction is peer work
    ("Told her to stop her Latuda.", ("content.medication-change",)),
    ("He said he wants to hurt his ex.", ("content.risk-of-harm",)),
    ("She talked about taking all of her pills at once.", ("content.risk-of-harm",)),
    ("He said he thought about jumping off the bridge.", ("content.risk-of-harm",)),
    ("He is planning to overdose this weekend.", ("content.risk-of-harm",)),
    ("She said she has a death wish lately.", ("content.risk-of-harm",)),
    ("She is going to kill him.", ("content.risk-of-harm",)),
    ("Told her to hold off on her Seroquel.", ("content.medication-change",)),
    ("Told her to switch to Vivitrol.", ("content.medication-change",)),
    ("Told her to change her dose.", ("content.medication-change",)),
    ("Told him to stop taking his pills.", ("content.medication-change",)),
    ("Suggested she drop her Klonopin.", ("content.medication-change",)),
]


@pytest.mark.parametrize(("text", "rules"), CASES, ids=[t[:40] for t, _ in CASES])
def test_everyday_phrase(policy: Policy, text: str, rules: tuple[str, ...]) -> None:
    assert policy.check_note(NoteFacts(text=text)).rules_fired == rules
