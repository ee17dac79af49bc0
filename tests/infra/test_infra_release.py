"""The release tool against a fake gcloud and a real git repository: build once per image identity, promote what
staging runs, roll back to a recorded digest, bootstrap a project; and the production stack synthesized from the
records runs the digest the promotion recorded."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.config import Environment
from infra.gcloud import CloudError, Gcloud
from infra.naming import REPO_ROOT, queue_image_by_digest, queue_image_by_tag
from infra.release import ReleaseFailure, Releaser
from infra.releases import read_release
from infra.source import SourceError, content_tag, head_commit
from tests.infra.conftest import container, synthesize
from tests.infra.test_infra_source import commit, make_repo, sh

FAKE = Path(__file__).resolve().parent / "fake_gcloud.py"


class Cloud:
    """The fake's state file, and a Gcloud that runs it."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "gcloud-state.json"
        shim = tmp_path / "bin" / "gcloud"
        shim.parent.mkdir()
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
        self.gcloud = Gcloud(binary=str(shim))

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.path.read_text())) if self.path.exists() else {}

    def set(self, **values: Any) -> None:
        self.path.write_text(json.dumps(self.state | values))

    def calls(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.state.get("calls", []) if c[: len(prefix)] == list(prefix)]


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    monkeypatch.setenv("FAKE_GCLOUD_STATE", str(tmp_path / "gcloud-state.json"))
    return Cloud(tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    (root / "releases").mkdir()
    (root / "releases" / "README.md").write_text("release records\n")
    commit(root, "releases directory")
    return root


@pytest.fixture
def releaser(repo: Path, cloud: Cloud, environments: list[Environment]) -> Releaser:
    clock = iter(datetime(2026, 5, 1, 12, 0, s, tzinfo=UTC) for s in range(60))
    return Releaser(environments, repo, repo / "releases", cloud.gcloud, now=lambda: next(clock), say=lambda _: None)


def last_commit_message(repo: Path) -> str:
    return sh(repo, "log", "-1", "--format=%s").strip()


def test_image_is_built_once_from_the_clean_commit_and_recorded(repo: Path, cloud: Cloud, releaser: Releaser) -> None:
    (repo / "service" / "pkg" / "a.py").write_text("A = 'not committed'\n")
    with pytest.raises(SourceError, match="not clean"):
        releaser.image("staging")
    assert cloud.calls("builds") == [], "nothing is built from a dirty tree"
    sh(repo, "checkout", "--", "service")
    built_at = head_commit(repo)

    release = releaser.image("staging")
    [build] = cloud.state["builds"]
    staging = releaser.env("staging")
    assert build["image"] == queue_image_by_tag(staging, content_tag(repo, built_at))
    assert build["files"] == [".dockerignore", "Dockerfile", "pyproject.toml", "service/pkg/a.py", "uv.lock"]
    assert build["service/pkg/a.py"] == "A = 1\n" and build["commit"] == built_at
    assert (
        build["flags"]["service-account"]
        == "projects/callqueue-staging/serviceAccounts/callqueue-build@callqueue-staging.iam.gserviceaccount.com"
    )
    assert build["flags"]["gcs-source-staging-dir"] == "gs://callqueue-staging-callqueue-build/source"
    assert (release.commit, release.content_tag) == (built_at, content_tag(repo, built_at))
    assert read_release("staging", repo / "releases") == release
    assert last_commit_message(repo).startswith(f"release: staging runs {release.digest[:19]}")
    assert sh(repo, "status", "--porcelain") == "", "the record is committed"
    tags = cloud.state["images"]
    assert tags[queue_image_by_tag(staging, "release-staging-20260501-120000")] == release.digest

    head = head_commit(repo)
    assert releaser.image("staging") == release and head_commit(repo) == head, "the same commit again: no change"

    (repo / "docs" / "guide.md").write_text("documentation only\n")
    commit(repo, "docs")
    again = releaser.image("staging")
    assert len(cloud.state["builds"]) == 1, "documentation changes build no new image"
    assert again == release, "the record still names the commit the image was built from"

    (repo / "service" / "pkg" / "a.py").write_text("A = 2\n")
    commit(repo, "code")
    newer = releaser.image("staging")
    assert len(cloud.state["builds"]) == 2 and newer.digest != release.digest


def test_promote_records_the_digest_staging_runs_and_production_deploys_it(
    repo: Path, cloud: Cloud, releaser: Releaser, environments: list[Environment], tmp_path: Path
) -> None:
    built = releaser.image("staging")
    staging = releaser.env("staging")
    with pytest.raises(ReleaseFailure, match=r"staging runs no queue service yet\. Fix: make deploy ENV=staging"):
        releaser.promote("staging", "production")
    cloud.set(run={"callqueue-staging/us-east1/callqueue-queue": queue_image_by_digest(staging, "sha256:" + "e" * 64)})
    with pytest.raises(ReleaseFailure, match="promote only what staging runs"):
        releaser.promote("staging", "production")
    assert read_release("production", repo / "releases") is None, "nothing recorded for a refused promotion"

    cloud.set(run={"callqueue-staging/us-east1/callqueue-queue": queue_image_by_digest(staging, built.digest)})
    promoted = releaser.promote("staging", "production")
    assert (promoted.digest, promoted.commit) == (built.digest, built.commit)
    assert promoted.source.startswith("promoted from staging")
    assert last_commit_message(repo).startswith("release: production runs")

    synthesis = synthesize(tmp_path / "cdktf.out", environments, repo / "releases")
    production = synthesis.stacks["production"]
    image = container(production, "queue")["image"]
    assert image == queue_image_by_digest(releaser.env("production"), promoted.digest)
    assert image == container(synthesis.stacks["staging"], "queue")["image"], "production runs what staging ran"
    assert image.endswith(read_release("production", repo / "releases").digest)  # type: ignore[union-attr]


def test_rollback_takes_a_recorded_digest_only(repo: Path, cloud: Cloud, releaser: Releaser) -> None:
    first = releaser.image("staging")
    (repo / "service" / "pkg" / "a.py").write_text("A = 2\n")
    commit(repo, "code")
    second = releaser.image("staging")
    assert second.digest != first.digest
    with pytest.raises(ReleaseFailure, match="not an image digest"):
        releaser.rollback("staging", "callqueue-queue:previous")
    with pytest.raises(ReleaseFailure, match="no release record in this repository's history names"):
        releaser.rollback("staging", "sha256:" + "f" * 64)

    rolled = releaser.rollback("staging", first.digest)
    assert (rolled.digest, rolled.commit, rolled.content_tag) == (first.digest, first.commit, first.content_tag)
    assert read_release("staging", repo / "releases") == rolled
    assert rolled.source == f"rollback to the image built from {first.commit[:12]}"

    images = cloud.state["images"]
    gone = {k: v for k, v in images.items() if v != first.digest}
    cloud.set(images=gone)  # the cleanup policy deleted it
    with pytest.raises(ReleaseFailure, match="deleted by the cleanup policy"):
        releaser.rollback("staging", first.digest)


def test_bootstrap_creates_a_private_versioned_state_bucket_once(cloud: Cloud, releaser: Releaser) -> None:
    releaser.bootstrap("production")
    bucket = cloud.state["buckets"]["callqueue-prod-tfstate"]
    assert bucket == {
        "project": "callqueue-prod",
        "location": "us-east1",
        "versioning": True,
        "uniform": True,
        "pap": True,
    }
    assert set(cloud.state["enabled"]["callqueue-prod"]) >= {"serviceusage.googleapis.com", "storage.googleapis.com"}
    releaser.bootstrap("production")
    assert len(cloud.calls("storage", "buckets", "create")) == 1, "an existing bucket is adopted, not recreated"


def test_preflight_says_what_deploy_lacks(
    repo: Path, cloud: Cloud, releaser: Releaser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    scripts = {"terraform": """echo '{"terraform_version": "1.5.7"}'""", "npx": "true"}
    for name, script in scripts.items():
        (tools / name).write_text(f"#!/bin/sh\n{script}\n")
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ReleaseFailure, match=r"no release record \(staging.json\). Fix: make image ENV=staging"):
        releaser.preflight("staging")
    releaser.image("staging")
    with pytest.raises(ReleaseFailure, match=r"foundation is not applied .* Fix: make bootstrap ENV=staging"):
        releaser.preflight("staging")
    cloud.set(objects=["gs://callqueue-staging-tfstate/callqueue-foundation/staging/default.tfstate"])
    releaser.preflight("staging")
    cloud.set(adc=False)
    with pytest.raises(CloudError, match=r"Fix: gcloud auth application-default login"):
        releaser.preflight("staging")
    (tools / "terraform").write_text('#!/bin/sh\necho \'{"terraform_version": "1.4.6"}\'\n')
    with pytest.raises(ReleaseFailure, match=r"terraform 1\.4\.6 is too old"):
        releaser.preflight("staging")


def test_promotion_needs_one_registry(releaser: Releaser, environments: list[Environment]) -> None:
    with pytest.raises(ReleaseFailure, match="same environment"):
        releaser.promote("staging", "staging")
    with pytest.raises(ReleaseFailure, match=r"no environments/qa\.toml"):
        releaser.promote("staging", "qa")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "staging", "staging"], "promote: FROM and TO are the same environment"),
        (["rollback", "staging", "previous"], "rollback: 'previous' is not an image digest"),
    ],
)
def test_cli_exits_2_with_the_fix(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "infra.release", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
