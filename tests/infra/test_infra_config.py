"""Environment file validation: each rule stops synthesis naming the file, the key and the fix.

These tests import only the config model, never the provider bindings, so they run in well under a second.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, load_environment, load_environments, validate_environment
from infra.main import ENVIRONMENTS_DIR
from infra.naming import REPO_ROOT

SOURCE = "environments/demo.toml"
BASE: dict[str, Any] = {
    "project": "demo-project",
    "region": "europe-west1",
    "state_bucket": "demo-tfstate",
    "deletion_protection": False,
    "agent": {"image": "r/agent:1.0", "longest_call_seconds": 600, "timeout_seconds": 900},
    "backend": {"image": "r/backend:1.0"},
    "redis": {"mode": "memorystore"},
    "plivo": {"auth_id_version": "1", "auth_token_version": "1"},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """BASE with one dotted key set (value `...` deletes it)."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_environment("demo", SOURCE, data)
    return str(caught.value)


def test_base_is_valid_and_defaults_apply() -> None:
    env = validate_environment("demo", SOURCE, BASE)
    assert env.config.queue.timeout_seconds == 300
    assert env.config.backend.timeout_seconds == 300
    assert env.config.queue.min_instances >= 1
    assert env.timing_overrides() == {"SERVICE_TIMEOUT": 300}
    hooks = env.config.webhooks
    assert (hooks.min_instances, hooks.max_instances, hooks.timeout_seconds) == (0, 2, 300)
    assert env.webhooks_timing_overrides() == {"SERVICE_TIMEOUT": 300}


def test_committed_environments_are_valid() -> None:
    envs = load_environments(ENVIRONMENTS_DIR, REPO_ROOT)
    names = {e.name for e in envs}
    assert {"staging", "production"} <= names
    prod = next(e for e in envs if e.name == "production")
    assert prod.config.deletion_protection is True


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("colour", "blue", ["colour", "Extra inputs are not permitted", "Fix: remove `colour`"]),
        ("agent.colour", "blue", ["agent.colour", "Fix: remove `agent.colour`"]),
        ("state_bucket", ..., ["state_bucket", "Field required", "Fix: add `state_bucket = …`"]),
        ("agent.image", ..., ["agent.image", "Field required", "Fix: add `agent.image = …`"]),
        ("region", "mars-north1", ["region", "'mars-north1' is not a Cloud Run region", "Fix: use one of"]),
        ("agent.region", "us-east1", ["agent.region", "outside the environment's region", 'agent.region = "europe']),
        ("redis.region", "asia-east1", ["redis.region", "outside the environment's region"]),
        ("agent.timeout_seconds", 300, ["agent.timeout_seconds", "shorter than agent.longest_call_seconds", ">= 600"]),
        ("queue.timeout_seconds", 3601, ["queue.timeout_seconds", "<= 3600", "maximum request timeout"]),
        ("agent.timeout_seconds", 4000, ["agent.timeout_seconds", "<= 3600"]),
        ("queue.min_instances", 0, ["queue.min_instances", ">= 1"]),
        ("queue.cpu_idle", True, ["queue.cpu_idle", "Fix: remove"]),
        ("webhooks.colour", "blue", ["webhooks.colour", "Extra inputs are not permitted", "Fix: remove"]),
        ("webhooks.cpu_idle", False, ["webhooks.cpu_idle", "Fix: remove"]),
        ("webhooks.invokers", ["allUsers"], ["webhooks.invokers", "Fix: remove", "always public"]),
        ("webhooks.public", True, ["webhooks.public", "Fix: remove", "always public"]),
        ("agent.invokers", ["allUsers"], ["agent.invokers", "organisation policies", "Fix: set `public = true`"]),
        ("queue.invokers", ["allAuthenticatedUsers"], ["queue.invokers", "Fix: set `public = true`"]),
        ("project_number", 123, ["project_number", "Fix: remove `project_number`", "data google_project"]),
        ("queue_image", "r/q:1", ["queue_image", "Fix: remove `queue_image`", "releases/<env>.json"]),
        ("plivo.auth_id_version", "latest", ["plivo.auth_id_version", 'a version number, e.g. "1"', "not"]),
        ("plivo.auth_token_version", ..., ["plivo.auth_token_version", 'Fix: add `plivo.auth_token_version = "1"`']),
        ("plivo", ..., ["plivo", "Fix: add a `[plivo]` table"]),
        ("redis.maintenance_hour", 24, ["redis.maintenance_hour", "<= 23"]),
        ("redis.persistence", "AOF", ["redis.persistence"]),
        ("registry.project", "Bad_Project", ["registry.project", "Fix: set `registry.project` to match"]),
        ("webhooks.region", "us-east1", ["webhooks.region", "outside the environment's region"]),
        ("webhooks.max_instances", 0, ["webhooks.max_instances", ">= 1"]),
        ("webhooks.min_instances", 3, ["webhooks.min_instances", "exceeds webhooks.max_instances"]),
        ("webhooks.timeout_seconds", 3601, ["webhooks.timeout_seconds", "<= 3600"]),
        ("webhooks.timeout_seconds", 30, ["webhooks.timeout_seconds", "REQUEST_TIMEOUT=30", "Fix: raise"]),
        ("webhooks.memory", "lots", ["webhooks.memory", "Fix: set `webhooks.memory` to match"]),
        ("agent.image", "r/agent:latest", ["agent.image", "latest", "Fix: pin a version tag"]),
        ("timing.SERVICE_TIMEOUT", 600, ["timing", "Fix: set queue.timeout_seconds instead"]),
        ("timing.POLL_FASTER", 1, ["timing", "unknown timing variable"]),
        ("timing.REQUEST_TIMEOUT", 400, ["timing", "REQUEST_TIMEOUT"]),
        ("backend.invokers", ["everyone"], ["backend.invokers", "not an IAM member"]),
        ("redis", {"mode": "secret"}, ["redis.url_secret", "Field required"]),
        ("redis", {"mode": "secret", "url_secret": "u", "url_version": "latest"}, ["redis.url_version", "not"]),
    ],
)
def test_each_rule_names_file_key_and_fix(key: str, value: Any, expected: list[str]) -> None:
    message = _error(_with(key, value))
    assert message.startswith(f"{SOURCE}: ")
    for fragment in expected:
        assert fragment in message, message


