"""Truth tables for the note content rules, against the real rule files.

Every content rule has cases that fire it (with the evidence expected) and near misses that must
not fire: negation, reported speech, quoting the person, a medication mentioned without advice.
"""

from __future__ import annotations

import pytest

from bridge.domain import Role
from bridge.roles import NoteFacts, Policy, Verdict

# (rule, text, evidence the rule must report)
FIRES: list[tuple[str, str, str]] = [
    ("content.diagnosis-code", "Participant's chart lists F11.20.", "F11.20"),
    ("content.diagnosis-code", "She is working on F10 stuff, per the list.", "F10"),
    ("content.diagnosis-code", "She shared her diagnosis is F33.1 from her psychiatrist.", "F33.1"),
    (
        "content.diagnostic-language",
        "Participant meets criteria for opioid use disorder.",
        "meets criteria for opioid use disorder",
    ),
    ("content.diagnostic-language", "I think she has bipolar disorder.", "I think she has bipolar disorder"),
    ("content.diagnostic-language", "He likely has PTSD from his deployment.", "likely has PTSD"),
    (
        "content.diagnostic-language",
        "Symptoms consistent with major depression.",
        "Symptoms consistent with major depression",
    ),
    (
        "content.diagnostic-language",
        "Participant was diagnosed with schizophrenia.",
        "diagnosed with schizophrenia",
    ),
    # acts on vocabularies: a frame + a diagnosis name the patterns never listed
    ("content.diagnostic-language", "Pt def has ADHD combined type.", "def has ADHD combined type"),
    (
        "content.diagnostic-language",
        "He has schizoaffective disorder and OCD.",
        "has schizoaffective disorder",
    ),
    ("content.diagnostic-language", "Assessment: anhedonia, early remission.", "Assessment: anhedonia"),
    ("content.diagnostic-language", "Checks most of the boxes, so severe OUD.", "severe OUD"),
    (
        "content.diagnostic-language",
        "By now he's probably physically dependent.",
        "s probably physically dependent",
    ),
    (
        "content.medication-change",
        "Said it's fine to double up on his seroquil tonight.",
        "Said it's fine to double up on his seroquil",
    ),
    (
        "content.medication-change",
        "Gave him a couple of my Klonopin to get through the weekend.",
        "Gave him a couple of my Klonopin",
    ),
    (
        "content.medication-change",
        "Suggested she try melatonin on top of her trazodone.",
        "Suggested she try melatonin on top of",
    ),
    (
        "content.screen-interpretation",
        "His A1c is 9.8, I told him that puts him in the diabetic range.",
        "A1c is 9.8, I told him that puts him in the diabetic range",
    ),
    (
        "content.screen-interpretation",
        "Viral load 48. I reassured him this means he's undetectable.",
        "Viral load 48. I reassured him this means he's undetectable",
    ),
    ("content.therapy-claim", "Did two rounds of EMDR bilateral tapping with her.", "Did two rounds of EMDR"),
    ("content.therapy-claim", "We completed a CBT thought record together.", "We completed a CBT"),
    (
        "content.risk-of-harm",
        "He said his family would be better off without him.",
        "be better off without him",
    ),
    (
        "content.risk-of-harm",
        "She has been giving away her things and tying up loose ends.",
        "giving away her things",
    ),
    ("content.risk-of-harm", "He has access to his brother's handgun.", "access to his brother's handgun"),
    (
        "content.risk-of-harm",
        "Her boyfriend put his hands around her neck on Sunday.",
        "hands around her neck",
    ),
    ("content.mental-status", "Psychomotor slowing, restricted affect.", "Psychomotor slowing"),
    (
        "content.clinical-review",
        "Skipping the evening seroquel might help him sleep.",
        "Skipping the evening seroquel",
    ),
    ("content.clinical-review", "Wise mind came up again today.", "Wise mind"),
    ("content.risk-review", "She feels completely hopeless lately.", "hopeless"),
    ("content.risk-of-harm", "She is saving her Seroquel in a sock.", "saving her Seroquel"),  # stockpiling
    (
        "content.risk-of-harm",
        "Anyone hurting her: yes, her boyfriend.",
        "hurting her",
    ),  # a form line, answered yes
    (
        "content.screen-interpretation",
        "The hep C came up reactive so I told him that means he has hep C.",
        "that means he has hep C",
    ),
    (
        "content.medication-change",
        "Told her to take 4 Imodium at a time.",
        "Told her to take 4 Imodium at a time",
    ),
    # a crisis resource beside a warning sign (alone, the 988 card is routine: see the near misses)
    (
        "content.risk-review",
        "Gave him the 988 number since he said he is worthless lately.",
        "988 number since he said he is worthless",
    ),
    # the learned screen: nothing listed, the note as a whole reads like risk (first sentence shown)
    (
        "content.risk-screen",
        "Tina says she has been sleeping in her car since Sunday and her sister will not answer. "
        "She told me she is not sure what the point of trying is anymore and that she just feels done.",
        "Tina says she has been sleeping in her car since Sunday and her sister will not answer.",
    ),
    ("content.risk-review", "Neighbor says the kids are neglected most weekends.", "kids are neglected"),
    (
        "content.risk-review",
        "He texted goodbye and said sorry for everything.",
        "goodbye and said sorry for everything",
    ),
    ("content.medication-change", "Told her to cut her dose to 8 mg.", "Told her to cut her dose to 8 mg"),
    (
        "content.medication-change",
        "I suggested she stop taking her Seroquel.",
        "suggested she stop taking her Seroquel",
    ),
    (
        "content.medication-change",
        "Recommended he go down on his methadone.",
        "Recommended he go down on his methadone",
    ),
    (
        "content.medication-change",
        'I told him, "you should switch to Vivitrol."',
        'told him, "you should switch to Vivitrol',  # the peer's own quote, with its verb
    ),
    (
        "content.medication-change",
        "Advised her to take an extra strip when cravings hit.",
        "Advised her to take an extra strip",
    ),
    (
        "content.medication-change",
        "Told him not to take his Klonopin anymore.",
        "Told him not to take his Klonopin",
    ),
    ("content.medication-opinion", "Honestly he doesn't need those meds.", "he doesn't need those meds"),
    ("content.medication-opinion", "Her dose is too high, she is sleepy all day.", "Her dose is too high"),
    (
        "content.screen-interpretation",
        "UDS positive for fentanyl, which means she relapsed.",
        "UDS positive for fentanyl, which means she relapsed",
    ),
    ("content.screen-interpretation", "His labs came back elevated.", "labs came back elevated"),
    (
        "content.screen-interpretation",
        "The tox screen was positive. So he used this week.",
        "tox screen was positive. So he used",
    ),
    (
        "content.screen-interpretation",
        "The drug screen shows that he is still using.",
        "drug screen shows that he",
    ),
    (
        "content.therapy-claim",
        "Provided individual counseling to participant.",
        "Provided individual counseling",
    ),
    (
        "content.therapy-claim",
        "During today's therapy session we covered triggers.",
        "today's therapy session we",
    ),
    (
        "content.therapy-claim",
        "Writer counseled her on coping skills.",
        "Writer counseled her on coping skills",
    ),
    ("content.risk-of-harm", "She said she wants to kill herself.", "wants to kill herself"),
    ("content.risk-of-harm", "He reported passive SI this week.", "SI"),
    ("content.risk-of-harm", "She said she doesn't want to wake up anymore.", "doesn't want to wake up"),
    ("content.risk-of-harm", "He is thinking about hurting his brother.", "thinking about hurting"),
    ("content.clinical-assessment", "Participant appeared paranoid today.", "appeared paranoid"),
    ("content.clinical-assessment", "He appeared manic and talked fast.", "appeared manic"),
    ("content.stigmatizing-language", "Another dirty UA this week.", "dirty UA"),
    ("content.stigmatizing-language", "He has been hanging around other addicts.", "addicts"),
    (
        "content.medication-change",
        "He asked about his meds and I told him to stop the Seroquel.",
        "told him to stop the Seroquel",
    ),
]

