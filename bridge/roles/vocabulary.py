"""Vocabularies: named classes of terms (medications, conditions, results, therapies, risk phrases,
cue words) found in a note's tokens, not by regular expression.

A note is split into word tokens once; each token is looked up by its lower-case form and by its
Snowball stem, so one entry ("double up") also finds "doubled up" and "doubling up". An entry is a
sequence of words; ``*`` inside an entry skips up to :data:`GAP` words ("nobody * miss him" finds
"nobody would even miss him"). Matching is a dictionary look-up keyed on an entry's first word: the
cost grows with the note, not with the size of the vocabulary (53,000 medication names cost the same
per token as fifty).

A class matches ``exact`` (lower-case words: drug names, codes) or ``stem`` (cue words, phrases).
A class marked ``fuzzy`` also finds a word one edit away from an entry of seven letters or more
("seroqual", "suboxin"), for the misspellings notes are full of.

Pure: the loader reads the files and hands the entries in; nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import snowballstemmer  # type: ignore[import-untyped]  # pure Python, no stubs

GAP = 3  # words a ``*`` in an entry may skip
FUZZY_MIN = 7  # shortest entry (letters) a misspelling is matched against

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_STEMMER = snowballstemmer.stemmer("english")


_STEMS: dict[str, str] = {}
_STEMS_MAX = 200_000


def stem(word: str) -> str:
    """Snowball stem of a lower-case word (cached: notes reuse a small working vocabulary)."""
    found = _STEMS.get(word)
    if found is None:
        if len(_STEMS) >= _STEMS_MAX:
            _STEMS.clear()
        found = _STEMS[word] = str(_STEMMER.stemWord(word))
    return found


_BREAK = re.compile(r"[.!?;:\n]")


class Token(NamedTuple):
    start: int
    end: int
    lower: str
    stem: str
    after_break: bool = False  # a sentence or clause mark stands between this token and the one before


def tokenize(text: str) -> tuple[Token, ...]:
    out: list[Token] = []
    prev = 0
    stems, brk_search = _STEMS, _BREAK.search
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        low = m.group().lower()
        st = stems.get(low) or stem(low)
        out.append(
            Token(
                start, end, low, st, bool(out) and start > prev and brk_search(text, prev, start) is not None
            )
        )
        prev = end
    return tuple(out)


def entry_words(term: str) -> tuple[str, ...]:
    """The words of an entry as the matcher sees them ("PHQ-9" -> ("phq", "9"))."""
    words: list[str] = []
    for part in term.lower().split():
        words.extend(["*"] if part == "*" else _TOKEN.findall(part))
    return tuple(words)


class TermHit(NamedTuple):
    """One vocabulary term found in a note: its class, the entry it stands for, and its offsets."""

    vocabulary: str
    entry: str
    start: int  # character offsets into the note
    end: int
    first: int  # token indices [first, last]
    last: int


@dataclass(frozen=True, slots=True)
class _Entry:
    vocabulary: str
    entry: str
    words: tuple[str, ...]  # keys (lower or stem) after the first; "*" is a gap
    stemmed: bool


class Vocabulary:
    """Every vocabulary class of a rule set, compiled into first-word indexes."""

    __slots__ = ("_firsts", "_fuzzy", "_index", "_near_cache", "_single", "classes", "sizes")

    def __init__(self) -> None:
        # one-word entries by their word; longer ones by their first two words ("*" for a gap)
        self._single: dict[tuple[bool, str], list[tuple[str, str]]] = {}
        self._index: dict[tuple[bool, str, str], list[_Entry]] = {}
        self._firsts: set[tuple[bool, str]] = set()  # first words of the longer entries
        self._near_cache: dict[str, tuple[tuple[str, str], ...]] = {}
        self._fuzzy: dict[str, list[tuple[str, str, str]]] = {}  # deletion key -> (word, class, entry)
        self.classes: set[str] = set()
        self.sizes: dict[str, int] = {}

    def add(
        self,
        vocabulary: str,
        entries: Iterable[tuple[str, str]],
        *,
        stemmed: bool,
        fuzzy: bool = False,
    ) -> None:
        """Add ``(term, canonical entry)`` pairs to class ``vocabulary``."""
        self.classes.add(vocabulary)
        count = 0
        for term, entry in entries:
            words = entry_words(term)
            if not words or words[0] == "*":
                continue
            keys = tuple(w if w == "*" or not stemmed else stem(w) for w in words)
            if len(keys) == 1:
                self._single.setdefault((stemmed, keys[0]), []).append((vocabulary, entry))
            else:
                # keyed on the first two words: a note's common first words ("he", "to") start many
                # entries, and only those whose second word follows are worth trying
                self._index.setdefault((stemmed, keys[0], keys[1]), []).append(
                    _Entry(vocabulary, entry, keys[1:], stemmed)
                )
                self._firsts.add((stemmed, keys[0]))
            count += 1
            if fuzzy and len(words) == 1 and len(words[0]) >= FUZZY_MIN and words[0].isalpha():
                for key in {words[0]} | _deletions(words[0]):
                    self._fuzzy.setdefault(key, []).append((words[0], vocabulary, entry))
        self.sizes[vocabulary] = self.sizes.get(vocabulary, 0) + count

    def find(self, tokens: Sequence[Token]) -> list[TermHit]:
        """Every term of every class in ``tokens``; a hit inside a longer one of its class is dropped."""
        hits: list[TermHit] = []
        single, index, firsts = self._single, self._index, self._firsts
        n = len(tokens)
        for i, tok in enumerate(tokens):
            known = False
            for stemmed, key in ((False, tok.lower), (True, tok.stem)):
                found = single.get((stemmed, key))
                if found:
                    known = True
                    hits.extend(TermHit(v, e, tok.start, tok.end, i, i) for v, e in found)
                if (stemmed, key) not in firsts:
                    continue
                known = True
                for second in ("*", _key(tokens, i + 1, n, stemmed)):
                    for e in index.get((stemmed, key, second), ()):
                        last = _match_rest(tokens, i, e)
                        if last is not None:
                            hits.append(TermHit(e.vocabulary, e.entry, tok.start, tokens[last].end, i, last))
            if not known and self._fuzzy and len(tok.lower) >= FUZZY_MIN - 1 and tok.lower.isalpha():
                hits.extend(self._near_miss(tok, i))
        return _longest(hits)

    def _near_miss(self, tok: Token, i: int) -> list[TermHit]:
        matches = self._near_cache.get(tok.lower)
        if matches is None:
            found: dict[tuple[str, str], None] = {}
            for key in (tok.lower, *_deletions(tok.lower)):
                for word, vocabulary, entry in self._fuzzy.get(key, ()):
                    if _one_edit(tok.lower, word):
                        found[(vocabulary, entry)] = None
            matches = tuple(found)
            if len(self._near_cache) >= 100_000:
                self._near_cache.clear()
            self._near_cache[tok.lower] = matches  # most words of a note are seen again and again
        return [TermHit(vocabulary, entry, tok.start, tok.end, i, i) for vocabulary, entry in matches]


def _key(tokens: Sequence[Token], j: int, n: int, stemmed: bool) -> str:
    """The look-up key of token ``j`` ("" past the end or across a sentence mark)."""
    if j >= n or tokens[j].after_break:
        return ""
    return tokens[j].stem if stemmed else tokens[j].lower


def _match_rest(tokens: Sequence[Token], i: int, e: _Entry) -> int | None:
    """Index of the last token of entry ``e`` starting at token ``i``, or None."""
    pos = i
    gap = 0
    for w in e.words:
        if w == "*":
            gap = GAP
            continue
        for step in range(1, gap + 2):
            j = pos + step
            if j >= len(tokens):
                return None
            t = tokens[j]
            if t.after_break:  # a term never runs across "." or ";" ("save up. His ...")
                return None
            if (t.stem if e.stemmed else t.lower) == w:
                pos = j
                break
        else:
            return None
        gap = 0
    return pos


def _longest(hits: list[TermHit]) -> list[TermHit]:
    hits.sort(key=lambda h: (h.vocabulary, h.start, -h.end))
    out: list[TermHit] = []
    for h in hits:
        if out and out[-1].vocabulary == h.vocabulary and h.end <= out[-1].end:
            continue  # inside a longer hit of its class ("double" inside "double up")
        out.append(h)
    out.sort(key=lambda h: (h.start, h.vocabulary))
    return out


def _deletions(word: str) -> set[str]:
    return {word[:k] + word[k + 1 :] for k in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by one insertion, deletion, substitution or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return a == b
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:k] + long_[k + 1 :] == short for k in range(len(long_)))
