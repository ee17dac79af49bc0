"""The timing profile table: each variable in each mode, overrides, platform detection, and bad values."""

from __future__ import annotations

import pytest

from callqueue.settings import (
    TIMING_VARIABLES,
    SettingsError,
    cloud_run_timing_env,
    load_settings,
    load_timing,
)
from local.config_doc import DOC, render

LOCAL = {"INITIAL_STATUS_DELAY": 5, "STATUS_CHECK_INTERVAL": 10, "REQUEST_TIMEOUT": 10, "MAX_STATUS_RETRIES": 2,
         "MAX_CONSECUTIVE_ERRORS": 3, "AUTO_MISS_TIMEOUT": 45, "SERVICE_TIMEOUT": 300,
         "PLIVO_QUEUE_TIMEOUT": 300}  # fmt: skip
CLOUD_RUN = {"INITIAL_STATUS_DELAY": 20, "STATUS_CHECK_INTERVAL": 15, "REQUEST_TIMEOUT": 30, "MAX_STATUS_RETRIES": 3,
             "MAX_CONSECUTIVE_ERRORS": 6, "AUTO_MISS_TIMEOUT": 60, "SERVICE_TIMEOUT": 300,
             "PLIVO_QUEUE_TIMEOUT": 600}  # fmt: skip


def values(env: dict[str, str]) -> dict[str, int]:
    return {k: int(v) for k, v in load_timing(env).as_env().items()}


@pytest.mark.parametrize(
    ("env", "expected", "profile"),
    [
        ({}, LOCAL, "local"),
        ({"CLOUD_RUN_OPTIMIZED": "false"}, LOCAL, "local"),
        ({"CLOUD_RUN_OPTIMIZED": "true"}, CLOUD_RUN, "cloud_run"),
        ({"CLOUD_RUN_OPTIMIZED": "TRUE"}, CLOUD_RUN, "cloud_run"),
        ({"K_SERVICE": "queue"}, CLOUD_RUN, "cloud_run"),
        ({"K_SERVICE": "queue", "CLOUD_RUN_OPTIMIZED": "false"}, LOCAL, "local"),
    ],
)
def test_profile_is_chosen_by_the_switch_or_else_the_platform(env: dict[str, str], expected: dict[str, int],
                                                              profile: str) -> None:  # fmt: skip
    assert values(env) == expected
    assert load_timing(env).name == profile


@pytest.mark.parametrize("variable", [v.name for v in TIMING_VARIABLES])
@pytest.mark.parametrize("mode", ["true", "false"])
def test_each_variable_overrides_its_profile_value_alone(variable: str, mode: str) -> None:
    base = CLOUD_RUN if mode == "true" else LOCAL
    new = 250 if variable == "SERVICE_TIMEOUT" else 7
    timing = load_timing({"CLOUD_RUN_OPTIMIZED": mode, variable: str(new)})
    assert values({"CLOUD_RUN_OPTIMIZED": mode, variable: str(new)}) == {**base, variable: new}
    assert timing.sources[variable] == "override"
    assert {s for k, s in timing.sources.items() if k != variable} == {
        "profile:cloud_run" if mode == "true" else "profile:local"
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STATUS_CHECK_INTERVAL": "fast"}, "STATUS_CHECK_INTERVAL='fast' is not a whole number"),
        ({"REQUEST_TIMEOUT": "0"}, "REQUEST_TIMEOUT=0 is out of range: set it to an integer in [1, 300]"),
        ({"SERVICE_TIMEOUT": "7200"}, "SERVICE_TIMEOUT=7200 is out of range"),
        ({"MAX_STATUS_RETRIES": "-1"}, "MAX_STATUS_RETRIES=-1 is out of range"),
        ({"CLOUD_RUN_OPTIMIZED": "maybe"}, "CLOUD_RUN_OPTIMIZED='maybe' is not a boolean"),
        ({"REQUEST_TIMEOUT": "60", "SERVICE_TIMEOUT": "30"}, "REQUEST_TIMEOUT=60 must be below SERVICE_TIMEOUT=30"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379' is not a Redis URL"),
        ({"AGENT_SERVER_URL": "agent:7860"}, "AGENT_SERVER_URL='agent:7860' is not an http(s) URL"),
        ({"PLIVO_AUTH_ID": "MA123"}, "PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN must be set together"),
        ({"DISPATCH_RATE": "0"}, "DISPATCH_RATE=0 is out of range"),
        ({"AUTH_MODE": "magic"}, "AUTH_MODE='magic' is not valid"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    assert message in str(raised.value)


def test_start_up_banner_is_the_seeds_line() -> None:
    summary = load_timing({"CLOUD_RUN_OPTIMIZED": "true"}).summary()
    assert summary.startswith("CLOUD RUN MODE: Delays=20s, Interval=15s, Timeout=30s")


def test_cloud_run_env_block_is_validated_like_the_service() -> None:
    assert {k: v for k, v in cloud_run_timing_env().items() if k != "CLOUD_RUN_OPTIMIZED"} == {
        k: str(v) for k, v in CLOUD_RUN.items()
    }
    with pytest.raises(SettingsError, match="unknown timing variable"):
        cloud_run_timing_env({"POLL_EVERY": 3})
    with pytest.raises(SettingsError, match="REQUEST_TIMEOUT=0 is out of range"):
        cloud_run_timing_env({"REQUEST_TIMEOUT": 0})


def test_configuration_reference_matches_the_settings_module() -> None:
    assert DOC.read_text() == render(DOC.read_text()), "docs/configuration.md is stale: run `make docs`"


def test_env_example_names_only_real_settings() -> None:
    import re
    from pathlib import Path

    from callqueue.settings import CLOUD_RUN_OPTIMIZED, PLAIN_BY_NAME, TIMING_BY_NAME

    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    names = set(re.findall(r"^# ([A-Z][A-Z_]+)=", text, re.M))
    known = set(PLAIN_BY_NAME) | set(TIMING_BY_NAME) | {CLOUD_RUN_OPTIMIZED}
    assert len(names) >= 5 and names <= known, names - known