# (rule, text) that must NOT fire that rule
NEAR_MISSES: list[tuple[str, str]] = [
    ("content.diagnosis-code", "He drove his F-150 to the meeting."),
    ("content.diagnosis-code", "It was 98.6F outside, we sat in the shade."),
    ("content.diagnosis-code", "Meeting in room 4F, then lunch."),
    ("content.diagnostic-language", "She shared that she was diagnosed with PTSD in 2019."),  # reported
    ("content.diagnostic-language", "He has never been diagnosed with anything, he said."),  # negated
    ("content.diagnostic-language", 'She said "my doctor says I meet criteria for depression".'),  # quoted
    ("content.diagnostic-language", "Her psychiatrist diagnosed her with bipolar disorder last year."),
    ("content.diagnostic-language", "Severe weather closed the clinic; OUD group moved to Friday."),
    ("content.medication-change", "Encouraged her to ask her prescriber about the dose."),  # allowed form
    (
        "content.medication-change",
        "Met him after his dose this morning. He's been trying to get his birth certificate"
        " so he can get a state ID.",
    ),
    (
        "content.medication-change",
        "Told her about my own first week and said the medical questions are for the doctor.",
    ),
    ("content.medication-change", "Encouraged him to talk with his doctor about tapering methadone."),
    ("content.medication-change", "She said her doctor told her to cut her dose to 8 mg."),  # reported
    ("content.medication-change", "Her prescriber reduced her Suboxone to 8 mg last week."),  # third party
    ("content.medication-change", "Encouraged him to keep taking his medication as prescribed."),
    ("content.medication-change", "Told him not to stop his Suboxone without talking to his prescriber."),
    ("content.medication-change", "She takes Suboxone 16 mg daily and it is helping."),  # mention only
    ("content.medication-change", "I did not tell her to change her dose."),  # negated
    ("content.medication-change", 'She said "I want to stop my Seroquel".'),  # quoting the person
    ("content.medication-change", "Encouraged her to carry Narcan and to use it if a friend overdoses."),
    (
        "content.medication-opinion",
        "She wondered if she really needs her meds; encouraged her to ask her prescriber.",
    ),
    ("content.medication-opinion", "He said he doesn't need his meds anymore."),  # reported
    (
        "content.screen-interpretation",
        "She said her UDS came back positive, which means she has to restart IOP.",
    ),
    ("content.screen-interpretation", "Reminded him of his drug screen on Friday."),
    (
        "content.screen-interpretation",
        "His labs are due Friday. We wrote the date down so he doesn't forget.",
    ),
    ("content.screen-interpretation", "Helped her find the lab for her bloodwork appointment."),
    ("content.therapy-claim", "Drove her to her therapy appointment."),
    ("content.therapy-claim", "Linked him to outpatient counseling at the clinic."),
    ("content.therapy-claim", "Explained that peer support is not therapy or counseling."),
    ("content.therapy-claim", "She said counseling has been helping her a lot."),
    ("content.risk-of-harm", "She denied SI/HI."),
    ("content.risk-of-harm", "He denies any thoughts of harming himself or others."),
    ("content.risk-of-harm", "Attended a suicide prevention training with the team."),
    ("content.risk-of-harm", "She lost her brother to suicide and is grieving."),
    ("content.risk-of-harm", "Her SIL (sister in law) drove her to the meeting."),
    ("content.clinical-assessment", "She said her affect was flat according to her therapist."),
    ("content.clinical-assessment", "He seemed tired but upbeat."),
    ("content.stigmatizing-language", "She celebrated 90 days at Alcoholics Anonymous."),
    ("content.stigmatizing-language", 'He said "I am an addict and I am proud of my recovery."'),
    ("content.medication-change", "He asked me if he should stop taking his Zoloft now that he feels good."),
    ("content.medication-change", "Told her to change pharmacies so her meds are ready sooner."),
    (
        "content.medication-change",
        "Gave her two Narcan kits and showed her how to use them.",
    ),  # harm reduction
    ("content.diagnostic-language", "She has a PTSD support group on Tuesdays."),
    (
        "content.diagnostic-language",
        "He talked about his anxiety before court.",
    ),  # lay word, no diagnosing frame
    (
        "content.screen-interpretation",
        "Her counselor went over her tox screen with her and it showed benzos.",
    ),
    ("content.screen-interpretation", "She is worried her labs will show she has been drinking."),
    ("content.therapy-claim", "Pt going to DBT grp at the clinic Tues; I'll text a reminder."),
    ("content.therapy-claim", "Helped them find the free financial counseling program at the credit union."),
    ("content.risk-of-harm", "My boss is gonna kill me if I am late again."),  # idiom
    ("content.risk-of-harm", "The double shift about killed him and he is dead on his feet."),
    ("content.risk-of-harm", "He jumped off the bus at the wrong stop."),
    ("content.mental-status", "He said his therapist noted a flat affect."),  # reported
    ("content.mental-status", "She is very driven about her job search."),
    (
        "content.clinical-review",
        "He said he has been skipping his meds; encouraged him to tell his psychiatrist.",
    ),
    ("content.clinical-review", "She goes to DBT at the clinic on Mondays."),
    ("content.risk-review", "She denied feeling hopeless."),  # negated
    ("content.risk-review", "Gave her the 988 card like we do with everyone."),  # routine resource
    ("content.risk-of-harm", "She is saving up for a car and put away $40 this week."),
    ("content.risk-of-harm", "Anyone hurting her: denied."),  # a screening form's line answered no
    ("content.risk-of-harm", "Thoughts of hurting self / SI: pt denied."),
    ("content.risk-of-harm", "He said he would die for a cheeseburger."),  # hyperbole
    ("content.screen-interpretation", "Took him to the clinic for his hep C treatment appointment."),
    # the peer's own story, anywhere in the sentence; a DV advocate is a resource
    (
        "content.risk-of-harm",
        "I told him some of my story: that in 2012, after my divorce and losing my kids, "
        "I tried to end my life.",
    ),
    ("content.risk-of-harm", "I reminded everyone the DV advocate is at the house Thursdays."),
    (
        "content.medication-change",
        "Told him to take it one day at a time and keep taking his Suboxone as prescribed.",
    ),
    # the victim word is in the sentence before: no act across a full stop
    (
        "content.risk-review",
        "Luis shared about his daughter's soccer game. Pete hits 1 year off heroin Sunday.",
    ),
    ("content.risk-of-harm", "Thoughts of harming self? denies."),  # a question answered no
    ("content.risk-of-harm", "I asked Dale if he has had any thoughts of hurting himself and he said no."),
    ("content.risk-of-harm", "Misty said this heat is killing her garden."),  # idiom
    (
        "content.risk-screen",
        "Walked with Tomas to the food bank; he picked up groceries and talked about his new job.",
    ),
    (
        "content.risk-review",
        "Her brother died of an overdose years ago and she misses him.",
    ),  # grief, history
    (
        "content.risk-review",
        "He went deer hunting with his rifle and his dad last weekend.",
    ),  # no second sign
]


