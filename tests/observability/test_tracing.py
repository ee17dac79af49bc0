"""One trace per call: from the enqueue request to the agent's /start, the backend's result, and every log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from callqueue.logs import TRACE_FIELD, CloudLoggingFormatter
from callqueue.tracing import from_headers, parse_cloud_trace, parse_traceparent, request_traceparent
from tests.tracking.conftest import StackFactory, new_number, wait_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE}-00f067aa0ba902b7-01"
QUICK = {"ring_after": 0.2, "answer_after": 0.3, "talk_for": 0.5, "cdr_delay": 0.3, "outcome": "completed"}


def test_trace_headers_are_parsed_and_bad_ones_start_a_new_trace() -> None:
    assert parse_traceparent(INCOMING) is not None and parse_traceparent(INCOMING).trace_id == TRACE  # type: ignore[union-attr]
    for bad in ("", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "ff-" + TRACE + "-00f067aa0ba902b7-01", "garbage"):
        assert parse_traceparent(bad) is None, bad
    cloud = parse_cloud_trace(f"{TRACE.upper()}/1;o=1")
    assert cloud is not None and cloud.trace_id == TRACE and cloud.span_id == "0000000000000001" and cloud.sampled
    assert from_headers({"x-cloud-trace-context": f"{TRACE}/42;o=0"}).trace_id == TRACE
    assert from_headers({"traceparent": INCOMING, "x-cloud-trace-context": "a" * 32}).trace_id == TRACE
    started = from_headers({})
    assert len(started.trace_id) == 32 and started.trace_id != TRACE


def test_a_new_call_keeps_the_request_trace_or_starts_an_unsampled_one() -> None:
    assert request_traceparent(INCOMING, None) == INCOMING
    assert request_traceparent(None, f"{TRACE}/1;o=1") == f"00-{TRACE}-0000000000000001-01"
    assert request_traceparent("garbage", None) != "garbage"
    first, second = request_traceparent(None, None), request_traceparent(None, None)
    for started in (first, second):
        parsed = parse_traceparent(started)
        assert parsed is not None and parsed.traceparent == started and not parsed.sampled, started
    assert first.split("-")[1] != second.split("-")[1], "each request without a trace starts its own"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(CloudLoggingFormatter(project="callqueue-staging"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("callqueue")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_the_enqueue_trace_reaches_the_agent_the_backend_and_the_log_lines(
    stack: StackFactory, log_lines: Lines
) -> None:
    s = stack()
    number = new_number()
    s.script(number, QUICK)
    answer = s.http.post(
        f"{s.service}/api/calls/queue",
        json={"phone_number": number, "campaign_id": "traced", "call_config": {"flow_name": "f"}},
        headers={"traceparent": INCOMING},
    )
    call_id = answer.json()["call_id"]
    record = s.wait(call_id)
    assert record["status"] == "completed" and record["trace_id"] == TRACE

    start = next(e for e in s.http.get(f"{s.agent}/_sim/starts").json()["starts"] if e["call_id"] == call_id)
    agent_trace = parse_traceparent(start["traceparent"])
    assert agent_trace is not None and agent_trace.trace_id == TRACE and agent_trace.span_id != "00f067aa0ba902b7"
    result = wait_for(lambda: s.backend_results()["results"].get(f"{call_id}:completed"), what="the result")
    backend_trace = parse_traceparent(result["traceparent"])
    assert backend_trace is not None and backend_trace.trace_id == TRACE

    about_call = [line for line in log_lines.lines if call_id in str(line["message"])]
    assert len(about_call) >= 3, "dispatch, ringing, completed, delivered"
    for line in about_call:
        assert line["call_id"] == call_id, line
        assert line[TRACE_FIELD] == f"projects/callqueue-staging/traces/{TRACE}", line


def test_without_a_project_lines_carry_the_bare_trace_id() -> None:
    from callqueue.tracing import bind_call

    record = logging.LogRecord("callqueue.x", logging.INFO, __file__, 1, "call %s: hello", ("abc",), None)
    bind_call("abc", INCOMING)
    try:
        line = json.loads(CloudLoggingFormatter(project=None).format(record))
    finally:
        bind_call(None)
    assert line["call_id"] == "abc" and line["trace_id"] == TRACE and TRACE_FIELD not in line
