"""Shared fixtures: a real Redis (REDIS_URL, set by `python -m local.with_redis`), isolated per test by key prefix."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

INFRA_TESTS = Path(__file__).parent / "infra"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is not set: run the tests with `make test` (it starts a throwaway Redis)")
    return url


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A fresh REDIS_KEY_PREFIX per test; the test's keys are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist (`make unit`), the infra tests share one worker: each worker that runs one pays the provider
    import (tens of seconds of CPU) for its session synthesis; one group pays it once."""
    for item in items:
        if item.path.is_relative_to(INFRA_TESTS):
            item.add_marker(pytest.mark.xdist_group("infra-synthesis"))
