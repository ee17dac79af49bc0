"""GET /metrics on the queue API role: what a call did, queue-wide truth from Redis, bounded labels."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from callqueue.api.app import create_app
from callqueue.metrics.catalog import CAMPAIGN_LABELS
from callqueue.settings import load_settings
from local.simulators.server import running
from tests.observability.metrics_text import scrape, value
from tests.tracking.conftest import StackFactory, new_number, wait_for

QUICK = {"ring_after": 0.2, "answer_after": 0.3, "talk_for": 0.5, "cdr_delay": 0.3, "outcome": "completed"}


def test_a_completed_call_shows_in_every_metric_it_touched(stack: StackFactory) -> None:
    s = stack()
    number = new_number()
    s.script(number, QUICK)
    call_id = s.queue(number)
    assert s.wait(call_id)["status"] == "completed"
    wait_for(lambda: s.backend_results()["results"], what="the result delivered")

    def settled() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        samples = scrape(s.service)
        return samples if value(samples, "callqueue_outbox_depth") == 0 else None

    samples = wait_for(settled, what="the outbox to drain")
    assert value(samples, "callqueue_calls_enqueued_total", campaign="tracking") == 1
    assert value(samples, "callqueue_calls_dispatched_total", campaign="tracking") == 1
    assert value(samples, "callqueue_agent_starts_total", outcome="accepted") == 1
    assert value(samples, "callqueue_calls_finished_total", outcome="completed", campaign="tracking") == 1
    assert value(samples, "callqueue_dial_to_outcome_seconds_count") == 1
    assert value(samples, "callqueue_plivo_callbacks_total", event="hangup", result="accepted") == 1
    assert value(samples, "callqueue_result_deliveries_total", outcome="delivered") == 1
    assert value(samples, "callqueue_outbound_requests_total", peer="agent", method="POST", code="200") == 1
    assert value(samples, "callqueue_outbound_requests_total", peer="backend", method="POST", code="200") == 1
    assert value(samples, "callqueue_queue_depth") == 0
    assert value(samples, "callqueue_in_flight") == 0
    assert value(samples, "callqueue_queue_calls", status="completed") == 1
    assert value(samples, "callqueue_dispatch_rate_limit") == 50
    assert value(samples, "callqueue_outbox_dead_letters") == 0
    assert value(samples, "callqueue_live_dispatch_workers") == 4
    assert (value(samples, "callqueue_redis_ping_seconds") or 0) > 0
    text = httpx.get(f"{s.service}/metrics").text
    assert call_id not in text and number not in text and number.lstrip("+") not in text, "no ids in labels"


@pytest.fixture
def api(redis_url: str, key_prefix: str) -> Iterator[str]:
    settings = load_settings({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0"})
    with running(create_app(settings, background=False)) as base:
        yield base


def test_campaign_labels_are_bounded_per_process_and_queue_wide(api: str) -> None:
    campaigns = [f"camp-{n}" for n in range(CAMPAIGN_LABELS + 7)]
    with httpx.Client(base_url=api, timeout=10) as client:
        for campaign in campaigns:
            body = {"phone_number": "+14155550100", "campaign_id": campaign, "call_config": {"flow_name": "f"}}
            call_id = client.post("/api/calls/queue", json=body).json()["call_id"]
            assert client.post(f"/api/calls/{call_id}/cancel").status_code == 200  # queued → canceled: final
    samples = scrape(api)
    enqueued = {dict(labels)["campaign"]: v for (name, labels), v in samples.items() if name.endswith("enqueued_total")}
    finished = {dict(labels)["campaign"]: v for (name, labels), v in samples.items() if name.endswith("finished_total")}
    for by_campaign in (enqueued, finished):
        assert len(by_campaign) == CAMPAIGN_LABELS + 1
        assert by_campaign["other"] == 7 and by_campaign["camp-0"] == 1
        assert sum(by_campaign.values()) == len(campaigns)


def test_openmetrics_when_asked(api: str) -> None:
    answer = httpx.get(f"{api}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.rstrip().endswith("# EOF")
    plain = httpx.get(f"{api}/metrics")
    assert plain.headers["content-type"].startswith("text/plain") and "callqueue_queue_depth 0.0" in plain.text


def test_the_webhooks_role_and_a_disabled_switch_serve_no_metrics(redis_url: str, key_prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0"}
    hooks = create_app(load_settings({**env, "SERVICE_ROLE": "webhooks"}))
    off = create_app(load_settings({**env, "METRICS_ENABLED": "false"}), background=False)
    with running(hooks) as hooks_base, running(off) as off_base:
        for path in ("/metrics", "/operator/", "/api/operator/overview", "/operator/static/app.js"):
            assert httpx.get(hooks_base + path).status_code == 404, path
        assert httpx.get(off_base + "/metrics").status_code == 404
        assert httpx.get(off_base + "/operator/").status_code == 200
