"""Note content rules: the kinds of matcher a rule file can ask for.

- ``pattern``   any of ``patterns`` matches, outside the contexts listed in ``unless`` and not
                overlapped by an ``allow`` form in the same clause.
- ``near``      a ``first`` term and a ``then`` term within ``window`` words of each other in one
                sentence (e.g. a drug screen and an interpretation cue: "UDS positive for fentanyl,
                which means she relapsed").
- ``directive`` someone (the peer, unless the context says otherwise) tells the person to do an
                ``action`` to an ``object``: "told her to cut her dose to 8 mg". The complement of the
                directive is read word by word: filler words ("her", "that she", "should", "try") are
                skipped, then the first verb decides. An ``allowed_actions`` verb ("ask her prescriber",
                "talk to her doctor") makes it an allowed form; an ``actions`` verb followed by an
                ``object`` within ``window`` words is a violation unless an ``allow`` tail follows
                ("take it as prescribed"). After a negator ("told her not to ...") the plainer
                ``negated_actions`` ("take", "use", "fill") count too: that is a stop instruction,
                unless an ``allow_when_negated`` tail follows ("... without talking to her doctor").
                A ``pronoun_objects`` word ("stop taking it") stands for a medication named in the
                same or the previous sentence; an ``object_breaks`` word ("for", "with") ends the
                search for the object. After a ``statement_fillers`` word ("told her that ...") a
                verb in -ing is the subject of a statement, not an instruction.

Every kind, and the ``vocabulary`` kind that has nothing else, can also fire on vocabulary terms
(:mod:`bridge.roles.vocabulary`), which is how clinical acts are found on words they were not written for:

- ``terms``  any term of the listed classes ("therapy-delivered", "risk-preparation").
- ``acts``   a clinical act: every ``cues`` group (classes) has a term in one clause (or sentence),
             within ``window`` words of the first, and every ``objects`` group has a term in the same
             sentence or the one before (not with ``back = false``), within ``reach`` words of the
             first cue (after it, when ``ordered``): "told him" + "double up" + a medication name.
             An allowed form near its cues (or, with ``allow_on = "all"``, near any of its words)
             lets the act pass. Cues are judged in context (``unless``); objects are not: "she
             said she ran out of her Seroquel, so I told her to take two tonight" names the drug
             in reported speech and advises in the peer's own.
- ``allow_terms``  a term of these classes in the same clause makes the hit an allowed form
             ("ask her prescriber about ...", "as prescribed").
- ``mask_terms``   a hit overlapping a term of these classes is none ("gonna kill me" is an idiom).
- ``question_terms`` hits in a sentence holding such a term and a negation are a screening
             question answered no ("asked about thoughts of hurting himself, he denied").

- ``model``  a learned text screen over the whole note (:class:`ModelRule`, weights in
             :mod:`bridge.roles.model`).

All matchers return :class:`Evidence` with offsets into the original text; none of them do I/O.
Longer than most modules (~470 lines) because every kind shares :class:`RuleBase`'s context
handling (suppression, allowed forms, masks, screening questions answered no) and the loader
names the kinds as one union; split per kind, each file would import the base back for most of
its logic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.roles.decision import Evidence, Severity
from bridge.roles.language import Analysis
from bridge.roles.model import TextScreen
from bridge.roles.vocabulary import TermHit, Token

ALLOW_REACH = 8  # words between a hit and the allowed form that excuses it (a rule may set its own)


@dataclass(frozen=True, slots=True)
class Act:
    """A clinical act as vocabulary classes that must meet in one clause (or sentence)."""

    cues: tuple[frozenset[str], ...]
    objects: tuple[frozenset[str], ...] = ()
    window: int = 8
    scope: str = "clause"  # or "sentence"
    reach: int = 8  # words from the first cue to an object
    ordered: bool = False  # objects follow the first cue ("has" + "PTSD", not "PTSD ... has")
    # where an allowed form excuses the act: near its cues ("told her to ask her prescriber"), or near
    # any of its words ("DBT group at the clinic; I'll text her" places the therapy elsewhere)
    allow_on: str = "cues"
    back: bool = True  # objects may stand in the sentence before the cue's


@dataclass(frozen=True, slots=True)
class RuleBase:
    id: str
    severity: Severity
    message: str
    roles: frozenset[str]
    unless: frozenset[str]
    satisfied_by: str | None = None
    terms: frozenset[str] = frozenset()
    acts: tuple[Act, ...] = ()
    allow_terms: frozenset[str] = frozenset()
    allow_scope: str = "clause"  # or "sentence": where an allowed term excuses a hit
    allow_reach: int = ALLOW_REACH
    # a hit that overlaps a term of these classes is not one ("my boss is gonna kill me" is an idiom)
    mask_terms: frozenset[str] = frozenset()
    # hits in a sentence with a term of these classes and a negation are a question answered no
    question_terms: frozenset[str] = frozenset()
    # a review rule gives way: its hits that overlap another rule's evidence are not reported
    defer: bool = False
    # allowed forms as patterns: a match in the same clause excuses a hit (each kind may add more)
    allow: tuple[re.Pattern[str], ...] = ()

    def _suppressed(self, analysis: Analysis, start: int, end: int) -> bool:
        return bool(self.unless and (analysis.contexts(start, end) & self.unless))

    def find(self, analysis: Analysis) -> list[Evidence]:
        found = [ev for ev in self._find_patterns(analysis) if not self._excused(analysis, ev.start, ev.end)]
        if self.terms or self.acts:
            found.extend(self._find_terms(analysis))
            found.extend(self._find_acts(analysis))
        return _dedupe(found, analysis.text)

    def _find_patterns(self, analysis: Analysis) -> list[Evidence]:
        return []

    def _masked(self, analysis: Analysis, start: int, end: int) -> bool:
        if self.mask_terms and any(
            t.start < end and start < t.end for t in analysis.terms_of(self.mask_terms)
        ):
            return True
        if self.question_terms:
            return _answered_no(analysis, self.question_terms, start, end)
        return False

    def _excused(self, analysis: Analysis, start: int, end: int) -> bool:
        return self._masked(analysis, start, end) or self._term_allowed(analysis, start)

    def _term_allowed(self, analysis: Analysis, start: int) -> bool:
        """An allowed form near the hit: in its clause (or sentence, with ``allow_scope``) and within
        ``allow_reach`` words (notes dictated without punctuation are one long clause; a "clinic"
        forty words away is no deferral). A negated one does not count: "no need to wait for the
        doctor" defers nothing."""
        if not self.allow_terms:
            return False
        c0, c1 = (analysis.sentence_at if self.allow_scope == "sentence" else analysis.clause_at)(start)
        at = analysis.token_index(start)
        return any(
            c0 <= t.start < c1
            and abs(t.first - at) <= self.allow_reach
            and "negated" not in analysis.contexts(t.start, t.end)
            for t in analysis.terms_of(self.allow_terms)
        )

    def _find_terms(self, analysis: Analysis) -> list[Evidence]:
        out = []
        for t in analysis.terms_of(self.terms):
            if self._suppressed(analysis, t.start, t.end) or self._excused(analysis, t.start, t.end):
                continue
            if _allowed_by(self.allow, analysis, t.start, t.end):
                continue
            out.append(_evidence(analysis.text, t.start, t.end, (t,)))
        return out

    def _find_acts(self, analysis: Analysis) -> list[Evidence]:
        out = []
        for act in self.acts:
            groups = [analysis.terms_of(g) for g in act.cues]
            objects = [analysis.terms_of(g) for g in act.objects]
            if not all(groups) or not all(objects):
                continue
            for anchor in groups[0]:
                ev = self._act_at(analysis, act, anchor, groups[1:], objects)
                if ev is not None:
                    out.append(ev)
        return out

    def _act_at(
        self,
        analysis: Analysis,
        act: Act,
        anchor: TermHit,
        cues: list[list[TermHit]],
        objects: list[list[TermHit]],
    ) -> Evidence | None:
        c0, c1 = (analysis.clause_at if act.scope == "clause" else analysis.sentence_at)(anchor.start)
        if self._suppressed(analysis, anchor.start, anchor.end):
            return None
        chosen = [anchor]
        for group in cues:  # the act's words: in its clause, near the first, in the peer's voice
            near = [
                t
                for t in group
                if c0 <= t.start < c1
                and not _overlaps(t, anchor)
                and abs(t.first - anchor.first) <= act.window
                and not self._suppressed(analysis, t.start, t.end)
            ]
            if not near:
                return None
            chosen.append(min(near, key=lambda t: abs(t.first - anchor.first)))
        s0, s1 = analysis.sentence_at(anchor.start)
        if act.back:  # "His viral load was 48. I told him this means..."
            s0 = analysis.sentence_at(max(s0 - 1, 0))[0]
        for group in objects:  # what it acts on: in this sentence or the one before, whoever named it
            near = [
                t
                for t in group
                if s0 <= t.start < s1
                and not _overlaps(t, anchor)
                and abs(t.first - anchor.first) <= act.reach
                and (not act.ordered or t.first > anchor.last)
            ]
            if not near:
                return None
            # the nearest, after the cue when there is a choice ("his meds ... told him to stop the Seroquel")
            chosen.append(
                min(near, key=lambda t: abs(t.first - anchor.first) + (3 if t.first < anchor.first else 0))
            )
        start, end = min(t.start for t in chosen), max(t.end for t in chosen)
        judged = chosen if act.allow_on == "all" else chosen[: 1 + len(cues)]
        if any(self._masked(analysis, t.start, t.end) for t in chosen):
            return None
        if any(self._term_allowed(analysis, t.start) for t in judged) or _allowed_by(
            self.allow, analysis, start, end
        ):
            return None
        return _evidence(analysis.text, start, end, tuple(chosen))


