"""Load rule files into a :class:`Policy`: read, merge the jurisdiction overlay, validate, compile.

The only part of ``bridge.roles`` that does I/O (reading the files). Every problem is a
:class:`bridge.errors.RuleFileError` naming the file, the dotted key and the reason, e.g.
``config/rules/tx.toml: content.dose-advice.patterns[1]: bad pattern: missing ), unterminated subpattern``.
When a key came from an overlay, the overlay is named.
"""

from __future__ import annotations

import os
import re
import string
import sys
import tomllib
from functools import lru_cache
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bridge.errors import RuleFileError
from bridge.roles.checks import PLACEHOLDERS, Checks
from bridge.roles.content import (
    Act,
    ContentRule,
    DirectiveRule,
    ModelRule,
    NearRule,
    PatternRule,
    VocabularyRule,
)
from bridge.roles.decision import Severity
from bridge.roles.language import Lexicon
from bridge.roles.model import ModelFileError, TextScreen
from bridge.roles.permissions import WRITE_ACTIONS
from bridge.roles.policy import Policy
from bridge.roles.schema import (
    RULE_KINDS,
    CheckSpec,
    DirectiveSpec,
    ModelRuleSpec,
    NearSpec,
    PatternSpec,
    RuleFileSpec,
    VocabularyRuleSpec,
    VocabularySpec,
    merge,
)
from bridge.roles.vocabulary import Vocabulary

DEFAULT_FILE = "default.toml"

Origin = dict[tuple[str, ...], str]


def packaged_rules_dir() -> Path:
    """The rule files shipped inside the package (``bridge/defaults/rules``, the repository's
    ``config/rules``), found through ``importlib.resources`` so an installed wheel has them too."""
    root = package_files("bridge").joinpath("defaults", "rules")
    if not isinstance(root, Path):  # a zipped install: the loader reads real files
        raise RuleFileError("bridge/defaults/rules", "(file)", "install the package unzipped")
    return root.resolve()


def load_policy(rules_dir: str | os.PathLike[str] | None, jurisdiction: str | None = None) -> Policy:
    """Load ``<rules_dir>/default.toml`` plus ``<rules_dir>/<xx>.toml`` for ``jurisdiction`` (e.g. "TX");
    ``rules_dir`` None means the packaged rules (:func:`packaged_rules_dir`)."""
    base = Path(rules_dir) if rules_dir is not None else packaged_rules_dir()
    files = [base / DEFAULT_FILE]
    if jurisdiction is not None:
        code = jurisdiction.strip().lower()
        if not re.fullmatch(r"[a-z]{2}", code):
            raise RuleFileError(str(base), "jurisdiction", f"{jurisdiction!r} is not a two-letter code")
        files.append(base / f"{code}.toml")
    policy = load_rule_files(files)
    if jurisdiction is not None and policy.jurisdiction != jurisdiction.strip().upper():
        raise RuleFileError(
            str(files[-1]), "meta.jurisdiction", f"must be {jurisdiction.strip().upper()!r} in this overlay"
        )
    return policy


