"""Synthesis is reproducible: byte-identical twice in one process, free of machine paths, and snapshotted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.config import Environment, with_queue_image
from infra.naming import REPO_ROOT
from infra.snapshot import normalize, snapshot_path
from tests.infra.conftest import Synthesis, container, resources, synthesize


def test_two_synths_are_byte_identical(synthesis: Synthesis, tmp_path: Path, environments: list[Environment]) -> None:
    again = synthesize(tmp_path / "elsewhere" / "cdktf.out", environments, synthesis.tag)
    assert again.raw == synthesis.raw
    first = (synthesis.outdir / "manifest.json").read_bytes()
    assert (again.outdir / "manifest.json").read_bytes() == first


def test_no_machine_paths(synthesis: Synthesis) -> None:
    forbidden = {str(REPO_ROOT), str(synthesis.outdir), "/tmp/", os.path.expanduser("~") + "/"}
    for name, text in synthesis.raw.items():
        for path in forbidden:
            assert path not in text, f"{name}: absolute path {path!r} in the synthesized JSON"
    manifest = (synthesis.outdir / "manifest.json").read_text()
    assert str(synthesis.outdir) not in manifest


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_snapshot_is_current(synthesis: Synthesis, env_name: str) -> None:
    path = snapshot_path(env_name)
    assert path.exists(), f"no snapshot {path.name}: run `make snapshot` to refresh"
    expected = path.read_text(encoding="utf-8")
    actual = normalize(synthesis.raw[env_name], synthesis.tag)
    assert actual == expected, f"{path.name} differs from the synthesized stack: run `make snapshot` to refresh"


def test_pinned_image_skips_the_build(tmp_path: Path, environments: list[Environment]) -> None:
    """The rollback path: a pinned queue image is deployed as is, and nothing is built."""
    pinned = "us-east1-docker.pkg.dev/p/callqueue/callqueue-queue:0123456789abcdef"
    envs = [with_queue_image(e, pinned) if e.name == "staging" else e for e in environments]
    result = synthesize(tmp_path / "cdktf.out", envs, "unused0tag000000")
    staging = result.stacks["staging"]
    assert container(staging, "queue")["image"] == pinned
    assert container(staging, "webhooks")["image"] == pinned, "a rollback pins both deployments of the image"
    assert "terraform_data" not in staging["resource"]
    for service_id in ("queue", "webhooks"):
        service = resources(staging, "google_cloud_run_v2_service")[service_id]
        assert not any(d.startswith("terraform_data.") for d in service["depends_on"]), service_id
    assert "terraform_data" in result.stacks["production"]["resource"]