_ANSWER = re.compile(r"[^.;:?\n]{0,30}?\s*(?:[:?]|\s[-\u2013]\s)\s*")
_SUBJECT = re.compile(r"(?:pt|client|participant|she|he|they|member)\s+", re.IGNORECASE)


def _answered_no(analysis: Analysis, question_terms: frozenset[str], start: int, end: int) -> bool:
    """A screening question answered no: a question term in the hit's sentence with a negation after
    it ("asked Dale if he's had any thoughts of hurting himself and he said no"), a form's line
    answered no ("Anyone hurting her: denied."), or a sentence that is itself a question answered by
    a negation opening the next ("thoughts of harming self? denies")."""
    s0, s1 = analysis.sentence_at(start)
    # a screening form's line: "Anyone hurting her: denied.", "SI? no", "thoughts of self-harm - denies"
    m = _ANSWER.match(analysis.text, end, s1)
    if m is not None:
        w = _SUBJECT.match(analysis.text, m.end(), s1)  # "SI: pt denied"
        at = [m.end()] + ([w.end()] if w is not None and w.end() > m.end() else [])
        if any(analysis.lexicon.negation.match(analysis.text, pos) for pos in at):
            return True
    asked = [t.start for t in analysis.terms_of(question_terms) if s0 <= t.start < s1]
    if asked and any(min(asked) < n0 < s1 for n0, _ in analysis.negated):
        return True
    text = analysis.text
    if text[s0:s1].rstrip().endswith("?"):
        m = _SPACE.match(text, s1)
        nxt = m.end() if m else s1
        return analysis.lexicon.negation.match(text, nxt) is not None
    return False


