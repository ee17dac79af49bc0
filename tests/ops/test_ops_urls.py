"""What a URL string says about its Cloud Run service, and the latency percentile: pure functions."""

from __future__ import annotations

import pytest

from callqueue.clients.auth import DEFAULT_METADATA_BASE
from callqueue.ops.metadata import metadata_base
from callqueue.ops.probes import percentile
from callqueue.ops.runapp import parse_run_url, region_from_metadata


def test_deterministic_url_names_service_project_and_region() -> None:
    run = parse_run_url("https://pipecat-agent-staging-443142017693.us-east1.run.app")
    assert (run.form, run.service, run.project_number, run.region) == (
        "deterministic",
        "pipecat-agent-staging",
        "443142017693",
        "us-east1",
    )
    assert parse_run_url("https://backend-staging-443142017693.asia-southeast1.run.app/x").region == "asia-southeast1"


def test_legacy_url_has_no_region() -> None:
    run = parse_run_url("https://queue-system-fixed-abc123xyz-ue.a.run.app")
    assert (run.form, run.service, run.region) == ("legacy", "queue-system-fixed", None)


@pytest.mark.parametrize("url", ["http://127.0.0.1:7860", "https://api.example.com", "not a url", ""])
def test_other_urls_are_not_run_app(url: str) -> None:
    assert parse_run_url(url).form == "not_run_app"


def test_metadata_region_answer() -> None:
    assert region_from_metadata("projects/123/regions/us-east1\n") == "us-east1"
    assert region_from_metadata("us-east1") is None


def test_metadata_base_is_injectable() -> None:
    assert metadata_base(None, {}) == DEFAULT_METADATA_BASE
    assert metadata_base(None, {"GCE_METADATA_HOST": "127.0.0.1:9"}) == "http://127.0.0.1:9"
    assert metadata_base("http://fake:1/", {"GCE_METADATA_HOST": "x"}) == "http://fake:1"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 50), percentile(values, 95)) == (5.0, 10.0)
    assert percentile([7.0], 95) == 7.0
