"""Synthesis is reproducible: byte-identical twice in one process, free of machine paths, and snapshotted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from infra.config import Environment
from infra.naming import REPO_ROOT
from infra.snapshot import normalize, snapshot_path
from tests.infra.conftest import Synthesis, synthesize

STACKS = ["staging", "production", "staging-foundation", "production-foundation"]


def test_two_synths_are_byte_identical(synthesis: Synthesis, tmp_path: Path, environments: list[Environment]) -> None:
    again = synthesize(tmp_path / "elsewhere" / "cdktf.out", environments)
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


@pytest.mark.parametrize("stack_name", STACKS)
def test_snapshot_is_current(synthesis: Synthesis, stack_name: str) -> None:
    path = snapshot_path(stack_name)
    assert path.exists(), f"no snapshot {path.name}: run `make snapshot` to refresh"
    expected = path.read_text(encoding="utf-8")
    actual = normalize(synthesis.raw[stack_name])
    assert actual == expected, f"{path.name} differs from the synthesized stack: run `make snapshot` to refresh"


def test_an_environment_without_a_release_gets_a_stack_that_cannot_be_planned(
    synthesis: Synthesis, tmp_path: Path, environments: list[Environment]
) -> None:
    """`make synth` on a checkout without records (this repository) still writes every services stack, for review:
    the same stack as with a record, but the queue image is marked unreleased and its plan-time check fails,
    naming the fix; the note says the same."""
    from infra.main import build_app

    releases = tmp_path / "releases"
    releases.mkdir()
    notes: list[str] = []
    build_app(str(tmp_path / "out"), environments, releases, notes).synth()
    assert sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir()) == sorted(STACKS)
    assert len(notes) == 2 and "make image ENV=staging, or make promote FROM=<environment> TO=staging" in notes[1]
    for env in environments:
        unreleased = json.loads((tmp_path / "out" / "stacks" / env.name / "cdk.tf.json").read_text(encoding="utf-8"))
        assert unreleased.pop("locals") == {"queue_release_recorded": False}
        check = unreleased["data"]["google_artifact_registry_docker_image"]["queue_image_in_registry"]
        assert check["image_name"] == "callqueue-queue@unreleased"
        [condition] = check.pop("lifecycle")["precondition"]
        assert condition["condition"] == "${local.queue_release_recorded}"
        message = condition["error_message"]
        assert f"{env.name} has no release record (releases/{env.name}.json)" in message
        assert f"Fix: make image ENV={env.name}, or make promote FROM=<environment> TO={env.name}" in message
        image = f"{env.registry.url}/callqueue-queue@unreleased"
        assert unreleased["output"]["queue_image"]["value"] == image
        released = synthesis.raw[env.name].replace(synthesis.releases[env.name].digest, "unreleased")
        assert unreleased == json.loads(released), "everything else is the stack a release would deploy"