def _allowed_by(allow: tuple[re.Pattern[str], ...], analysis: Analysis, start: int, end: int) -> bool:
    if not allow:
        return False
    c0, c1 = analysis.clause_at(start)
    for pattern in allow:
        for m in pattern.finditer(analysis.text, c0, c1):
            if m.start() < end and start < m.end():
                return True
    return False


def _overlaps(a: TermHit, b: TermHit) -> bool:
    return a.start < b.end and b.start < a.end


def _dedupe(found: list[Evidence], text: str) -> list[Evidence]:
    """Merge overlapping hits, so one phrase is reported once per rule with all its words."""
    out: list[Evidence] = []
    for ev in sorted(found, key=lambda e: (e.start, -e.end)):
        if out and ev.start < out[-1].end:
            if ev.end > out[-1].end or ev.terms:
                last = out[-1]
                merged = _evidence(text, last.start, max(ev.end, last.end))
                out[-1] = Evidence(
                    merged.text, merged.start, merged.end, tuple(dict.fromkeys(last.terms + ev.terms))
                )
            continue
        out.append(ev)
    return out


_SPACE = re.compile(r"[\s,]*")


def _skip_space(text: str, pos: int) -> int:
    m = _SPACE.match(text, pos)
    return m.end() if m else pos


def _evidence(text: str, start: int, end: int, hits: tuple[TermHit, ...] = ()) -> Evidence:
    terms = tuple(dict.fromkeys(f"{h.vocabulary}:{h.entry}" for h in hits))
    return Evidence(text=text[start:end], start=start, end=end, terms=terms)


