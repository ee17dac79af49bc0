"""Backend simulator: records results, spots duplicates by Idempotency-Key, can be scripted down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.simulators.backend import create_backend_app
from local.simulators.server import running

RESULT = {"call_id": "c1", "status": "completed", "duration": 12}


@pytest.fixture(scope="session")
def _shared_backend() -> Iterator[str]:
    with running(create_backend_app()) as base_url:
        yield base_url


@pytest.fixture
def backend(_shared_backend: str) -> str:
    httpx.post(f"{_shared_backend}/_sim/reset").raise_for_status()
    return _shared_backend


def post(backend: str, key: str | None, body: dict[str, Any] = RESULT) -> httpx.Response:
    return httpx.post(f"{backend}/api/call-results", json=body, headers={"Idempotency-Key": key} if key else {})


def test_results_are_recorded_and_duplicates_flagged(backend: str) -> None:
    assert post(backend, "c1:final").json() == {"status": "ok", "duplicate": False}
    again = post(backend, "c1:final")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    post(backend, "c1:final", {**RESULT, "status": "failed"})
    post(backend, None)
    seen = httpx.get(f"{backend}/_sim/results").json()
    assert seen["results"]["c1:final"]["body"] == RESULT
    assert [d["same_body"] for d in seen["duplicates"]] == [True, False]
    assert len(seen["without_key"]) == 1 and seen["total_posts"] == 4


def test_status_fault_then_recovery(backend: str) -> None:
    httpx.post(f"{backend}/_sim/faults", json={"status": 503, "count": 2}).raise_for_status()
    assert [post(backend, "k").status_code for _ in range(3)] == [503, 503, 200]
    assert list(httpx.get(f"{backend}/_sim/results").json()["results"]) == ["k"]


def test_down_until_switched_back_up(backend: str) -> None:
    httpx.post(f"{backend}/_sim/faults", json={"down": True}).raise_for_status()
    assert post(backend, "k").status_code == 503
    assert httpx.get(f"{backend}/health").status_code == 503
    httpx.post(f"{backend}/_sim/faults", json={"down": False}).raise_for_status()
    assert post(backend, "k").status_code == 200 and httpx.get(f"{backend}/health").json() == {"status": "ok"}
    assert httpx.get(f"{backend}/_sim/results").json()["refused_while_down"] == 2


def test_non_json_body_is_400(backend: str) -> None:
    answer = httpx.post(f"{backend}/api/call-results", content=b"not json", headers={"Idempotency-Key": "x"})
    assert answer.status_code == 400
