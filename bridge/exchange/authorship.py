"""Who may put their name on a record: the caller's identity against the directory, the author of a
session or note, the owner of a record id, and who may co-sign. Issue 10: a note in a chart is only
trustworthy if its author, signer and text are what they claim.

- :func:`verify_identity`: a peer or supervisor is that person as the directory knows them (same
  role, same organization): checked on every write and on the views a role widens (referrals,
  held notes).
- :func:`check_author`: a peer signs in as themselves, so a session's ``peer_id`` and a note's
  ``author_id`` are theirs; a service account (a peer-role API key, no practitioner) submits on
  behalf of peers the directory places in its own organization.
- :func:`check_cosigner`: the one co-sign check (``POST /cosign`` and a note sent with
  ``cosigner_id`` alike).
- :func:`check_record_owner`: a record id belongs to whoever first submitted it.

Each raises a :class:`~bridge.errors.ForbiddenError` (or ``RecordIdTakenError``) naming the rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from bridge.domain import PeerWorker, Role
from bridge.errors import (
    AuthorshipError,
    ForbiddenError,
    IdentityMismatchError,
    InputError,
    RecordIdTakenError,
)
from bridge.exchange.directory import Directory
from bridge.exchange.views import Actor

PEER_ROLES = frozenset({Role.PEER_SPECIALIST.value, Role.PEER_SUPERVISOR.value})


async def verify_identity(directory: Directory, actor: Actor) -> PeerWorker | None:
    """The directory's record of ``actor`` (None for a service account); refuses a caller the
    directory does not know as such (rules ``identity.*``)."""
    if actor.practitioner_id is None or actor.role not in PEER_ROLES:
        # a service account (the web layer refuses a peer's token without a practitioner), or a
        # role the peer directory does not list (they submit nothing: the API's role table)
        return None
    try:
        person = await directory.peer(actor.practitioner_id)
    except InputError:
        raise IdentityMismatchError(
            "the directory does not know the caller", rule="identity.unknown"
        ) from None
    if person.role.value != actor.role:
        raise IdentityMismatchError(
            f"the directory lists the caller as {person.role.value}, not {actor.role}", rule="identity.role"
        )
    if person.organization_id != actor.organization:
        raise IdentityMismatchError(
            "the directory places the caller in another organization", rule="identity.organization"
        )
    return person


async def check_author(directory: Directory, actor: Actor, author_id: str) -> None:
    """May ``actor`` submit a record whose author (session peer, note author) is ``author_id``?"""
    if actor.role not in PEER_ROLES:
        return  # no other role submits (the API's role table); nothing to bind
    if actor.practitioner_id is not None:
        if author_id != actor.practitioner_id:
            raise AuthorshipError("peers submit their own work only", rule="authorship.self")
        return
    # a service account acting for its organization's peers
    try:
        author = await directory.peer(author_id)
    except InputError:
        raise AuthorshipError(
            "the directory does not know the named peer", rule="authorship.organization"
        ) from None
    if author.organization_id != actor.organization:
        raise AuthorshipError("the named peer works for another organization", rule="authorship.organization")


def check_cosigner(actor: Actor, supervisor: PeerWorker, author: PeerWorker, organization: str) -> None:
    """May ``actor`` (who is ``supervisor`` in the directory) co-sign ``author``'s note? Pure.

    A peer supervisor of the bridge's organization and the author's, and where the directory says
    who supervises the author, that supervisor. Raises ForbiddenError naming the deciding rule.
    """
    if actor.organization != organization:
        raise ForbiddenError("callers act only within their own organization", rule="same-organization")
    if actor.practitioner_id != supervisor.id:
        raise ForbiddenError("a note is co-signed only by the supervisor it names", rule="cosign.self")
    if actor.role != Role.PEER_SUPERVISOR.value or supervisor.role is not Role.PEER_SUPERVISOR:
        raise ForbiddenError("only a peer supervisor co-signs notes", rule="cosign.role")
    if supervisor.organization_id != author.organization_id:
        raise ForbiddenError("the co-signer works for another organization", rule="cosign.organization")
    if supervisor.id == author.id:
        raise ForbiddenError("an author does not co-sign their own note", rule="cosign.author")
    if author.supervisor_id is not None and author.supervisor_id != supervisor.id:
        raise ForbiddenError("only the author's own supervisor co-signs this note", rule="cosign.supervisor")


def check_record_owner(
    record_id: str, authors: Iterable[str], author_id: str, owners: Iterable[str], organization: str
) -> None:
    """``record_id`` already submitted by ``authors`` (in ``owners``' organizations) may be sent
    again only by the same author of the same organization: else another person's record would be
    overwritten at the EHR, or their held note released under their tracking id."""
    if any(a != author_id for a in authors) or any(o != organization for o in owners):
        raise RecordIdTakenError(f"record id {record_id!r} belongs to another author")
