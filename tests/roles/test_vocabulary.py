"""Vocabularies: every class in the rule files loads, finds a term it should, and passes a near miss.

Also the matcher itself (stems, gaps, sentence marks, misspellings) and the vocabulary errors a rule
file can make."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bridge.errors import RuleFileError
from bridge.roles import Policy, load_policy
from bridge.roles.vocabulary import Vocabulary, tokenize

RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "rules"

# class -> (a text with one of its terms, the entry it must find, a near miss it must not find)
CASES: dict[str, tuple[str, str, str]] = {
    "medication": ("She takes Sublocade monthly.", "buprenorphine", "She sublets a room."),
    "medication-common": ("He ran out of quetiapene.", "quetiapine", "He was serious about it."),
    "medication-generic": ("Her pills are at home.", "pills", "The medical questions are for the doctor."),
    "substance": ("He used fentanyl Friday.", "fentanyl", "He went to the library Friday."),
    "condition": (
        "Talked about schizoaffective disorder.",
        "F25 schizoaffective disorder",
        "Talked about school.",
    ),
    "condition-lay": ("She mentioned paranoia.", "paranoia", "She mentioned parades."),
    "diagnosis-statement": ("In early remission.", "in early remission", "Early for the remittance."),
    "diagnose-strong": ("This is textbook burnout.", "textbook", "This is a text."),
    "diagnose-has": ("He has a cold.", "has", "Hasty exit."),
    "diagnosis-severity": ("Severe OUD.", "severe", "Severed ties with that crowd."),
    "attribution": ("Per chart, yes.", "per chart", "Perch art class."),
    "assessment-heading": ("Assessment: fine.", "assessment", "Asked about the bus route."),
    "mse": ("Psychomotor slowing noted.", "psychomotor slowing", "Motor vehicle office."),
    "result-measure": ("His A1c came in.", "hemoglobin A1c", "His AC came on."),
    "result-meaning": ("It is elevated.", "elevated", "The stairs are out."),
    "result-reading": ("Which indicates use.", "indicates", "The turn signal light."),
    "purpose-clause": ("Wrote it down so she doesn't forget.", "so she doesn t forget", "So she forgot."),
    "therapy-modality": ("We discussed EMDR.", "EMDR", "We discussed embers."),
    "therapy-generic": ("Her counseling is Tuesday.", "counseling", "Her council is Tuesday."),
    "therapy-delivered": ("We practiced it.", "practiced", "The ball field."),
    "therapy-elsewhere": ("Every week she goes to IOP.", "iop", "Every week she bakes bread."),
    "advice": ("I suggested it.", "suggested", "The mailbox."),
    "med-change": ("Double up tonight.", "double up", "Doubtful tonight."),
    "med-change-core": ("Skipping doses.", "skip", "Ski trip."),
    "med-deferral": ("Check with her prescriber first.", "check with", "Her sister came first."),
    "harm-reduction": ("Gave out Narcan.", "narcan", "Gave out napkins."),
    "clinician": ("Her psychiatrist called.", "psychiatrist", "Her psychic called."),
    "person-question": ("She is worried.", "worried", "She is wary."),
    "person-acting": ("He skipped it.", "he skipped", "I skipped it."),
    "lived-experience": ("In my addiction I lied.", "in my addiction", "In my addition I erred."),
    "risk-history": ("Lost his friend to suicide years ago.", "years ago", "Lost his friend at the fair."),
    "risk-question": (
        "Asked about thoughts of harm.",
        "asked * about thoughts of",
        "Told him about the bus.",
    ),
    "risk": ("He has been stockpiling.", "means", "He has been stocking shelves."),
    "risk-means": ("A rope in the trunk.", "rope", "A robe in the trunk."),
    "risk-intent": ("He is thinking about it.", "thinking about", "He is thankful."),
    "risk-harm-verb": ("Wants to stab him.", "stab", "Wants to stay."),
    "risk-access": ("He has access to it.", "access to", "He has success."),
    "risk-death": ("Talked of death.", "death", "Talked of debt."),
    "risk-hopeless": ("Feels hopeless.", "hopeless", "Feels hopeful."),
    "risk-farewell": ("Texted goodbye.", "goodbye", "Texted good news."),
    "risk-weapon": ("Owns a revolver.", "revolver", "Owns a cordless drill."),
    "risk-violence": ("He slapped her.", "slap", "He slept."),
    "risk-injury": ("Bruises on her arm.", "bruise", "Bruins on TV."),
    "risk-neglect": ("The kids were neglected.", "neglect", "The kids were nested."),
    "risk-victim": ("Her toddler was there.", "toddler", "Her tablet was there."),
    "risk-self": ("He hurt himself.", "himself", "He hurt his back."),
    "risk-excused": ("Her dad passed away.", "grief", "Her dad passed the exam."),
    "crisis-resource": ("She has the 988 card.", "crisis resource", "She has 98 cards."),
    "risk-stockpile": ("She has been stashing pills.", "stash", "She has been washing dishes."),
    "risk-event": ("She led a training today.", "training", "She took the train today."),
    "idiom": ("My boss is gonna kill me.", "idiom", "My boss is gone."),
}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(RULES_DIR)


def entries(policy: Policy, text: str, cls: str) -> list[str]:
    return [t.entry for t in policy.analyze(text).terms if t.vocabulary == cls]


def test_every_vocabulary_has_a_case(policy: Policy) -> None:
    assert set(policy.lexicon.vocabulary.classes) == set(CASES)
    assert all(n > 0 for n in policy.lexicon.vocabulary.sizes.values())


@pytest.mark.parametrize(("cls", "case"), CASES.items(), ids=list(CASES))
def test_vocabulary_finds_its_term_and_passes_a_near_miss(
    policy: Policy, cls: str, case: tuple[str, str, str]
) -> None:
    text, entry, near_miss = case
    assert entry in entries(policy, text, cls)
    assert entries(policy, near_miss, cls) == []


def test_every_vocabulary_names_its_source(policy: Policy) -> None:
    for name, spec in policy.spec.vocabularies.items():
        assert spec.source.strip(), name
    header = (RULES_DIR / "vocab" / "medications.tsv").read_text().splitlines()[:3]
    assert any("drug-named-entity-recognition" in line and "MIT" in line for line in header)


def test_medication_brands_resolve_to_their_generic_name(policy: Policy) -> None:
    for brand, generic in [
        ("Seroquel", "quetiapine"),
        ("Sublocade", "buprenorphine"),
        ("Antabuse", "disulfiram"),
    ]:
        assert entries(policy, f"about {brand} today", "medication") == [generic]


def test_stems_gaps_and_sentence_marks() -> None:
    v = Vocabulary()
    v.add("x", [("double up", "double up"), ("nobody * miss", "nobody miss")], stemmed=True)
    found = [h.entry for h in v.find(tokenize("He doubled up. Nobody would even miss him."))]
    assert found == ["double up", "nobody miss"]
    assert v.find(tokenize("He doubled. Up the road.")) == []  # never across a sentence mark
    assert v.find(tokenize("nobody at the old place would miss")) == []  # a gap is at most three words


def test_misspellings_one_edit_away_only_for_fuzzy_classes() -> None:
    v = Vocabulary()
    v.add("fuzzy", [("gabapentin", "gabapentin")], stemmed=False, fuzzy=True)
    v.add("exact", [("trazodone", "trazodone")], stemmed=False)
    assert [h.entry for h in v.find(tokenize("gabapentn and gabapentine"))] == ["gabapentin", "gabapentin"]
    assert v.find(tokenize("trazadone")) == []  # not fuzzy
    assert v.find(tokenize("gabbapantine")) == []  # two edits


def test_sud_content_comes_from_the_text_not_the_flag(policy: Policy) -> None:
    assert "fentanyl" in policy.sud_content(
        "She has not used fentanyl since her OTP intake."
    ) or policy.sud_content("She went to her OTP intake.")
    assert policy.sud_content("Helped him apply for a library card.") == ()
    assert policy.sud_content("He denies any alcohol.") == ()  # negated


def test_sud_content_labels_a_note_whose_flag_says_otherwise(policy: Policy) -> None:
    from datetime import UTC, datetime

    from bridge.roles import NoteFacts

    facts = NoteFacts(
        text="Talked about his methadone clinic schedule.",
        audience="care-team",
        recipient="clinic",
        sud_related=False,
        at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    decision = policy.check_note(facts)
    assert decision.disclosure is not None
    codes = [label["code"] for label in decision.disclosure["labels"]]
    assert "42CFRPart2" in codes and decision.disclosure["notice"]


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    shutil.copy(RULES_DIR / "default.toml", tmp_path / "default.toml")
    shutil.copytree(RULES_DIR / "vocab", tmp_path / "vocab")
    return tmp_path


def test_a_rule_naming_an_unknown_vocabulary_names_the_key(rules: Path) -> None:
    (rules / "xx.toml").write_text(
        '[meta]\ndescription = "t"\njurisdiction = "XX"\n[content.risk-of-harm]\nterms = ["risky"]\n'
    )
    with pytest.raises(RuleFileError) as info:
        load_policy(rules, "XX")
    assert (
        info.value.key == "content.risk-of-harm.terms[0]"
        and "unknown vocabulary 'risky'" in info.value.reason
    )


def test_a_missing_vocabulary_file_names_the_file(rules: Path) -> None:
    (rules / "vocab" / "idioms.txt").unlink()
    with pytest.raises(RuleFileError) as info:
        load_policy(rules)
    assert info.value.key.startswith("vocabularies.idiom.files") and "idioms.txt" in info.value.reason


def test_an_overlay_adds_terms_without_replacing_the_files(rules: Path) -> None:
    (rules / "xx.toml").write_text(
        '[meta]\ndescription = "t"\njurisdiction = "XX"\n'
        '[vocabularies.medication]\nadd = ["zorbex => zorbexamide"]\n'
    )
    policy = load_policy(rules, "XX")
    assert entries(policy, "about zorbex now", "medication") == ["zorbexamide"]
    assert entries(policy, "about Seroquel now", "medication") == ["quetiapine"]


def test_a_sud_program_referral_is_part_2(policy: Policy) -> None:
    assert policy.sud_program(["Recovery support"]) and policy.sud_program(["SUD program"])
    assert not policy.sud_program(["Housing navigation", "Mental health"])  # near misses
