"""Synthesis is reproducible: byte-identical twice in one process, free of machine paths, and snapshotted."""

from __future__ import annotations

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


def test_an_environment_without_a_release_gets_only_its_foundation(
    tmp_path: Path, environments: list[Environment]
) -> None:
    """Nothing can run before its image exists: no services stack, and `make synth` says why instead of failing."""
    from infra.main import build_app

    releases = tmp_path / "releases"
    releases.mkdir()
    notes: list[str] = []
    build_app(str(tmp_path / "out"), environments, releases, notes).synth()
    assert sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir()) == [
        "production-foundation", "staging-foundation",
    ]  # fmt: skip
    assert len(notes) == 2 and "make image ENV=staging" in notes[1]
