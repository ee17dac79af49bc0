"""Observability tests run against the whole stack of tests/tracking (simulators over real HTTP, one Redis)."""

from __future__ import annotations

from tests.tracking.conftest import stack

__all__ = ["stack"]
