"""Voice agent simulator, shaped like pipecat's Plivo outbound example (pipecat-examples plivo-chatbot/outbound).

The agent contract the queue service relies on (the pipecat example's `/start` plus this project's additions):

- `POST /start`, JSON `{"dialout_settings": {"phone_number": "+1…"}, "call_id", "campaign_id", "call_config",
  "callbacks": {"ring_url", "hangup_url"}}`, optional header `Idempotency-Key` (else `call_id` is the key).
  The agent places the call through Plivo (`POST Call/` with `answer_url` = its own `/answer`, the given
  ring/hang-up URLs passed through) and answers 200 `{"call_uuid": <Plivo request_uuid>, "status":
  "call_initiated", "phone_number"}` — the field named `call_uuid` holds Plivo's *request* uuid, as in the
  example. A repeated start with the same key returns the first answer and does not dial again. A start Plivo
  refused answers 502 and is not remembered (a retry dials).
- `GET /calls/{call_id}` (the status contract) → 200 `{"call_id", "request_uuid", "call_uuid" (null until
  dialled), "status": queued|ringing|in_progress|completed|busy|no_answer|failed|canceled, "duration",
  "hangup_cause", "recording_url"}` (null until known); 200 `{"status": "dial_unconfirmed"}` when its create-call
  got no answer from Plivo (it may exist: only Plivo can tell); 200 `{"status": "starting"}` while a start for it is
  being handled; or 404 `{"status": "not_started"}` when no start
  for it was ever received — the explicit answer the queue may take as proof that the dial does not exist.
- `GET /health` → 200 `{"status": "ok"}`; `POST /answer` → Plivo XML with a bidirectional `<Stream>` to `/ws`.
- Deployed, the agent is public (Plivo must reach `/answer` and `/ws`), so `/start` and `GET /calls/{call_id}`
  verify the caller's Google ID token (audience = the agent's URL, caller = the queue's service account) before
  reading the body: 401 without a valid token, 403 for another caller. `caller_policy` turns that on here
  (`id_tokens.CallerPolicy`); without it the simulator is the stock example, which checks no identity.
- Optionally (Redis URL + key prefix): every status change is appended to the stream `{prefix}:agent-events`
  with fields `call_id, status, at` (epoch seconds), `source="agent"` and, once known, `request_uuid, call_uuid,
  duration, hangup_cause, recording_url`.

Modes (`POST /_sim/mode {"mode", "answer_delay"}`, or `--mode` / `--answer-delay`): `conformant` (default) is the
contract above. `stock` behaves exactly like pipecat's stock example: it passes only `answer_url` to Plivo (no ring
or hang-up callbacks), ignores `Idempotency-Key` (every `/start` dials), has no `GET /calls/{call_id}` route
(FastAPI's bare 404 `{"detail": "Not Found"}`) and answers 500 when its create-call fails. `answer_delay` (s, both
modes) dials first and answers `/start` only that much later: a cold start or a slow Plivo, while the person is
already being dialled.

Simulator controls: `POST /_sim/faults` (see faults.FaultRule; default path `/start`; `drop_after_dial: true`
places the call and cuts the connection), `GET /_sim/starts`, `POST /_sim/reset`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from local.simulators.agent_status import AgentCall, StatusMirror
from local.simulators.faults import ASGIApp, FaultBook, FaultMiddleware, FaultRule, Message, Receive, Scope, Send
from local.simulators.id_tokens import CallerPolicy
from local.simulators.server import cli_parser, serve_forever


class AgentFault(FaultRule):
    """A fault rule plus the agent's shorthand `drop_after_dial` (= `drop`: dial, then cut the connection)."""

    model_config = ConfigDict(extra="forbid")
    drop_after_dial: bool = False

    @model_validator(mode="after")
    def _alias(self) -> AgentFault:
        if self.drop_after_dial:
            self.drop = True
        return self


AgentMode = Literal["conformant", "stock"]
AGENT_MODES: tuple[AgentMode, ...] = ("conformant", "stock")


class ModeSettings(BaseModel):
    """How the simulated agent behaves (module docstring, "Modes")."""

    model_config = ConfigDict(extra="forbid")
    mode: AgentMode = "conformant"
    answer_delay: float = Field(default=0.0, ge=0)


class StartRecorder:
    """Pure ASGI, outermost: notes every `POST /start` received, before any fault can answer it."""

    def __init__(self, app: ASGIApp, starts: list[dict[str, Any]]) -> None:
        self.app = app
        self.starts = starts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/start" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        entry = _start_entry(scope, body)
        self.starts.append(entry)
        scope["sim.start"] = entry
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
        entry["fault"] = scope.get("sim.fault")