def _read(file: Path) -> dict[str, Any]:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise RuleFileError(str(file), "(file)", f"cannot read rule file: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RuleFileError(str(file), "(file)", f"not valid TOML: {exc}") from None
    except RecursionError:  # nested deeper than the parser recurses: was a traceback
        raise RuleFileError(str(file), "(file)", "not valid TOML: nested too deeply") from None


def load_rule_files(files: list[Path]) -> Policy:
    """The first file is complete; later files are overlays merged over it in order."""
    origin: Origin = {}
    merged: dict[str, Any] = {}
    for file in files:
        merged = merge(merged, _read(file), origin, str(file))
    default = str(files[0])
    _precheck_kinds(merged, origin, default)
    try:
        spec = RuleFileSpec.model_validate(merged)
    except ValidationError as exc:
        key, reason = _key_and_reason(exc.errors(include_url=False)[0])
        raise RuleFileError(_file_of(key, origin, default), _dotted(key), reason) from None
    checks = _checks(spec, origin, default)
    _check_invariants(spec, origin, default)
    _check_vocabulary_names(spec, origin, default)
    vocabulary = _vocabulary(spec, origin, default)
    lexicon = _lexicon(spec, vocabulary, origin, default)
    content = tuple(
        _compile_rule(rule_id, rule, origin, default)
        for rule_id, rule in spec.content.items()
        if rule.enabled
    )
    return Policy(
        jurisdiction=spec.meta.jurisdiction,
        files=tuple(str(f) for f in files),
        spec=spec,
        lexicon=lexicon,
        content=content,
        checks=checks,
    )


# --- errors with key paths ---------------------------------------------------------------------


def _key_and_reason(err: Any) -> tuple[tuple[str | int, ...], str]:
    loc = list(err["loc"])
    if len(loc) >= 3 and loc[0] == "content" and loc[2] in RULE_KINDS:
        del loc[2]  # the discriminated union's tag is not a key in the file
    loc = [p for p in loc if p != "[key]"]
    msg = str(err["msg"]).removeprefix("Value error, ")
    head, sep, rest = msg.partition(": ")
    if err["type"] == "value_error" and sep and re.fullmatch(r"[a-z_]+", head):
        loc.append(head)
        msg = rest
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    return tuple(loc), msg


def _dotted(key: tuple[str | int, ...]) -> str:
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(root)"


def _file_of(key: tuple[str | int, ...], origin: Origin, default: str) -> str:
    """The file that set ``key``; for a key no file set (a missing key, a cross-field check), the
    last file that set anything in the same table: an overlay's change is the likelier culprit."""
    parts = tuple(str(p) for p in key if not isinstance(p, int))
    if parts in origin:
        return origin[parts]
    for n in range(len(parts) - 1, 0, -1):
        table = parts[:n]
        setters = [f for k, f in origin.items() if k[:n] == table]
        if setters:
            order = list(dict.fromkeys(origin.values()))  # files in load order
            return max(setters, key=order.index)
    return default


def _fail(key: tuple[str | int, ...], reason: str, origin: Origin, default: str) -> RuleFileError:
    return RuleFileError(_file_of(key, origin, default), _dotted(key), reason)


# --- checks beyond the schema ------------------------------------------------------------------


def _precheck_kinds(merged: dict[str, Any], origin: Origin, default: str) -> None:
    content = merged.get("content")
    if not isinstance(content, dict):
        return  # the schema reports it
    for rule_id, rule in content.items():
        if not isinstance(rule, dict):
            raise _fail(("content", rule_id), "must be a table", origin, default)
        kind = rule.get("kind")
        if kind is None:
            raise _fail(("content", rule_id, "kind"), "required key is missing", origin, default)
        if kind not in RULE_KINDS:
            raise _fail(
                ("content", rule_id, "kind"),
                f"unknown rule kind {kind!r} (expected one of: {', '.join(RULE_KINDS)})",
                origin,
                default,
            )


def _checks(spec: RuleFileSpec, origin: Origin, default: str) -> Checks:
    flat: dict[str, CheckSpec] = {}
    for area, table in spec.checks.items():
        for name, check in table.items():
            check_id = f"{area}.{name}"
            key = ("checks", area, name)
            if check_id not in PLACEHOLDERS:
                raise _fail(key, f"unknown check (known: {', '.join(PLACEHOLDERS)})", origin, default)
            try:
                used = {f for _, f, _, _ in string.Formatter().parse(check.message) if f is not None}
            except ValueError as exc:
                raise _fail((*key, "message"), f"bad message template: {exc}", origin, default) from None
            allowed = PLACEHOLDERS[check_id] | {"field"}
            if used - allowed:
                bad = sorted(used - allowed)[0]
                raise _fail(
                    (*key, "message"),
                    f"unknown placeholder {{{bad}}} (allowed: {', '.join(sorted(allowed))})",
                    origin,
                    default,
                )
            flat[check_id] = check
    for check_id in PLACEHOLDERS:
        if check_id not in flat:
            raise _fail(("checks", *check_id.split(".", 1)), "required key is missing", origin, default)
    return Checks(flat)


def _check_invariants(spec: RuleFileSpec, origin: Origin, default: str) -> None:
    """Peers never write clinical resources, whatever an overlay says."""
    perms = spec.permissions
    for role in perms.peer_roles:
        for action, entries in perms.grants.get(role, {}).items():
            if action not in WRITE_ACTIONS:
                continue
            for i, entry in enumerate(entries):
                etype, _, ecat = entry.partition(":")
                for never in perms.never_write_for_peers:
                    ntype, _, ncat = never.partition(":")
                    # a grant without a category ("CarePlan") covers the forbidden category too
                    clash = entry == "*" or (etype == ntype and (not ncat or not ecat or ecat == ncat))
                    if clash:
                        raise _fail(
                            ("permissions", "grants", role.value, action, i),
                            f"peers may never {action} {never} (permissions.never_write_for_peers)",
                            origin,
                            default,
                        )


def _join(
    patterns: list[str], flags: int, key: tuple[str | int, ...], origin: Origin, default: str
) -> re.Pattern[str]:
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns), flags)
    except re.error as exc:
        raise _fail(key, f"bad pattern: {exc}", origin, default) from None