@pytest.mark.parametrize(("rule", "text", "evidence"), FIRES, ids=[f"{r}:{t[:30]}" for r, t, _ in FIRES])
def test_rule_fires_with_evidence(policy: Policy, rule: str, text: str, evidence: str) -> None:
    decision = policy.check_note(NoteFacts(text=text))
    hits = [v for v in decision.violations if v.rule == rule]
    assert hits, f"{rule} did not fire: {decision.to_dict()}"
    ev = hits[0].evidence
    assert ev is not None
    assert ev.text == evidence
    assert text[ev.start : ev.end] == ev.text


@pytest.mark.parametrize(("rule", "text"), NEAR_MISSES, ids=[f"{r}:{t[:30]}" for r, t in NEAR_MISSES])
def test_near_miss_does_not_fire(policy: Policy, rule: str, text: str) -> None:
    decision = policy.check_note(NoteFacts(text=text))
    assert rule in decision.rules_evaluated
    assert rule not in decision.rules_fired, decision.to_dict()


def test_every_content_rule_has_a_firing_case_and_a_near_miss(policy: Policy) -> None:
    content_ids = {r.id for r in policy.content}
    assert content_ids == {r for r, _, _ in FIRES}
    assert content_ids == {r for r, _ in NEAR_MISSES}


