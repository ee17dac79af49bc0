"""`connectivity` against the simulators and a real Redis: every layer named, every failure with its advice."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.ops.conftest import HUNG_FOR_S, PATIENT

Run = Callable[..., tuple[int, dict[str, Any]]]


def test_healthy_peers(connectivity: Run, env: dict[str, str]) -> None:
    code, checks = connectivity(env, "-n", "5", "--timeout", PATIENT)
    assert code == 0
    assert {name: c["verdict"] for name, c in checks.items()} == {
        "agent": "ok",
        "backend": "ok",
        "plivo": "ok",
        "redis": "ok",
    }
    for name in ("agent", "backend", "plivo", "redis"):
        details = checks[name]["details"]
        assert details["dns"].endswith("127.0.0.1"), details
        assert " ms to 127.0.0.1:" in details["tcp"]
        assert details["tls"].startswith("not used")
        assert "over 5 request(s) after the first" in details["latency"]
        assert details["first_request"].endswith("a cold start shows here)")
    assert checks["agent"]["details"]["answers"] == "200 ×6"
    assert checks["plivo"]["details"]["auth"] == "Basic auth"
    assert checks["redis"]["details"]["answers"] == "PONG ×6"


def test_redis_down_is_a_refused_tcp_connect(connectivity: Run, env: dict[str, str], closed_port_url: str) -> None:
    code, checks = connectivity(env | {"REDIS_URL": closed_port_url}, "-n", "2", "--timeout", PATIENT)
    assert code == 1
    redis = checks["redis"]
    assert redis["verdict"] == "fail"
    assert redis["summary"].startswith("TCP: 127.0.0.1:") and "refused" in redis["summary"]
    assert "check the port in REDIS_URL" in redis["remedy"]
    assert checks["agent"]["verdict"] == "ok"


def test_unresolvable_host(connectivity: Run, env: dict[str, str]) -> None:
    code, checks = connectivity(env | {"BACKEND_URL": "http://backend.invalid"}, "-n", "1", "--timeout", PATIENT)
    assert code == 1
    assert checks["backend"]["summary"].startswith("DNS: backend.invalid does not resolve")
    assert "check the host in BACKEND_URL" in checks["backend"]["remedy"]


def test_tls_against_a_plain_http_port(connectivity: Run, env: dict[str, str], peers: dict[str, str]) -> None:
    https = peers["agent"].replace("http://", "https://")
    code, checks = connectivity(env | {"AGENT_SERVER_URL": https}, "-n", "1", "--timeout", PATIENT)
    assert code == 1
    assert checks["agent"]["summary"].startswith("TLS handshake with 127.0.0.1 failed")


def test_403_names_the_invoker_grant(connectivity: Run, env: dict[str, str], peers: dict[str, str]) -> None:
    code, checks = connectivity(env | {"AGENT_SERVER_URL": peers["forbidden"]}, "-n", "3", "--timeout", PATIENT)
    assert code == 1
    assert checks["agent"]["summary"] == "HTTP: agent answered 403 to a request without an ID token: it is private"
    assert "AUTH_MODE=auto" in checks["agent"]["remedy"] and "roles/run.invoker" in checks["agent"]["remedy"]


def test_wrong_plivo_credentials(connectivity: Run, env: dict[str, str]) -> None:
    code, checks = connectivity(env | {"PLIVO_AUTH_TOKEN": "wrong"}, "-n", "1", "--timeout", PATIENT)
    assert (code, checks["plivo"]["verdict"]) == (1, "fail")
    assert "Plivo rejected the credentials" in checks["plivo"]["summary"]


def test_hung_peer_stops_the_series_within_the_timeout(
    connectivity: Run, env: dict[str, str], peers: dict[str, str]
) -> None:
    started = time.monotonic()
    code, checks = connectivity(env | {"BACKEND_URL": peers["hung"]}, "-n", "10", "--timeout", "1")
    assert time.monotonic() - started < HUNG_FOR_S / 2, "the series went on after the hung peer's timeout"
    assert code == 1
    backend = checks["backend"]
    assert backend["summary"] == "HTTP: ReadTimeout"
    assert "accepts connections but does not answer in 1 s" in backend["remedy"]


def test_invalid_settings(connectivity: Run, env: dict[str, str]) -> None:
    code, checks = connectivity(env | {"AGENT_SERVER_URL": "agent:7860"}, "--timeout", PATIENT)
    assert (code, list(checks)) == (1, ["settings"])
    assert "AGENT_SERVER_URL='agent:7860' is not an http(s) URL" in checks["settings"]["summary"]