def _one_each(
    patterns: list[str], flags: int, key: tuple[str | int, ...], origin: Origin, default: str
) -> tuple[re.Pattern[str], ...]:
    out = []
    for i, p in enumerate(patterns):
        try:
            out.append(re.compile(p, flags))
        except re.error as exc:
            raise _fail((*key, i), f"bad pattern: {exc}", origin, default) from None
    return tuple(out)


# --- vocabularies ------------------------------------------------------------------------------


def _check_vocabulary_names(spec: RuleFileSpec, origin: Origin, default: str) -> None:
    known = set(spec.vocabularies)

    def check(key: tuple[str | int, ...], names: list[str]) -> None:
        for i, name in enumerate(names):
            if name not in known:
                raise _fail(
                    (*key, i),
                    f"unknown vocabulary {name!r} (known: {', '.join(sorted(known))})",
                    origin,
                    default,
                )

    for rule_id, rule in spec.content.items():
        check(("content", rule_id, "terms"), rule.terms)
        check(("content", rule_id, "allow_terms"), rule.allow_terms)
        check(("content", rule_id, "mask_terms"), rule.mask_terms)
        check(("content", rule_id, "question_terms"), rule.question_terms)
        for a, act in enumerate(rule.acts):
            for g, group in enumerate(act.cues):
                check(("content", rule_id, "acts", a, "cues", g), group)
            for g, group in enumerate(act.objects):
                check(("content", rule_id, "acts", a, "objects", g), group)
    check(("privacy", "sud_terms"), spec.privacy.sud_terms)


FileStamp = tuple[str, int, int]  # path, modification time (ns), size


def _stamp(file: Path, key: tuple[str | int, ...], origin: Origin, default: str) -> FileStamp:
    try:
        stat = file.stat()
    except OSError as exc:
        raise _fail(key, f"cannot read vocabulary file {file}: {exc.strerror}", origin, default) from None
    return (str(file), stat.st_mtime_ns, stat.st_size)


