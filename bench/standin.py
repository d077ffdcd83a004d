"""An EHR stand-in that answers at once: a benchmark instrument, never a test of correctness.

    .venv/bin/python bench/standin.py [--port 0]     # prints {"base_url": ..., "pid": ...} when ready

It answers ``GET /fhir/metadata`` with a CapabilityStatement that allows creating everything and
``POST /fhir`` (a transaction) with a transaction-response giving every entry ``201 Created`` and a
fresh id (the first 10,000 resources kept for a read back); a search finds one Patient for a
Patient search by identifier and nothing otherwise. ``GET /fhir/_stats`` returns how many
transactions and entries it answered. With the sandbox EHR on the same two cores the bridge's
scale-out figure measured the EHR; with this, it measures the bridge (``bench/exchange.py --mode
share --ehr standin``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import sys

from aiohttp import web

CAPABILITIES = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "kind": "instance",
    "fhirVersion": "4.0.1",
    "format": ["json"],
    "rest": [
        {
            "mode": "server",
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
            "resource": [
                {
                    "type": t,
                    "interaction": [{"code": c} for c in ("read", "create", "update", "search-type")],
                    "conditionalCreate": True,
                    "conditionalUpdate": True,
                }
                for t in (
                    "Organization",
                    "Practitioner",
                    "Patient",
                    "Encounter",
                    "Procedure",
                    "DocumentReference",
                    "Provenance",
                    "Task",
                    "ServiceRequest",
                )
            ],
        }
    ],
}


def make_app() -> web.Application:
    ids = itertools.count(1)
    stats = {"transactions": 0, "entries": 0}
    kept: dict[str, dict[str, object]] = {}

    async def metadata(_: web.Request) -> web.Response:
        return web.json_response(CAPABILITIES, content_type="application/fhir+json")

    async def transaction(request: web.Request) -> web.Response:
        bundle = json.loads(await request.read())
        entries = []
        for entry in bundle.get("entry", []):
            rtype = entry.get("resource", {}).get("resourceType", "Basic")
            rid = next(ids)
            location = f"{rtype}/{rid}/_history/1"
            if len(kept) < 10_000:  # for a read back (the bridge checks one per server)
                kept[f"{rtype}/{rid}"] = {**entry.get("resource", {}), "id": str(rid)}
            entries.append({"response": {"status": "201 Created", "location": location, "etag": 'W/"1"'}})
        stats["transactions"] += 1
        stats["entries"] += len(entries)
        body = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        return web.json_response(body, content_type="application/fhir+json")

    async def search(request: web.Request) -> web.Response:
        # a Patient search by identifier finds one Patient (its id from the identifier, so the
        # bridge's lookup succeeds and is cached as at a real EHR); any other search finds nothing
        rtype = request.match_info["rtype"]
        ident = request.query.get("identifier", "")
        matches = []
        if rtype == "Patient" and ident:
            pid = "p-" + "".join(c if c.isalnum() else "-" for c in ident.rpartition("|")[2])[:60]
            matches.append({"resourceType": "Patient", "id": pid, "identifier": [{"value": ident}]})
        body = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "entry": [{"resource": m, "search": {"mode": "match"}} for m in matches],
        }
        return web.json_response(body, content_type="application/fhir+json")

    async def read(request: web.Request) -> web.Response:
        found = kept.get(f"{request.match_info['rtype']}/{request.match_info['rid']}")
        if found is None:
            return web.json_response({"resourceType": "OperationOutcome"}, status=404)
        return web.json_response(found, content_type="application/fhir+json")

    async def counts(_: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.router.add_get("/fhir/metadata", metadata)
    app.router.add_post("/fhir", transaction)
    app.router.add_get("/fhir/_stats", counts)
    app.router.add_get("/fhir/{rtype:[A-Z][A-Za-z]+}", search)
    app.router.add_get("/fhir/{rtype:[A-Z][A-Za-z]+}/{rid}", read)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    site = web.SockSite(runner, sock)
    await site.start()
    print(json.dumps({"base_url": f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"}), flush=True)
    await asyncio.Event().wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