@dataclass(frozen=True, slots=True)
class PatternRule(RuleBase):
    patterns: tuple[re.Pattern[str], ...] = ()

    def _find_patterns(self, analysis: Analysis) -> list[Evidence]:
        found: list[Evidence] = []
        for pattern in self.patterns:
            for m in pattern.finditer(analysis.text):
                if m.end() == m.start() or self._suppressed(analysis, m.start(), m.end()):
                    continue
                if _allowed_by(self.allow, analysis, m.start(), m.end()):
                    continue
                found.append(_evidence(analysis.text, m.start(), m.end()))
        return _dedupe(found, analysis.text)


@dataclass(frozen=True, slots=True)
class NearRule(RuleBase):
    first: tuple[re.Pattern[str], ...] = ()
    then: tuple[re.Pattern[str], ...] = ()
    window: int = 10
    ordered: bool = False

    def _find_patterns(self, analysis: Analysis) -> list[Evidence]:
        text = analysis.text
        found: list[Evidence] = []
        for fp in self.first:
            for a in fp.finditer(text):
                s0, s1 = analysis.sentence_at(a.start())
                for tp in self.then:
                    for b in tp.finditer(text, s0, s1):
                        if self.ordered and b.start() < a.end():
                            continue
                        lo, hi = (a, b) if a.start() <= b.start() else (b, a)
                        gap = len(analysis.words_after(lo.end(), self.window + 1, hi.start()))
                        if gap > self.window:
                            continue
                        start, end = lo.start(), max(a.end(), b.end())
                        if self._suppressed(analysis, start, end):
                            continue
                        if _allowed_by(self.allow, analysis, start, end):
                            continue
                        found.append(_evidence(text, start, end))
                        break
        return _dedupe(found, analysis.text)


@dataclass(frozen=True, slots=True)
class DirectiveRule(RuleBase):
    directives: tuple[re.Pattern[str], ...] = ()
    fillers: re.Pattern[str] | None = None
    negators: re.Pattern[str] | None = None
    actions: re.Pattern[str] | None = None
    negated_actions: re.Pattern[str] | None = None
    allowed_actions: re.Pattern[str] | None = None
    objects: re.Pattern[str] | None = None
    pronoun_objects: re.Pattern[str] | None = None
    object_breaks: re.Pattern[str] | None = None
    statement_fillers: re.Pattern[str] | None = None
    allow_when_negated: tuple[re.Pattern[str], ...] = ()
    window: int = 6
    max_fillers: int = 6

    def _find_patterns(self, analysis: Analysis) -> list[Evidence]:
        text = analysis.text
        found: list[Evidence] = []
        for dp in self.directives:
            for d in dp.finditer(text):
                if self._suppressed(analysis, d.start(), d.end()):
                    continue
                ev = self._complement(analysis, d)
                if ev is not None:
                    found.append(ev)
        return _dedupe(found, analysis.text)

    def _complement(self, analysis: Analysis, d: re.Match[str]) -> Evidence | None:
        text = analysis.text
        _, clause_end = analysis.clause_at(d.start())
        pos = d.end()
        negated = statement = False
        for _ in range(self.max_fillers + 1):
            pos = _skip_space(text, pos)
            if self.negators is not None and (n := self.negators.match(text, pos, clause_end)):
                negated, pos = True, n.end()
                continue
            st = self.statement_fillers.match(text, pos, clause_end) if self.statement_fillers else None
            if st is not None:
                statement, pos = True, st.end()
                continue
            if self.fillers is not None and (f := self.fillers.match(text, pos, clause_end)):
                pos = f.end()
                continue
            break
        if self.allowed_actions is not None and self.allowed_actions.match(text, pos, clause_end):
            return None
        a = self.actions.match(text, pos, clause_end) if self.actions is not None else None
        if a is None and negated and self.negated_actions is not None:
            a = self.negated_actions.match(text, pos, clause_end)
        if a is None:
            return None
        if statement and a.group().split()[0].lower().endswith("ing"):
            return None  # "told her that stopping Suboxone suddenly can cause withdrawal": education
        words = analysis.words_after(a.end(), self.window, clause_end)
        limit = words[-1].end() if words else a.end()
        if self.object_breaks is not None and (b := self.object_breaks.search(text, a.end(), limit)):
            limit = b.start()  # "start a pill organizer for her meds": the meds are not the object
        end = a.end()
        if self.objects is not None:
            # the last medication word or dose in reach: "cut her dose to 8 mg" is all evidence
            # from the action's start: "take her trazodone earlier" names the drug inside the action
            hits = list(self.objects.finditer(text, a.start(), limit))
            if not hits and self.pronoun_objects is not None:
                hits = self._pronoun(analysis, d.start(), a.end(), limit)
            if not hits:
                return None
            end = hits[-1].end()
        tail = (end, clause_end)
        if any(p.search(text, *tail) for p in self.allow):
            return None
        if negated and any(p.search(text, *tail) for p in self.allow_when_negated):
            return None
        return _evidence(text, d.start(), end)

    def _pronoun(self, analysis: Analysis, start: int, pos: int, limit: int) -> list[re.Match[str]]:
        """A pronoun object ("stop taking it") whose antecedent is a medication word in this
        sentence or the one before it."""
        assert self.pronoun_objects is not None and self.objects is not None
        p = self.pronoun_objects.search(analysis.text, pos, limit)
        if p is None:
            return []
        s0, _ = analysis.sentence_at(start)
        prev0, _ = analysis.sentence_at(max(s0 - 1, 0))
        return [p] if self.objects.search(analysis.text, prev0, start) else []