def _read_terms(path: str, key: tuple[str | int, ...], origin: Origin, default: str) -> list[tuple[str, str]]:
    try:
        return _parse_terms(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(key, f"cannot read vocabulary file {path}: {exc}", origin, default) from None


def _read_screen(file: Path, key: tuple[str | int, ...], origin: Origin, default: str) -> TextScreen:
    try:
        stat = file.stat()
        return _parse_screen(str(file), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise _fail(key, f"cannot read model file {file}: {exc.strerror}", origin, default) from None
    except (ModelFileError, UnicodeDecodeError) as exc:
        raise _fail(key, f"bad model file: {exc}", origin, default) from None


@lru_cache(maxsize=8)
def _parse_screen(path: str, _mtime: int, _size: int) -> TextScreen:
    """Cached by path, time and size, like the vocabularies (tests load often)."""
    return TextScreen.load(Path(path))


def _parse_terms(path: str) -> list[tuple[str, str]]:
    """``term`` or ``term<TAB>entry`` per line. Not kept: the compiled vocabulary is what is
    cached (``_VOCAB_CACHE``); the raw lists of the medication file alone were ~10 MB of a
    running bridge. Entries are interned: many brand names share one generic name."""
    out: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            term, _, entry = line.partition("\t")
            term = term.strip()
            out.append((term, sys.intern(entry.strip() or term)))
    return out


def _inline(terms: list[str]) -> list[tuple[str, str]]:
    out = []
    for t in terms:
        term, sep, entry = t.partition("=>")
        out.append((term.strip(), entry.strip() if sep else term.strip()))
    return out


_VOCAB_CACHE: dict[tuple[Any, ...], Vocabulary] = {}


def _vocabulary(spec: RuleFileSpec, origin: Origin, default: str) -> Vocabulary:
    """Compile every vocabulary once per distinct content (a loaded policy is immutable)."""
    sources: list[tuple[str, VocabularySpec, list[tuple[FileStamp, tuple[str | int, ...]]]]] = []
    stamps: list[tuple[Any, ...]] = []
    for name, vspec in spec.vocabularies.items():
        files: list[tuple[FileStamp, tuple[str | int, ...]]] = []
        for i, rel in enumerate(vspec.files):
            key = ("vocabularies", name, "files", i)
            base = Path(_file_of(("vocabularies", name, "files"), origin, default)).parent
            files.append((_stamp(base / rel, key, origin, default), key))
        sources.append((name, vspec, files))
        stamps.append(
            (name, vspec.match, vspec.fuzzy, tuple(f for f, _ in files), tuple(vspec.terms), tuple(vspec.add))
        )
    cache_key = tuple(stamps)
    cached = _VOCAB_CACHE.get(cache_key)
    if cached is not None:
        return cached
    vocabulary = Vocabulary()
    for name, vspec, files in sources:
        lists = [_read_terms(stamp[0], key, origin, default) for stamp, key in files]
        for entries in [*lists, _inline(vspec.terms), _inline(vspec.add)]:
            vocabulary.add(name, entries, stemmed=vspec.match == "stem", fuzzy=vspec.fuzzy)
    if len(_VOCAB_CACHE) > 16:
        _VOCAB_CACHE.clear()
    _VOCAB_CACHE[cache_key] = vocabulary
    return vocabulary


def _lexicon(spec: RuleFileSpec, vocabulary: Vocabulary, origin: Origin, default: str) -> Lexicon:
    lang = spec.language
    f = re.IGNORECASE

    def j(name: str, pats: list[str]) -> re.Pattern[str]:
        if not pats:
            return re.compile(r"(?!x)x")  # matches nothing
        return _join(pats, f, ("language", name), origin, default)

    return Lexicon(
        negation=j("negation", lang.negation),
        pseudo_negation=j("pseudo_negation", lang.pseudo_negation),
        reported=j("reported", lang.reported),
        peer_speaker=j("peer_speaker", lang.peer_speaker),
        clause_break=j("clause_breaks", lang.clause_breaks),
        negation_window=lang.negation_window,
        vocabulary=vocabulary,
    )


def _compile_rule(
    rule_id: str,
    rule: PatternSpec | NearSpec | DirectiveSpec | VocabularyRuleSpec | ModelRuleSpec,
    origin: Origin,
    default: str,
) -> ContentRule:
    flags = 0 if rule.case_sensitive else re.IGNORECASE
    key = ("content", rule_id)
    common: dict[str, Any] = {
        "id": f"content.{rule_id}",
        "severity": Severity(rule.severity),
        "message": rule.message,
        "roles": frozenset(rule.roles),
        "unless": frozenset(rule.unless),
        "satisfied_by": rule.satisfied_by,
        "terms": frozenset(rule.terms),
        "acts": tuple(
            Act(
                cues=tuple(frozenset(g) for g in a.cues),
                objects=tuple(frozenset(g) for g in a.objects),
                window=a.window,
                scope=a.scope,
                reach=a.reach or a.window,
                ordered=a.ordered,
                allow_on=a.allow_on,
                back=a.back,
            )
            for a in rule.acts
        ),
        "allow_terms": frozenset(rule.allow_terms),
        "allow_scope": rule.allow_scope,
        "allow_reach": rule.allow_reach,
        "mask_terms": frozenset(rule.mask_terms),
        "question_terms": frozenset(rule.question_terms),
        "defer": rule.defer,
    }

    def each(name: str, pats: list[str]) -> tuple[re.Pattern[str], ...]:
        return _one_each(pats, flags, (*key, name), origin, default)

    def joined(name: str, pats: list[str]) -> re.Pattern[str] | None:
        return _join(pats, flags, (*key, name), origin, default) if pats else None

    if isinstance(rule, PatternSpec):
        return PatternRule(
            **common, patterns=each("patterns", rule.patterns), allow=each("allow", rule.allow)
        )
    if isinstance(rule, VocabularyRuleSpec):
        return VocabularyRule(**common, allow=each("allow", rule.allow))
    if isinstance(rule, ModelRuleSpec):
        base = Path(_file_of((*key, "model"), origin, default)).parent
        screen = _read_screen(base / rule.model, (*key, "model"), origin, default)
        return ModelRule(**common, screen=screen, threshold=rule.threshold, evidence=rule.evidence)
    if isinstance(rule, NearSpec):
        return NearRule(
            **common,
            first=each("first", rule.first),
            then=each("then", rule.then),
            window=rule.window,
            ordered=rule.ordered,
            allow=each("allow", rule.allow),
        )
    return DirectiveRule(
        **common,
        directives=each("directives", rule.directives),
        fillers=joined("fillers", rule.fillers),
        negators=joined("negators", rule.negators),
        actions=joined("actions", rule.actions),
        negated_actions=joined("negated_actions", rule.negated_actions),
        allowed_actions=joined("allowed_actions", rule.allowed_actions),
        objects=joined("objects", rule.objects),
        pronoun_objects=joined("pronoun_objects", rule.pronoun_objects),
        object_breaks=joined("object_breaks", rule.object_breaks),
        statement_fillers=joined("statement_fillers", rule.statement_fillers),
        allow=each("allow", rule.allow),
        allow_when_negated=each("allow_when_negated", rule.allow_when_negated),
        window=rule.window,
    )