def _start_entry(scope: Scope, body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers") or []}
    dialout = data.get("dialout_settings")
    return {
        "received_at": time.time(), "call_id": data.get("call_id"),
        "idempotency_key": headers.get("idempotency-key"), "traceparent": headers.get("traceparent"),
        "phone_number": dialout.get("phone_number") if isinstance(dialout, dict) else None,
        "dialled": False, "replayed": False, "request_uuid": None, "error": None, "fault": None, "body": data,
    }  # fmt: skip


def _answer_xml(ws_url: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n'
        f'  <Stream bidirectional="true" keepCallAlive="true" contentType="audio/x-mulaw;rate=8000">{ws_url}</Stream>\n'
        "</Response>\n"
    )


def create_agent_app(
    plivo_url: str, auth_id: str = "MASIMULATOR", auth_token: str = "sim-token", *,
    from_number: str = "+15550000000", public_url: str | None = None, redis_url: str | None = None,
    key_prefix: str = "cq", poll_interval: float = 0.1, plivo_timeout: float = 5.0,
    caller_policy: CallerPolicy | None = None, mode: AgentMode = "conformant", answer_delay: float = 0.0,
) -> FastAPI:  # fmt: skip
    """A fresh agent placing calls through the Plivo (simulator) at `plivo_url` with these credentials.

    `public_url` is the agent's own base URL for `answer_url` (default: the URL /start was called on).
    `redis_url` turns on the agent-events stream under `key_prefix`. `caller_policy` makes `/start` and
    `/calls/{call_id}` demand the queue's Google ID token, as a deployed agent must. `mode`/`answer_delay`: the
    module docstring's "Modes" (changeable at run time over `POST /_sim/mode`).
    """
    starts: list[dict[str, Any]] = []
    calls: dict[str, AgentCall] = {}
    answers: dict[str, dict[str, Any]] = {}
    unconfirmed: set[str] = set()  # call_ids whose create-call timed out: Plivo may have placed them
    starting: set[str] = set()  # call_ids whose start is being handled right now
    locks: dict[str, asyncio.Lock] = {}
    faults = FaultBook(default_path="/start")
    tasks: set[asyncio.Task[None]] = set()
    holder: dict[str, Any] = {}
    behaviour = ModeSettings(mode=mode, answer_delay=answer_delay)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=plivo_timeout) as http:
            mirror = StatusMirror(plivo_url, http, redis_url, key_prefix)
            holder.update(http=http, mirror=mirror)
            yield
            for task in list(tasks):
                task.cancel()
            await mirror.close()

    app = FastAPI(title="Agent simulator", lifespan=lifespan)
    app.add_middleware(FaultMiddleware, book=faults, error_body=lambda status: {"detail": f"simulated {status}"})
    app.add_middleware(StartRecorder, starts=starts)

    async def dial(phone: str, callbacks: dict[str, Any], answer_url: str) -> str:
        body = {"from": from_number, "to": phone, "answer_url": answer_url, "answer_method": "POST"}
        for name in ("ring_url", "hangup_url") if behaviour.mode == "conformant" else ():
            if callbacks.get(name):
                body[name] = str(callbacks[name])
        url = f"{plivo_url.rstrip('/')}/v1/Account/{auth_id}/Call/"
        answer = await holder["http"].post(url, json=body, auth=(auth_id, auth_token))
        if answer.status_code != 201:
            raise RuntimeError(f"Plivo answered {answer.status_code}: {answer.text[:200]}")
        request_uuid = answer.json()["request_uuid"]
        return str(request_uuid[0] if isinstance(request_uuid, list) else request_uuid)

    @app.post("/start")
    async def start(request: Request) -> Response:
        entry: dict[str, Any] = request.scope.get("sim.start", {})
        if caller_policy is not None and (refused := caller_policy.refusal(request)) is not None:
            entry["error"] = f"refused {refused.status_code}: {bytes(refused.body).decode()}"
            return refused
        try:
            data = await request.json()
            phone = str(data["dialout_settings"]["phone_number"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"detail": "body must be JSON with dialout_settings.phone_number"}, 400)
        call_id = data.get("call_id")
        if behaviour.mode == "stock":
            return await stock_start(entry, request, data, phone)
        key = request.headers.get("Idempotency-Key") or call_id
        lock = locks.setdefault(key, asyncio.Lock()) if key else asyncio.Lock()
        async with lock:
            if key and key in answers:
                entry["replayed"] = True
                return JSONResponse(answers[key])
            answer_url = (public_url or str(request.base_url)).rstrip("/") + "/answer"
            if call_id:
                starting.add(str(call_id))
            try:
                request_uuid = await dial(phone, data.get("callbacks") or {}, answer_url)
            except (RuntimeError, httpx.HTTPError, ValueError, KeyError) as exc:
                entry["error"] = str(exc)
                if call_id and isinstance(exc, httpx.TimeoutException):
                    # Plivo may have placed it: say so on the status route, never "not started".
                    unconfirmed.add(str(call_id))
                return JSONResponse({"detail": f"could not place the call: {exc}"}, 502)
            finally:
                starting.discard(str(call_id))
            entry.update(dialled=True, request_uuid=request_uuid)
            answer = {"call_uuid": request_uuid, "status": "call_initiated", "phone_number": phone}
            if key:
                answers[key] = answer
            if call_id:
                unconfirmed.discard(str(call_id))
                call = calls[str(call_id)] = AgentCall(str(call_id), request_uuid, phone)
                if redis_url:
                    task = asyncio.get_running_loop().create_task(holder["mirror"].watch(call, poll_interval))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        if behaviour.answer_delay:
            await asyncio.sleep(behaviour.answer_delay)
        return JSONResponse(answer)

    async def stock_start(entry: dict[str, Any], request: Request, data: dict[str, Any], phone: str) -> Response:
        """pipecat's stock example: dial with answer_url only, no key, no memory; 500 when the dial fails."""
        answer_url = (public_url or str(request.base_url)).rstrip("/") + "/answer"
        try:
            request_uuid = await dial(phone, {}, answer_url)
        except (RuntimeError, httpx.HTTPError, ValueError, KeyError) as exc:
            entry["error"] = str(exc)
            return Response("Internal Server Error", 500, media_type="text/plain")
        entry.update(dialled=True, request_uuid=request_uuid)
        if behaviour.answer_delay:
            await asyncio.sleep(behaviour.answer_delay)
        return JSONResponse({"call_uuid": request_uuid, "status": "call_initiated", "phone_number": phone})

    @app.get("/calls/{call_id}")
    async def call_status(call_id: str, request: Request) -> JSONResponse:
        if caller_policy is not None and (refused := caller_policy.refusal(request)) is not None:
            return refused
        if behaviour.mode == "stock":  # no such route in the stock example: FastAPI's own answer
            return JSONResponse({"detail": "Not Found"}, 404)
        call = calls.get(call_id)
        if call is None:
            if call_id in unconfirmed or call_id in starting:
                status = "dial_unconfirmed" if call_id in unconfirmed else "starting"
                return JSONResponse({"call_id": call_id, "status": status})
            return JSONResponse({"status": "not_started", "detail": "no start was received for this call_id"}, 404)
        await holder["mirror"].refresh(call)
        return JSONResponse(call.view())

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/answer", methods=["GET", "POST"])
    async def answer(request: Request) -> Response:
        ws_url = (public_url or str(request.base_url)).rstrip("/").replace("http", "ws", 1) + "/ws"
        return Response(_answer_xml(ws_url), media_type="application/xml")

    @app.get("/_sim/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/_sim/faults")
    async def add_fault(rule: AgentFault) -> dict[str, Any]:
        faults.add(FaultRule.model_validate(rule.model_dump(exclude={"drop_after_dial"})))
        return faults.snapshot()

    @app.get("/_sim/starts")
    async def list_starts() -> dict[str, Any]:
        return {"starts": starts, "faults": faults.snapshot()}

    @app.get("/_sim/calls")
    async def list_calls() -> dict[str, Any]:
        return {"calls": [dict(c.view(), events=c.events) for c in calls.values()]}

    @app.get("/_sim/mode")
    async def get_mode() -> dict[str, Any]:
        return behaviour.model_dump()

    @app.post("/_sim/mode")
    async def set_mode(new: ModeSettings) -> dict[str, Any]:
        behaviour.mode, behaviour.answer_delay = new.mode, new.answer_delay
        return behaviour.model_dump()

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        behaviour.mode, behaviour.answer_delay = mode, answer_delay  # back to how the app was created
        unconfirmed.clear()
        starts.clear()
        calls.clear()
        answers.clear()
        locks.clear()
        faults.reset()
        return {"status": "reset"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Voice agent simulator (pipecat-shaped)")
    parser.add_argument("--plivo-url", required=True, help="base URL of the Plivo simulator")
    parser.add_argument("--auth-id", default="MASIMULATOR")
    parser.add_argument("--auth-token", default="sim-token")
    parser.add_argument("--from-number", default="+15550000000")
    parser.add_argument("--public-url", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--key-prefix", default="cq")
    parser.add_argument(
        "--require-id-token", action="store_true", help="demand the queue's ID token on /start and /calls (deployed)"
    )
    parser.add_argument("--mode", choices=AGENT_MODES, default="conformant", help="conformant (default) or stock")
    parser.add_argument("--answer-delay", type=float, default=0.0, help="seconds between dialling and answering")
    parser.add_argument("--plivo-timeout", type=float, default=5.0, help="seconds before giving up on a create-call")
    parser.add_argument("--caller", action="append", default=None, help="service account allowed to call (repeat)")
    args = parser.parse_args(argv)
    policy = CallerPolicy(callers=frozenset(args.caller)) if args.caller else CallerPolicy()
    app = create_agent_app(
        args.plivo_url, args.auth_id, args.auth_token, from_number=args.from_number,
        public_url=args.public_url, redis_url=args.redis_url, key_prefix=args.key_prefix,
        caller_policy=policy if args.require_id_token else None, mode=args.mode, answer_delay=args.answer_delay,
        plivo_timeout=args.plivo_timeout,
    )  # fmt: skip
    serve_forever(app, args.host, args.port)


if __name__ == "__main__":
    main()
