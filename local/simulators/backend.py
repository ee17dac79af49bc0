"""Results backend simulator: receives the queue's call results and shows exactly what arrived, and how often.

`POST /api/call-results` (JSON; header `Idempotency-Key`) → 200 `{"status": "ok", "duplicate": bool}`; a repeat of
a key is answered 200 too but recorded as a duplicate (with whether its body differed). `GET /health`.
Controls: `POST /_sim/faults` (faults.FaultRule, or `{"down": true|false}`: every public request answers 503
while down), `GET /_sim/results`, `POST /_sim/reset`. Run: `python -m local.simulators.backend --port N`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from local.simulators.faults import ASGIApp, FaultBook, FaultMiddleware, FaultRule, Receive, Scope, Send, send_json
from local.simulators.server import cli_parser, serve_forever

RESULTS_PATH = "/api/call-results"


class DownSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    down: bool


class Outage:
    """Pure ASGI: while `down`, every public request answers 503 (a backend that is deploying or broken)."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        public = scope["type"] == "http" and not str(scope.get("path", "")).startswith("/_sim/")
        if public and self.state["down"]:
            self.state["refused"] += 1
            await send_json(send, 503, {"detail": "backend down (simulated)"}, [(b"retry-after", b"1")])
            return
        await self.app(scope, receive, send)


def create_backend_app(results_path: str = RESULTS_PATH) -> FastAPI:
    """A fresh backend that records every result posted to `results_path`."""
    results: dict[str, dict[str, Any]] = {}
    duplicates: list[dict[str, Any]] = []
    without_key: list[dict[str, Any]] = []
    state: dict[str, Any] = {"down": False, "refused": 0, "posts": 0}
    faults = FaultBook()

    app = FastAPI(title="Backend simulator")
    app.add_middleware(FaultMiddleware, book=faults, error_body=lambda status: {"detail": f"simulated {status}"})
    app.add_middleware(Outage, state=state)

    @app.post(results_path)
    async def post_result(request: Request) -> JSONResponse:
        state["posts"] += 1
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"detail": "body must be JSON"}, 400)
        key = request.headers.get("Idempotency-Key")
        traceparent = request.headers.get("traceparent")
        entry = {"key": key, "body": body, "received_at": time.time(), "traceparent": traceparent}
        if key is None:
            without_key.append(entry)
            return JSONResponse({"status": "ok", "duplicate": False})
        if key in results:
            duplicates.append({**entry, "same_body": results[key]["body"] == body})
            return JSONResponse({"status": "ok", "duplicate": True})
        results[key] = entry
        return JSONResponse({"status": "ok", "duplicate": False})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sim/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sim/results")
    async def get_results() -> dict[str, Any]:
        return {
            "results": results, "duplicates": duplicates, "without_key": without_key,
            "total_posts": state["posts"], "refused_while_down": state["refused"], "faults": faults.snapshot(),
        }  # fmt: skip

    @app.post("/_sim/faults")
    async def add_fault(rule: FaultRule | DownSwitch) -> dict[str, Any]:
        if isinstance(rule, DownSwitch):
            state["down"] = rule.down
        else:
            faults.add(rule)
        return {"down": state["down"], **faults.snapshot()}

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        results.clear()
        duplicates.clear()
        without_key.clear()
        state.update(down=False, refused=0, posts=0)
        faults.reset()
        return {"status": "reset"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Results backend simulator")
    parser.add_argument("--results-path", default=RESULTS_PATH)
    args = parser.parse_args(argv)
    serve_forever(create_backend_app(args.results_path), args.host, args.port)


if __name__ == "__main__":
    main()