@dataclass(frozen=True, slots=True)
class VocabularyRule(RuleBase):
    """A rule that fires on vocabulary terms and acts alone (no patterns of its own)."""


@dataclass(frozen=True, slots=True)
class ModelRule(RuleBase):
    """A learned text screen over the whole note (:mod:`bridge.roles.model`): when the note scores
    ``threshold`` or more, the ``evidence`` sentences that weighed most towards it are shown.
    Words of a ``mask_terms`` class (idioms) do not count, nor words in an ``unless`` context;
    train the screen with the same settings (scripts/train_text_screen.py masks idioms only)."""

    screen: TextScreen | None = None
    threshold: float = 0.5
    evidence: int = 3

    def find(self, analysis: Analysis) -> list[Evidence]:
        if self.screen is None:
            return []
        tokens = analysis.tokens
        skip = self._skipped(analysis, tokens)
        found = self.screen.contributions(tokens, skip)
        score = self.screen.score(found)
        if score < self.threshold:
            return []
        # the sentences that weigh most towards the score: a reader sees where, not a word list
        by_sentence: dict[tuple[int, int], float] = {}
        for c in found:
            span = analysis.sentence_at(c.start)
            by_sentence[span] = by_sentence.get(span, 0.0) + c.weight
        top = sorted((w, span) for span, w in by_sentence.items() if w > 0)[-self.evidence :]
        label = f"{self.id.removeprefix('content.')}:score {score:.2f}"
        out = []
        for _, (s0, s1) in sorted(top, key=lambda ws: ws[1]):
            ev = _evidence(analysis.text, s0, s1)
            lead = len(ev.text) - len(ev.text.lstrip())
            body = ev.text.strip()
            out.append(Evidence(body, s0 + lead, s0 + lead + len(body), (label,)))
        return out

    def _skipped(self, analysis: Analysis, tokens: tuple[Token, ...]) -> frozenset[int]:
        spans = [(t.start, t.end) for t in analysis.terms_of(self.mask_terms)] if self.mask_terms else []
        if self.unless:
            spans.extend((t.start, t.end) for t in tokens if analysis.contexts(t.start, t.end) & self.unless)
        if not spans:
            return frozenset()
        return frozenset(i for i, t in enumerate(tokens) if any(s < t.end and t.start < e for s, e in spans))


ContentRule = PatternRule | NearRule | DirectiveRule | VocabularyRule | ModelRule