def test_risk_of_harm_holds_until_escalated(policy: Policy) -> None:
    text = "She said she wants to end her life."
    held = policy.check_note(NoteFacts(text=text))
    assert held.verdict is Verdict.HOLD
    escalated = policy.check_note(NoteFacts(text=text, escalation_ref="Task/esc-1"))
    assert escalated.verdict is Verdict.ALLOW
    assert escalated.satisfied == ("content.risk-of-harm",)


def test_clinician_notes_are_not_judged_for_peer_scope(policy: Policy) -> None:
    text = "Meets criteria for F11.20; reduce Suboxone to 8 mg."
    assert policy.check_note(NoteFacts(text=text, role=Role.PEER_SPECIALIST)).verdict is Verdict.BLOCK
    clinician = policy.check_note(NoteFacts(text=text, role=Role.CLINICIAN))
    assert clinician.verdict is Verdict.ALLOW
    assert clinician.rules_evaluated == ()


def test_worst_severity_decides_and_to_dict_has_the_contract(policy: Policy) -> None:
    text = "Writer counseled her. She appeared manic. She said she wants to die."
    d = policy.check_note(NoteFacts(text=text)).to_dict()
    assert d["verdict"] == "block"
    assert [v["severity"] for v in d["violations"]] == ["block", "hold", "warn"]
    for v in d["violations"]:
        assert set(v) >= {"rule", "severity", "message", "evidence"}
        assert text[v["evidence"]["start"] : v["evidence"]["end"]] == v["evidence"]["text"]
    assert "content.diagnosis-code" in d["rules_evaluated"]


def test_log_dict_carries_no_note_words(policy: Policy) -> None:
    d = policy.check_note(NoteFacts(text="Told her to stop her Xanax.")).to_log_dict()
    assert d["violations"][0]["evidence"] == {"start": 0, "end": 26}
    assert "Xanax" not in repr(d)


def test_each_phrase_is_reported_once_per_rule(policy: Policy) -> None:
    d = policy.check_note(NoteFacts(text="She said she wants to kill herself and end it all."))
    risk = [v for v in d.violations if v.rule == "content.risk-of-harm"]
    assert len(risk) == 2
