"""Policy tests on the foundation stacks (make bootstrap): APIs, the state bucket, the registry, the build account."""

from __future__ import annotations

from typing import Any

import pytest

from infra.naming import BOOTSTRAP_APIS, REQUIRED_TERRAFORM
from tests.infra.conftest import Synthesis, data, resources

BUILD_SA = "serviceAccount:${google_service_account.build_sa.email}"


@pytest.fixture(params=["staging", "production"])
def env_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _stack(synthesis: Synthesis, name: str) -> dict[str, Any]:
    return synthesis.stacks[f"{name}-foundation"]


def test_provider_state_and_version(synthesis: Synthesis, env_name: str) -> None:
    from infra.provider import labels  # here, not at collection: it imports the provider bindings (see conftest)

    stack, env = _stack(synthesis, env_name), synthesis.environments[env_name]
    assert stack["provider"]["google"][0]["default_labels"] == labels(env, "foundation")
    assert stack["terraform"]["required_version"] == REQUIRED_TERRAFORM
    backend = stack["terraform"]["backend"]["gcs"]
    assert backend == {"bucket": env.config.state_bucket, "prefix": f"callqueue-foundation/{env_name}"}
    services_prefix = synthesis.stacks[env_name]["terraform"]["backend"]["gcs"]["prefix"]
    assert not backend["prefix"].startswith(services_prefix + "/") and backend["prefix"] != services_prefix


def test_apis_are_enabled_and_never_disabled(synthesis: Synthesis, env_name: str) -> None:
    apis = resources(_stack(synthesis, env_name), "google_project_service")
    enabled = {a["service"] for a in apis.values()}
    for api in ("run", "artifactregistry", "cloudbuild", "secretmanager", "compute", "iam", "redis", "logging"):
        assert f"{api}.googleapis.com" in enabled, api
    assert set(BOOTSTRAP_APIS) <= enabled
    assert all(a["disable_on_destroy"] is False for a in apis.values())


def test_state_bucket_is_adopted_versioned_private_and_undeletable(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    bucket = resources(stack, "google_storage_bucket")["state_bucket"]
    assert bucket["name"] == cfg.state_bucket and bucket["location"] == cfg.region.upper()
    assert bucket["versioning"] == {"enabled": True}
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["force_destroy"] is False and bucket["lifecycle"] == {"prevent_destroy": True}
    assert {"id": cfg.state_bucket, "to": "google_storage_bucket.state_bucket"} in stack["import"]


def test_the_registry_owner_has_immutable_tags_and_a_cleanup_policy(synthesis: Synthesis) -> None:
    stack, env = _stack(synthesis, "staging"), synthesis.environments["staging"]
    registry = resources(stack, "google_artifact_registry_repository")["registry"]
    reg = env.config.registry
    assert (registry["project"], registry["location"], registry["repository_id"], registry["format"]) == (
        env.registry.project, env.registry.location, reg.repository, "DOCKER",
    )  # fmt: skip
    assert registry["docker_config"] == {"immutable_tags": True}
    assert registry["cleanup_policy_dry_run"] is False
    policies = {p["id"]: p for p in registry["cleanup_policies"]}
    queue_only = ["callqueue-queue"]
    assert policies["delete-old-queue-images"] == {
        "id": "delete-old-queue-images", "action": "DELETE",
        "condition": {"tag_state": "ANY", "older_than": f"{reg.delete_after_days * 86400}s",
                      "package_name_prefixes": queue_only},
    }  # fmt: skip
    assert policies["keep-recent-queue-images"]["action"] == "KEEP"
    assert policies["keep-recent-queue-images"]["most_recent_versions"] == {
        "keep_count": reg.keep_versions, "package_name_prefixes": queue_only,
    }  # fmt: skip
    assert policies["keep-released-queue-images"]["condition"] == {
        "tag_state": "TAGGED", "tag_prefixes": ["release-"], "package_name_prefixes": queue_only,
    }  # fmt: skip
    scopes = [(p.get("condition") or p["most_recent_versions"])["package_name_prefixes"] for p in policies.values()]
    assert scopes == [queue_only] * 3, "the agent's and backend's images are their teams'"


def test_the_registry_production_runs_from_cannot_be_destroyed(synthesis: Synthesis) -> None:
    """staging's own deletion_protection is false, but production's images live in its registry."""
    stack = _stack(synthesis, "staging")
    assert synthesis.environments["staging"].config.deletion_protection is False
    assert resources(stack, "google_artifact_registry_repository")["registry"]["lifecycle"] == {"prevent_destroy": True}
    assert resources(stack, "google_service_account")["build_sa"]["lifecycle"] == {"prevent_destroy": True}


def test_production_s_cloud_run_service_agent_reads_the_registry(synthesis: Synthesis) -> None:
    stack = _stack(synthesis, "staging")
    assert data(stack, "google_project")["consumer_production"]["project_id"] == "callqueue-prod"
    reader = resources(stack, "google_artifact_registry_repository_iam_member")["registry_reader_production"]
    assert reader["role"] == "roles/artifactregistry.reader"
    assert reader["repository"] == "${google_artifact_registry_repository.registry.name}"
    assert reader["member"] == (
        "serviceAccount:service-${data.google_project.consumer_production.number}"
        "@serverless-robot-prod.iam.gserviceaccount.com"
    )


def test_build_account_may_push_log_and_read_sources_only(synthesis: Synthesis) -> None:
    stack = _stack(synthesis, "staging")
    account = resources(stack, "google_service_account")["build_sa"]
    assert account["account_id"] == "callqueue-build"
    grants = {
        (kind, r["role"])
        for kind in (
            "google_artifact_registry_repository_iam_member",
            "google_project_iam_member",
            "google_storage_bucket_iam_member",
        )
        for r in resources(stack, kind).values()
        if r["member"] == BUILD_SA
    }
    assert grants == {
        ("google_artifact_registry_repository_iam_member", "roles/artifactregistry.writer"),
        ("google_project_iam_member", "roles/logging.logWriter"),
        ("google_storage_bucket_iam_member", "roles/storage.objectViewer"),
    }
    sources = resources(stack, "google_storage_bucket")["build_bucket"]
    assert sources["public_access_prevention"] == "enforced" and sources["uniform_bucket_level_access"] is True
    assert sources["name"] == "callqueue-staging-callqueue-build"


def test_a_consumer_foundation_owns_no_registry(synthesis: Synthesis) -> None:
    stack = _stack(synthesis, "production")
    assert "google_artifact_registry_repository" not in stack["resource"]
    assert "google_service_account" not in stack["resource"]
    assert stack["output"]["registry_url"]["value"] == synthesis.environments["staging"].registry.url
