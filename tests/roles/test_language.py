"""The text analysis under the content rules: sentences, clauses, and negated/reported/quoted scopes."""

from __future__ import annotations

import pytest

from bridge.domain import Role
from bridge.roles import NoteFacts, Policy, Verdict


def contexts(policy: Policy, text: str, words: str) -> frozenset[str]:
    analysis = policy.analyze(text)
    start = text.index(words)
    return analysis.contexts(start, start + len(words))


def test_abbreviations_do_not_end_sentences(policy: Policy) -> None:
    text = "Met Dr. Lee at 9 a.m. today. She is well! Next visit e.g. Friday?"
    sentences = [text[a:b].strip() for a, b in policy.analyze(text).sentences]
    assert sentences == ["Met Dr. Lee at 9 a.m. today.", "She is well!", "Next visit e.g. Friday?"]


def test_lists_and_blank_lines_split(policy: Policy) -> None:
    text = "Plan:\n- call the clinic\n- bus pass\n\nShe is doing well"
    assert len(policy.analyze(text).sentences) == 4


@pytest.mark.parametrize(
    ("text", "words", "expected"),
    [
        ("She denied any thoughts of suicide.", "suicide", {"negated"}),
        ("She denied SI but said she wants to die.", "wants to die", set()),
        ("No SI; wants to die.", "wants to die", set()),
        ("She is not eating well and wants to die.", "wants to die", set()),
        ("Not feeling it today, one two three four five six seven wants.", "wants", set()),  # 8-word window
        ("She said she wants to die.", "wants to die", {"reported"}),
        ("Her prescriber reduced the dose.", "reduced the dose", {"reported"}),
        ("She said \u201cI want to stop my meds\u201d.", "stop my meds", {"quoted", "reported"}),
        ('I told her, "stop your meds."', "stop your meds", set()),  # the peer's own words
        ("She was tired, and I told her to rest.", "told her", set()),  # a new clause for the peer
        ("She said she was tired, told her to rest.", "told her", set()),  # comma splice
        ("She said she was tired and then told her to rest.", "told her", set()),
        ("Today shared my story and told her to rest.", "told her", set()),  # "Today" is not a speaker
        ("Maria said her doctor wants her to rest.", "wants her", {"reported"}),
        ("She denies any current or past thoughts of harming herself.", "harming herself", {"negated"}),
        ("Writer shared my own story.", "my own story", set()),  # the peer is not reported speech
    ],
)
def test_contexts(policy: Policy, text: str, words: str, expected: set[str]) -> None:
    assert contexts(policy, text, words) == expected


def test_pseudo_negation_is_not_negation(policy: Policy) -> None:
    assert contexts(policy, "Not only is she suicidal, she has a plan.", "suicidal") == frozenset()


def test_curly_apostrophes_and_quotes(policy: Policy) -> None:
    d = policy.check_note(NoteFacts(text="She said she doesn\u2019t want to be alive anymore."))
    assert d.rules_fired == ("content.risk-of-harm",)
    ev = d.violations[0].evidence
    assert ev is not None and ev.text == "doesn\u2019t want to be alive"


def test_evidence_offsets_are_code_points(policy: Policy) -> None:
    text = "\U0001f600 Caf\u00e9 talk. Told him to stop his Xanax."
    d = policy.check_note(NoteFacts(text=text))
    ev = d.violations[0].evidence
    assert ev is not None and text[ev.start : ev.end] == "Told him to stop his Xanax"


def test_crisis_notes_are_held_until_escalated(policy: Policy) -> None:
    crisis = NoteFacts(text="Met her at the ED and stayed until her sister came.", kind="crisis")
    assert policy.check_note(crisis).verdict is Verdict.HOLD
    assert policy.check_note(crisis).violations[0].field == "escalation_ref"
    done = crisis.model_copy(update={"escalation_ref": "Communication/c-9"})
    assert policy.check_note(done).verdict is Verdict.ALLOW
    assert "escalation.crisis-note" in policy.check_note(done).rules_evaluated
    clinician = crisis.model_copy(update={"role": Role.CLINICIAN})
    assert "escalation.crisis-note" not in policy.check_note(clinician).rules_evaluated


def test_same_input_same_answer(policy: Policy) -> None:
    facts = NoteFacts(text="Told her to cut her dose. She said she wants to die. Flat affect.")
    assert policy.check_note(facts) == policy.check_note(facts)
