"""One synthesis of every stack per test session: importing the provider bindings costs tens of seconds.

The session synthesis uses the fixture release records in tests/infra/releases/ (as the snapshots do), so every
environment has its services stack whatever the repository's own releases/ holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.config import Environment, load_environments
from infra.main import ENVIRONMENTS_DIR, build_app
from infra.naming import REPO_ROOT
from infra.releases import Release, read_release
from infra.snapshot import FIXTURE_RELEASES


@dataclass(frozen=True)
class Synthesis:
    outdir: Path
    environments: dict[str, Environment]
    releases: dict[str, Release]
    raw: dict[str, str]  # stack name -> cdk.tf.json text
    stacks: dict[str, dict[str, Any]]  # stack name -> parsed JSON


def synthesize(outdir: Path, environments: list[Environment], releases_dir: Path = FIXTURE_RELEASES) -> Synthesis:
    outdir.parent.mkdir(parents=True, exist_ok=True)  # the App creates only the last level
    build_app(str(outdir), environments, releases_dir).synth()
    raw = {p.name: (p / "cdk.tf.json").read_text(encoding="utf-8") for p in sorted((outdir / "stacks").iterdir())}
    releases = {e.name: r for e in environments if (r := read_release(e.name, releases_dir)) is not None}
    return Synthesis(
        outdir=outdir,
        environments={e.name: e for e in environments},
        releases=releases,
        raw=raw,
        stacks={name: json.loads(text) for name, text in raw.items()},
    )


@pytest.fixture(scope="session")
def environments() -> list[Environment]:
    return load_environments(ENVIRONMENTS_DIR, REPO_ROOT)


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory, environments: list[Environment]) -> Synthesis:
    return synthesize(tmp_path_factory.mktemp("synth") / "cdktf.out", environments)


def resources(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return dict(stack.get("resource", {}).get(kind, {}))


def data(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return dict(stack.get("data", {}).get(kind, {}))


def container(stack: dict[str, Any], service_id: str) -> dict[str, Any]:
    """The service's ingress container (the queue also runs the metrics collector beside it)."""
    containers = resources(stack, "google_cloud_run_v2_service")[service_id]["template"]["containers"]
    ingress = [c for c in containers if c.get("ports")]
    assert len(ingress) == 1
    return dict(ingress[0])
