"""One synthesis of every environment per test session: importing the provider bindings costs tens of seconds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.config import Environment, load_environments
from infra.main import ENVIRONMENTS_DIR, build_app
from infra.naming import REPO_ROOT, content_tag


@dataclass(frozen=True)
class Synthesis:
    outdir: Path
    tag: str
    environments: dict[str, Environment]
    raw: dict[str, str]  # stack name -> cdk.tf.json text
    stacks: dict[str, dict[str, Any]]  # stack name -> parsed JSON


def synthesize(outdir: Path, environments: list[Environment], tag: str) -> Synthesis:
    outdir.parent.mkdir(parents=True, exist_ok=True)  # the App creates only the last level
    build_app(str(outdir), environments, tag).synth()
    raw = {p.name: (p / "cdk.tf.json").read_text(encoding="utf-8") for p in sorted((outdir / "stacks").iterdir())}
    return Synthesis(
        outdir=outdir,
        tag=tag,
        environments={e.name: e for e in environments},
        raw=raw,
        stacks={name: json.loads(text) for name, text in raw.items()},
    )


@pytest.fixture(scope="session")
def environments() -> list[Environment]:
    return load_environments(ENVIRONMENTS_DIR, REPO_ROOT)


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory, environments: list[Environment]) -> Synthesis:
    return synthesize(tmp_path_factory.mktemp("synth") / "cdktf.out", environments, content_tag())


def resources(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return dict(stack.get("resource", {}).get(kind, {}))


def container(stack: dict[str, Any], service_id: str) -> dict[str, Any]:
    """The service's ingress container (the queue also runs the metrics collector beside it)."""
    containers = resources(stack, "google_cloud_run_v2_service")[service_id]["template"]["containers"]
    ingress = [c for c in containers if c.get("ports")]
    assert len(ingress) == 1
    return dict(ingress[0])
