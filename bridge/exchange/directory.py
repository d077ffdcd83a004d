"""Who the bridge knows: participants, peer workers and consents, looked up by id.

The exchange needs them to route (a participant's home endpoint), to map (the patient identifier
at that endpoint, the peer's credential) and to gate disclosures (42 CFR Part 2 consents, checked
again at delivery time: a consent revoked after submission stops the send). ``Directory`` is the
interface; :class:`InMemoryDirectory` serves tests, benchmarks and the demo, and can be loaded
from a JSON file with ``participants``, ``peers`` and ``consents`` lists of domain records.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from bridge.config import Settings
from bridge.domain import ConsentRecord, Participant, PeerWorker, parse
from bridge.errors import ConfigError, InputError

log = logging.getLogger("bridge.exchange")

DIRECTORY_ENV = "BRIDGE_DIRECTORY"
DEFAULT_DIRECTORY = "directory.json"  # next to the config file


class Directory(Protocol):
    async def participant(self, participant_id: str) -> Participant: ...
    async def peer(self, peer_id: str) -> PeerWorker: ...
    async def consents(self, participant_id: str) -> list[ConsentRecord]: ...
    async def find_participant(self, endpoint: str, system: str, value: str) -> Participant | None: ...


class InMemoryDirectory:
    def __init__(
        self,
        participants: Iterable[Participant] = (),
        peers: Iterable[PeerWorker] = (),
        consents: Iterable[ConsentRecord] = (),
    ) -> None:
        self._participants = {p.id: p for p in participants}
        self._peers = {p.id: p for p in peers}
        self._consents: dict[str, list[ConsentRecord]] = {}
        for c in consents:
            self._consents.setdefault(c.participant_id, []).append(c)

    def add(self, *records: Participant | PeerWorker | ConsentRecord) -> None:
        for r in records:
            if isinstance(r, Participant):
                self._participants[r.id] = r
            elif isinstance(r, PeerWorker):
                self._peers[r.id] = r
            else:
                self._consents.setdefault(r.participant_id, []).append(r)

    def replace_consents(self, participant_id: str, consents: Iterable[ConsentRecord]) -> None:
        self._consents[participant_id] = list(consents)

    async def participant(self, participant_id: str) -> Participant:
        try:
            return self._participants[participant_id]
        except KeyError:
            raise InputError("participant_id", "unknown participant") from None

    async def peer(self, peer_id: str) -> PeerWorker:
        try:
            return self._peers[peer_id]
        except KeyError:
            raise InputError("peer_id", "unknown peer worker") from None

    async def consents(self, participant_id: str) -> list[ConsentRecord]:
        return list(self._consents.get(participant_id, ()))

    async def find_participant(self, endpoint: str, system: str, value: str) -> Participant | None:
        """The participant whose patient identifier at ``endpoint`` is ``system|value`` (a
        referral's patient, as the EHR identifies them), if the directory knows one."""
        for p in self._participants.values():
            ident = p.identifiers.get(endpoint)
            if ident is not None and ident.system == system and ident.value == value:
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape :meth:`from_file` reads."""
        return {
            "participants": [p.model_dump(mode="json") for p in self._participants.values()],
            "peers": [p.model_dump(mode="json") for p in self._peers.values()],
            "consents": [c.model_dump(mode="json") for cs in self._consents.values() for c in cs],
        }

    @classmethod
    def from_file(cls, path: str | Path) -> InMemoryDirectory:
        file = Path(path)
        try:
            data: Any = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                "(file)", f"cannot read directory: {type(exc).__name__}", source=str(file)
            ) from None
        except RecursionError:  # nested deeper than the parser recurses: was a traceback
            raise ConfigError(
                "(file)", "cannot read directory: nested too deeply", source=str(file)
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("(root)", "must be a JSON object", source=str(file))
        out = cls()
        for key, model in (("participants", Participant), ("peers", PeerWorker), ("consents", ConsentRecord)):
            for i, item in enumerate(data.get(key, [])):
                try:
                    out.add(parse(model, item))  # type: ignore[arg-type]
                except InputError as exc:
                    raise ConfigError(f"{key}.{i}.{exc.field}", exc.reason, source=str(file)) from None
        return out


def directory_file(settings: Settings) -> Path:
    """Where the directory is read from: ``$BRIDGE_DIRECTORY`` or ``directory.json`` by the config."""
    path = os.environ.get(DIRECTORY_ENV)
    return Path(path) if path else settings.path(DEFAULT_DIRECTORY)


def load_directory(settings: Settings) -> Directory:
    """Participants, peers and consents: ``$BRIDGE_DIRECTORY`` or ``directory.json`` by the config."""
    file = directory_file(settings)
    if file.exists():
        return InMemoryDirectory.from_file(file)
    log.warning("no participant directory file; every submission will name an unknown participant")
    return InMemoryDirectory()
