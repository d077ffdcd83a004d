"""Light-weight analysis of a note's text: sentences, clauses, and the contexts a match can sit in.

Content rules fire on words, but the same words mean different things in different contexts:

- **negated**: inside the scope of a negation trigger ("denied any thoughts of suicide"). A
  NegEx-style window: from the trigger forward for ``negation_window`` words, cut short at the end
  of the clause (``;``, "but", "however", ...). Pseudo-negations ("not only", "no doubt") do not count.
- **reported**: the rest of a clause after the person or a third party is named as the speaker or
  actor ("she shared that ...", "her prescriber reduced ...") — the peer is recording, not advising.
- **quoted**: inside quotation marks, unless the peer introduces the quote as their own words
  ("I told her, \"...\""), which makes it the peer's speech again.

The trigger lexicons are data (``[language]`` in the rule files); this module only applies them.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property

from bridge.roles.vocabulary import TermHit, Token, Vocabulary, tokenize

NEGATED = "negated"
REPORTED = "reported"
QUOTED = "quoted"

_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019.\-/][A-Za-z0-9]+)*")
_QUOTE = re.compile(r"\"[^\"\n]{1,800}\"|“[^”\n]{1,800}”")
# Abbreviations that end with a period but do not end a sentence.
_ABBREV = frozenset(
    {"dr", "mr", "mrs", "ms", "st", "vs", "e.g", "i.e", "etc", "approx", "no", "pt", "jr", "sr"}
)
_NEXT_CHAR = re.compile(r"\s*(\S)")
# a dictated note says "period" where the sentence ends ("... in the closet period she said ...")
_SENTENCE_END = re.compile(
    r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s)|\n\s*\n|\n(?=\s*[-*\u2022\d])|(?<=\s)period\b(?!\s+of\b)(?=\s|$)"
)


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Compiled trigger patterns from the ``[language]`` table of the rule files."""

    negation: re.Pattern[str]
    pseudo_negation: re.Pattern[str]
    reported: re.Pattern[str]
    peer_speaker: re.Pattern[str]
    clause_break: re.Pattern[str]
    negation_window: int
    vocabulary: Vocabulary


