"""A linear text screen: weights on word stems and stem pairs, learned from labelled notes.

The vocabulary rules find what someone listed; people say risk of harm in more ways than anyone
lists ("nobody would even notice if I was gone", "tying up loose ends"). A screen learned from
labelled peer notes weighs every word of the note together and sends what scores high to a
supervisor. It is data like the vocabularies: a TSV file in the rules folder, written by
``scripts/train_text_screen.py`` (which records its corpus, learner and settings in the header),
read here without any learning library:

    # comment lines: source, corpus, learner, date
    intercept<TAB>-2.31
    u:<stem><TAB>weight        one word (its Snowball stem, as :func:`bridge.roles.vocabulary.stem`)
    b:<stem>_<stem><TAB>weight two words in a row, with no sentence mark between them

A note scores ``sigmoid(intercept + sum of the weights of the features it has)``, each feature
counted once. The evidence is the words with the largest positive weights, with their offsets,
so the page can show a person why the note went for review. Pure: no I/O after loading.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridge.roles.vocabulary import Token


class ModelFileError(ValueError):
    """A screen file that cannot be read: names the line."""


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: str
    weight: float
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class TextScreen:
    intercept: float
    weights: dict[str, float] = field(repr=False)
    source: str = ""
    # the weights by stem and by pair of stems, so a check builds no feature names for words
    # that carry no weight (the page checks while the peer types)
    _uni: dict[str, float] = field(init=False, repr=False, compare=False)
    _bi: dict[str, dict[str, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        uni: dict[str, float] = {}
        bi: dict[str, dict[str, float]] = {}
        for name, w in self.weights.items():
            if name.startswith("u:"):
                uni[name[2:]] = w
            else:  # "b:<stem>_<stem>" (stems are letters and digits)
                first, _, second = name[2:].partition("_")
                bi.setdefault(first, {})[second] = w
        object.__setattr__(self, "_uni", uni)
        object.__setattr__(self, "_bi", bi)

    @classmethod
    def from_lines(cls, lines: Iterable[str], origin: str = "<model>") -> TextScreen:
        intercept: float | None = None
        weights: dict[str, float] = {}
        notes: list[str] = []
        for n, raw in enumerate(lines, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("#"):
                notes.append(line.lstrip("# ").strip())
                continue
            name, sep, value = line.partition("\t")
            try:
                w = float(value)
            except ValueError:
                raise ModelFileError(f"{origin}:{n}: expected 'feature<TAB>weight'") from None
            if not sep or not math.isfinite(w):
                raise ModelFileError(f"{origin}:{n}: expected 'feature<TAB>weight'")
            if name == "intercept":
                intercept = w
            elif name.startswith(("u:", "b:")):
                weights[name] = w
            else:
                raise ModelFileError(f"{origin}:{n}: a feature starts with 'u:' or 'b:' (got {name!r})")
        if intercept is None:
            raise ModelFileError(f"{origin}: no 'intercept' line")
        if not weights:
            raise ModelFileError(f"{origin}: no feature weights")
        return cls(intercept, weights, " ".join(notes[:1]))

    @classmethod
    def load(cls, path: Path) -> TextScreen:
        with open(path, encoding="utf-8") as fh:
            return cls.from_lines(fh, str(path.name))

    def contributions(
        self, tokens: Sequence[Token], skip: frozenset[int] = frozenset()
    ) -> list[Contribution]:
        """The note's features that carry a weight, each once, in text order (what :func:`features`
        gives, filtered by the weights; one pass, as the page checks while the peer types)."""
        uni_get, bi_get = self._uni.get, self._bi.get
        seen: set[str] = set()
        out: list[Contribution] = []
        prev: Token | None = None
        for i, tok in enumerate(tokens):
            if i in skip:
                prev = None
                continue
            stem = tok.stem
            w = uni_get(stem)
            if w is not None:
                uni = "u:" + stem
                if uni not in seen:
                    seen.add(uni)
                    out.append(Contribution(uni, w, tok.start, tok.end))
            if prev is not None and not tok.after_break:
                pairs = bi_get(prev.stem)
                w = pairs.get(stem) if pairs is not None else None
                if w is not None:
                    bi = f"b:{prev.stem}_{stem}"
                    if bi not in seen:
                        seen.add(bi)
                        out.append(Contribution(bi, w, prev.start, tok.end))
            prev = tok
        return out

    def score(self, contributions: Sequence[Contribution]) -> float:
        z = self.intercept + sum(c.weight for c in contributions)
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


def features(tokens: Sequence[Token], skip: frozenset[int] = frozenset()) -> list[tuple[str, int, int]]:
    """Each feature of a note once (its first occurrence), with its offsets, in text order: the
    stems, and the pairs of stems in a row with no sentence or clause mark between them. ``skip``
    holds token indexes that do not count (words of an idiom). Training uses this same function."""
    seen: set[str] = set()
    out: list[tuple[str, int, int]] = []
    prev: Token | None = None
    for i, tok in enumerate(tokens):
        if i in skip:
            prev = None
            continue
        uni = "u:" + tok.stem
        if uni not in seen:
            seen.add(uni)
            out.append((uni, tok.start, tok.end))
        if prev is not None and not tok.after_break:
            bi = f"b:{prev.stem}_{tok.stem}"
            if bi not in seen:
                seen.add(bi)
                out.append((bi, prev.start, tok.end))
        prev = tok
    return out
