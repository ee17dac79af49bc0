"""The 202 of POST /api/calls/queue is written directly on the hot path: the same bytes and headers JSONResponse
makes, for every status a new call can start in."""

from __future__ import annotations

import pytest
from starlette.responses import JSONResponse

from callqueue.api.calls import _Accepted
from callqueue.ids import new_call_id


@pytest.mark.parametrize("status", ["queued", "scheduled"])
def test_the_direct_202_is_what_json_response_makes(status: str) -> None:
    call_id = new_call_id()
    direct = _Accepted(call_id, status)
    usual = JSONResponse({"call_id": call_id, "status": status, "replayed": False}, 202)
    assert (direct.status_code, direct.body, direct.raw_headers) == (usual.status_code, usual.body, usual.raw_headers)
    assert direct.background is None