def _spans_overlap(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


class Analysis:
    """One note's text, segmented, with the negated/reported/quoted spans found once."""

    __slots__ = ("__dict__", "lexicon", "text")

    def __init__(self, text: str, lexicon: Lexicon) -> None:
        self.text = text
        self.lexicon = lexicon

    # --- segmentation --------------------------------------------------------------------------

    @cached_property
    def sentences(self) -> tuple[tuple[int, int], ...]:
        out: list[tuple[int, int]] = []
        start = 0
        for m in _SENTENCE_END.finditer(self.text):
            if m.group().startswith("."):
                word = _last_word(self.text, m.start())
                if word.lower() in _ABBREV or (len(word) == 1 and word.isupper()):
                    continue
                nxt = _NEXT_CHAR.match(self.text, m.end())
                # "9 a.m. today", "approx. 2 hours": an abbreviation, not an end. Dictated and texted
                # notes start sentences in lower case, so case alone does not decide.
                if nxt and nxt.group(1).islower() and ("." in word or len(word) == 1):
                    continue
            out.append((start, m.end()))
            start = m.end()
        if start < len(self.text):
            out.append((start, len(self.text)))
        return tuple(out)

    @cached_property
    def clauses(self) -> tuple[tuple[int, int], ...]:
        out: list[tuple[int, int]] = []
        for s0, s1 in self.sentences:
            start = s0
            for m in self.lexicon.clause_break.finditer(self.text, s0, s1):
                if m.start() > start:
                    out.append((start, m.start()))
                start = m.start()
            out.append((start, s1))
        return tuple(out)

    @cached_property
    def _clause_starts(self) -> list[int]:
        return [c[0] for c in self.clauses]

    @cached_property
    def _sentence_starts(self) -> list[int]:
        return [s[0] for s in self.sentences]

    def clause_at(self, pos: int) -> tuple[int, int]:
        i = max(bisect_right(self._clause_starts, pos) - 1, 0)
        return self.clauses[i] if self.clauses else (0, len(self.text))

    def sentence_at(self, pos: int) -> tuple[int, int]:
        i = max(bisect_right(self._sentence_starts, pos) - 1, 0)
        return self.sentences[i] if self.sentences else (0, len(self.text))

    # --- tokens and vocabulary terms ----------------------------------------------------------

    @cached_property
    def tokens(self) -> tuple[Token, ...]:
        return tokenize(self.text)

    @cached_property
    def terms(self) -> tuple[TermHit, ...]:
        return tuple(self.lexicon.vocabulary.find(self.tokens))

    @cached_property
    def _terms_by_class(self) -> dict[str, list[TermHit]]:
        by: dict[str, list[TermHit]] = {}
        for t in self.terms:
            by.setdefault(t.vocabulary, []).append(t)
        return by

    @cached_property
    def _terms_memo(self) -> dict[frozenset[str], list[TermHit]]:
        return {}

    def terms_of(self, classes: frozenset[str]) -> list[TermHit]:
        """The terms of these classes, in text order (memoised: rules ask for the same sets)."""
        memo = self._terms_memo
        found = memo.get(classes)
        if found is None:
            by = self._terms_by_class
            lists = [by[c] for c in classes if c in by]
            found = lists[0] if len(lists) == 1 else sorted((t for lst in lists for t in lst), key=_start)
            memo[classes] = found
        return found

    @cached_property
    def _token_starts(self) -> list[int]:
        return [t.start for t in self.tokens]

    def token_index(self, pos: int) -> int:
        """Index of the token at or before character ``pos``."""
        return max(bisect_right(self._token_starts, pos) - 1, 0)

    # --- contexts ------------------------------------------------------------------------------

    @cached_property
    def negated(self) -> tuple[tuple[int, int], ...]:
        lex = self.lexicon
        pseudo = [(m.start(), m.end()) for m in lex.pseudo_negation.finditer(self.text)]
        out: list[tuple[int, int]] = []
        for m in lex.negation.finditer(self.text):
            if any(_spans_overlap(m.start(), m.end(), p0, p1) for p0, p1 in pseudo):
                continue
            _, c1 = self.clause_at(m.start())
            end = m.end()
            for count, w in enumerate(_WORD.finditer(self.text, m.end(), c1), start=1):
                end = w.end()
                if count >= lex.negation_window:
                    break
            # the scope starts after the trigger: "doesn't want to live" is not negated by its own "doesn't"
            out.append((m.end(), end))
        return tuple(out)

    @cached_property
    def reported(self) -> tuple[tuple[int, int], ...]:
        out: list[tuple[int, int]] = []
        for m in self.lexicon.reported.finditer(self.text):
            _, c1 = self.clause_at(m.start())
            out.append((m.start(), c1))
        return tuple(out)

    @cached_property
    def quoted(self) -> tuple[tuple[int, int], ...]:
        out: list[tuple[int, int]] = []
        for m in _QUOTE.finditer(self.text):
            s0, _ = self.sentence_at(m.start())
            lead_in = self.text[max(s0, m.start() - 80) : m.start()]
            if self.lexicon.peer_speaker.search(lead_in):
                continue  # the peer quoting themselves: their own words, judged as such
            out.append((m.start() + 1, m.end() - 1))
        return tuple(out)

    @cached_property
    def _starts(self) -> dict[str, list[int]]:
        return {
            NEGATED: [s0 for s0, _ in self.negated],
            REPORTED: [s0 for s0, _ in self.reported],
            QUOTED: [s0 for s0, _ in self.quoted],
        }

    def contexts(self, start: int, end: int) -> frozenset[str]:
        """The contexts the span ``[start, end)`` sits in (judged by where it starts).

        Negated and reported scopes never leave the clause of their trigger, so only scopes that
        start in this clause, before ``start``, can hold it; quotes do not overlap each other, so
        only the last one opened before ``start`` can. Bisection keeps long notes linear."""
        found: set[str] = set()
        c0, _ = self.clause_at(start)
        for name, spans in ((NEGATED, self.negated), (REPORTED, self.reported)):
            starts = self._starts[name]
            lo, hi = bisect_left(starts, c0), bisect_right(starts, start)
            if any(spans[i][1] > start for i in range(lo, hi)):
                found.add(name)
        i = bisect_right(self._starts[QUOTED], start) - 1
        if i >= 0 and self.quoted[i][1] > start:
            found.add(QUOTED)
        return frozenset(found)

    def words_after(self, pos: int, limit: int, stop: int) -> list[re.Match[str]]:
        out: list[re.Match[str]] = []
        for w in _WORD.finditer(self.text, pos, stop):
            out.append(w)
            if len(out) >= limit:
                break
        return out


def _start(t: TermHit) -> int:
    return t.start


def _last_word(text: str, end: int) -> str:
    i = end
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "."):
        i -= 1
    return text[i:end].rstrip(".")
