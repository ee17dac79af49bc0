"""Plivo Voice REST API simulator: `create_plivo_app(...)`, or `python -m local.simulators.plivo --port N`.

Speaks the documented contract (base `/v1/Account/{auth_id}/`, Basic auth, 201 `call fired` with a
`request_uuid`, queued/live/detail-record lookups, list, cancel, hang-up, recordings, signed form callbacks)
and lets tests script each call by destination number. Control endpoints live under `/_sim/`; see
docs/simulators.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from local.simulators.faults import FaultBook, FaultMiddleware, FaultRule
from local.simulators.plivo_engine import LIVE_STATES, PlivoSim, SimCall, number
from local.simulators.plivo_gate import PlivoGate, RestStats, plivo_error
from local.simulators.plivo_script import Script
from local.simulators.server import cli_parser, serve_forever

ACCOUNT = "/v1/Account/{auth_id}"


class ScriptRegistration(BaseModel):
    """`POST /_sim/scripts`: `to` omitted sets the default script; a list is used one entry per call."""

    model_config = ConfigDict(extra="forbid")

    to: str | None = None
    script: Script | list[Script]


def _not_found() -> JSONResponse:
    return JSONResponse(plivo_error("not found"), status_code=404)


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _call_params(request: Request) -> dict[str, str]:
    """JSON or form body (parsed by hand: python-multipart, which `request.form()` needs, is not installed)."""
    raw = await request.body()
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in body.items() if v is not None} if isinstance(body, dict) else {}
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


def create_plivo_app(
    auth_id: str = "MASIMULATOR",
    auth_token: str = "sim-token",
    *,
    cps: float = 2.0,
    time_scale: float = 1.0,
    rate_limit: int = 300,
    rate_window: float = 5.0,
    default_script: Script | None = None,
) -> FastAPI:
    """A fresh simulated Plivo account. `time_scale` multiplies every scripted duration (and the CPS spacing);
    the REST rate limit counts real seconds."""
    sim = PlivoSim(auth_id, auth_token, cps=cps, time_scale=time_scale, default_script=default_script)
    stats = RestStats()
    faults = FaultBook()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sim.start()
        yield
        await sim.stop()

    app = FastAPI(title="Plivo simulator", lifespan=lifespan)
    app.state.sim = sim
    app.add_middleware(FaultMiddleware, book=faults, error_body=lambda status: plivo_error(f"simulated {status}"))
    app.add_middleware(PlivoGate, sim=sim, stats=stats, rate_limit=rate_limit, rate_window=rate_window)

    def visible(some_id: str) -> SimCall | None:
        call = sim.find(some_id)
        return call if call is not None and sim.visible(call) else None

    @app.post(f"{ACCOUNT}/Call/", status_code=201)
    async def make_call(request: Request) -> JSONResponse:
        params = await _call_params(request)
        missing = [name for name in ("from", "to", "answer_url") if not params.get(name)]
        if missing:
            return JSONResponse(plivo_error(f"{missing[0]} parameter is missing"), status_code=400)
        urls = {
            event: (params[f"{event}_url"], params.get(f"{event}_method", "POST").upper())
            for event in ("answer", "ring", "hangup")
            if params.get(f"{event}_url")
        }
        time_limit = float(params["time_limit"]) if params.get("time_limit") else None
        base_url = str(request.base_url).rstrip("/")
        calls = [
            sim.create_call(
                to=to,
                from_=params["from"],
                urls=urls,
                base_url=base_url,
                ring_timeout=float(params.get("ring_timeout") or 120),
                time_limit=time_limit,
            )
            for to in params["to"].split("<")
        ]
        for call in calls:
            stats.per_request_uuid[call.request_uuid] += 1
            stats.per_call[call.request_uuid] += 1
        # Plivo answers a string for one destination and a list for a bulk (`a<b`) call.
        request_uuid: str | list[str] = calls[0].request_uuid if len(calls) == 1 else [c.request_uuid for c in calls]
        body = {"api_id": str(uuid.uuid4()), "message": "call fired", "request_uuid": request_uuid}
        return JSONResponse(body, status_code=201)

    @app.get(f"{ACCOUNT}/Call/{{some_id}}/")
    async def get_call(some_id: str, status: str | None = None) -> JSONResponse:
        call = visible(some_id)
        if call is None:
            return _not_found()
        if status == "queued":
            if some_id != call.request_uuid or call.state != "queued":
                return _not_found()
            return JSONResponse(
                {
                    "api_id": str(uuid.uuid4()),
                    "call_status": "queued",
                    "direction": "outbound",
                    "from": call.from_,
                    "to": call.to,
                    "request_uuid": call.request_uuid,
                    "call_uuid": None,
                }
            )
        if status == "live":
            if some_id != call.call_uuid or call.state not in LIVE_STATES:
                return _not_found()
            return JSONResponse(
                {
                    "api_id": str(uuid.uuid4()),
                    "call_status": call.state,
                    "direction": "outbound",
                    "from": call.from_,
                    "to": call.to,
                    "call_uuid": call.call_uuid,
                    "request_uuid": call.request_uuid,
                    "caller_name": call.from_,
                    "session_start": call.timeline[-1]["at"],
                }
            )
        if some_id != call.call_uuid or not sim.cdr_ready(call):
            return _not_found()
        return JSONResponse(sim.cdr(call))

    @app.get(f"{ACCOUNT}/Call/")
    async def list_calls(request: Request) -> JSONResponse:
        query = request.query_params
        visible_calls = [c for c in sim.calls.values() if sim.visible(c)]
        if query.get("status") == "live":
            ids = [c.call_uuid for c in visible_calls if c.state in LIVE_STATES]
            return JSONResponse({"api_id": str(uuid.uuid4()), "calls": ids})
        if query.get("status") == "queued":
            ids = [c.request_uuid for c in visible_calls if c.state == "queued"]
            return JSONResponse({"api_id": str(uuid.uuid4()), "calls": ids})
        try:
            selected = _filter_cdrs([c for c in visible_calls if sim.cdr_ready(c)], dict(query))
        except ValueError as exc:
            return JSONResponse(plivo_error(str(exc)), status_code=400)
        limit, offset = int(query.get("limit", 20)), int(query.get("offset", 0))
        page = selected[offset : offset + limit]
        meta = {
            "count": len(selected),
            "limit": limit,
            "offset": offset,
            "previous": None,
            "next": None if offset + limit >= len(selected) else f"offset={offset + limit}",
        }
        return JSONResponse({"api_id": str(uuid.uuid4()), "meta": meta, "objects": [sim.cdr(c) for c in page]})

    @app.delete(f"{ACCOUNT}/Request/{{request_uuid}}/")
    async def cancel_request(request_uuid: str) -> Response:
        call = sim.calls.get(request_uuid)
        if call is None or call.state != "queued":
            return _not_found()
        sim.cancel_queued(call)
        return Response(status_code=204)

    @app.delete(f"{ACCOUNT}/Call/{{call_uuid}}/")
    async def hangup_call(call_uuid: str) -> Response:
        call = sim.by_call_uuid.get(call_uuid)
        if call is None or call.ended:
            return _not_found()
        sim.hangup(call)
        return Response(status_code=204)

    @app.get(f"{ACCOUNT}/Recording/")
    async def list_recordings(call_uuid: str | None = None) -> JSONResponse:
        recordings = [
            r
            for c in sim.calls.values()
            if sim.cdr_ready(c) and (r := sim.recording(c)) and (call_uuid is None or c.call_uuid == call_uuid)
        ]
        meta = {"count": len(recordings), "limit": 20, "offset": 0, "previous": None, "next": None}
        return JSONResponse({"api_id": str(uuid.uuid4()), "meta": meta, "objects": recordings})

    _control_routes(app, sim, stats, faults)
    return app


def _filter_cdrs(calls: list[SimCall], query: dict[str, str]) -> list[SimCall]:
    """`GET Call/` filters: to_number, from_number, call_direction, end_time__{gt,gte,lt,lte} (UTC)."""
    selected = calls
    if "to_number" in query:
        selected = [c for c in selected if c.to == number(query["to_number"])]
    if "from_number" in query:
        selected = [c for c in selected if c.from_ == number(query["from_number"])]
    if query.get("call_direction", "outbound") != "outbound":
        selected = []
    for op in ("gt", "gte", "lt", "lte"):
        raw = query.get(f"end_time__{op}")
        if raw is None:
            continue
        bound = _parse_time(raw).timestamp()
        check = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}[op]
        # Plivo reports whole seconds; compare on that grain so a round-tripped end_time still matches.
        selected = [c for c in selected if c.end_time is not None and check(float(int(c.end_time)), bound)]
    return sorted(selected, key=lambda c: c.end_time or 0.0, reverse=True)


def _control_routes(app: FastAPI, sim: PlivoSim, stats: RestStats, faults: FaultBook) -> None:
    @app.get("/_sim/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/_sim/scripts")
    async def set_script(registration: ScriptRegistration) -> dict[str, Any]:
        scripts = registration.script if isinstance(registration.script, list) else [registration.script]
        sim.scripts.set(registration.to, scripts)
        return sim.scripts.snapshot()

    @app.get("/_sim/scripts")
    async def get_scripts() -> dict[str, Any]:
        return sim.scripts.snapshot()

    @app.post("/_sim/faults")
    async def add_fault(rule: FaultRule) -> dict[str, Any]:
        faults.add(rule)
        return faults.snapshot()

    @app.get("/_sim/faults")
    async def get_faults() -> dict[str, Any]:
        return faults.snapshot()

    @app.get("/_sim/calls")
    async def list_sim_calls() -> dict[str, Any]:
        return {"calls": [sim.describe(c) for c in sim.calls.values()]}

    @app.get("/_sim/calls/{some_id}")
    async def get_sim_call(some_id: str) -> JSONResponse:
        call = sim.find(some_id)
        if call is None:
            return JSONResponse({"detail": "unknown uuid"}, status_code=404)
        return JSONResponse(sim.describe(call))

    @app.get("/_sim/stats")
    async def get_stats() -> dict[str, Any]:
        return stats.snapshot(sim)

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        sim.reset()
        stats.reset()
        faults.reset()
        return {"status": "reset"}

    @app.get("/_sim/recordings/{name}")
    async def recording_file(name: str) -> Response:
        return Response(b"ID3-simulated-recording", media_type="audio/mpeg")


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Plivo Voice REST API simulator")
    parser.add_argument("--auth-id", default="MASIMULATOR")
    parser.add_argument("--auth-token", default="sim-token")
    parser.add_argument("--cps", type=float, default=2.0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--rate-limit", type=int, default=300, help="REST requests per --rate-window seconds")
    parser.add_argument("--rate-window", type=float, default=5.0)
    args = parser.parse_args(argv)
    app = create_plivo_app(
        args.auth_id,
        args.auth_token,
        cps=args.cps,
        time_scale=args.time_scale,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
    )
    serve_forever(app, args.host, args.port)


if __name__ == "__main__":
    main()