def test_every_problem_is_reported_at_once() -> None:
    data = _with("colour", "blue")
    data["region"] = "nowhere"
    lines = _error(data).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(SOURCE) for line in lines)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "qa.toml"
    path.write_text('project = "demo-project"\nregion = "us-east1"\nbogus = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_environment(path, tmp_path)
    assert "qa.toml: bogus: Extra inputs are not permitted" in str(caught.value)
    path.write_text("project = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"qa\.toml: \(file\): not valid TOML"):
        load_environment(path, tmp_path)


def test_bad_file_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a valid environment name"):
        validate_environment("Prod_EU", "environments/Prod_EU.toml", BASE)


def test_secret_redis_mode() -> None:
    redis = {"mode": "secret", "url_secret": "redis-url", "url_version": "3"}
    env = validate_environment("demo", SOURCE, _with("redis", redis))
    assert env.config.redis.mode == "secret"


def test_production_redis_must_be_replicated_and_persistent() -> None:
    """Where deletion_protection is true: a BASIC instance without RDB loses every accepted call on a restart."""
    message = _error(_with("deletion_protection", True))
    assert "redis.tier: 'BASIC' has no replica" in message and 'Fix: set `redis.tier = "STANDARD_HA"`' in message
    assert 'Fix: set `redis.persistence = "RDB"`' in message
    data = _with("deletion_protection", True)
    data["redis"] |= {"tier": "STANDARD_HA", "persistence": "RDB"}
    assert validate_environment("demo", SOURCE, data).config.deletion_protection


def _dump(table: dict[str, Any], prefix: str = "") -> list[str]:
    """TOML for nested tables of scalars (what environment files hold)."""
    lines = [f"[{prefix}]"] if prefix else []
    lines += [f"{key} = {_toml(value)}" for key, value in table.items() if not isinstance(value, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += _dump(value, f"{prefix}.{key}" if prefix else key)
    return lines


def _files(directory: Path, files: dict[str, dict[str, Any]]) -> Path:
    for name, content in files.items():
        (directory / f"{name}.toml").write_text("\n".join(_dump(content)) + "\n", encoding="utf-8")
    return directory


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def test_registry_across_files(tmp_path: Path) -> None:
    owner = _with("project", "build-project")
    consumer = _with("registry.project", "build-project")
    envs = load_environments(_files(tmp_path, {"a": owner, "b": consumer}), tmp_path)
    a, b = envs
    assert a.owns_registry and not b.owns_registry and a.registry == b.registry
    assert b.registry.url == "europe-west1-docker.pkg.dev/build-project/callqueue"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ConfigError) as caught:
        load_environments(
            _files(elsewhere, {"a": owner, "b": _with("registry.project", "nobody-s-project")}), elsewhere
        )
    assert "b.toml: registry.project: 'nobody-s-project' is no environment's project" in str(caught.value)

    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    other = _with("registry.project", "build-project")
    other["registry"]["repository"] = "other"
    with pytest.raises(ConfigError, match=r"is not the registry a\.toml owns"):
        load_environments(_files(mismatch, {"a": owner, "b": other}), mismatch)

    shared = tmp_path / "shared"
    shared.mkdir()
    with pytest.raises(ConfigError, match="each environment has its own project"):
        load_environments(_files(shared, {"a": BASE, "b": BASE}), shared)


def test_committed_production_reads_staging_s_registry() -> None:
    envs = {e.name: e for e in load_environments(ENVIRONMENTS_DIR, REPO_ROOT)}
    assert envs["staging"].owns_registry
    assert envs["production"].registry == envs["staging"].registry
    assert envs["production"].config.agent.public and not envs["production"].config.agent.invokers
