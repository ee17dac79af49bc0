"""The operator's make targets say what is missing instead of failing obscurely when gcloud or terraform is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")


def _make_without_cloud_tools(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """make with a PATH that holds only make itself: no gcloud, no terraform."""
    assert MAKE is not None
    (tmp_path / "make").symlink_to(MAKE)
    return subprocess.run(
        [str(tmp_path / "make"), "--no-print-directory", *args],
        cwd=ROOT,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_logs_without_gcloud(tmp_path: Path) -> None:
    result = _make_without_cloud_tools(tmp_path, "logs", "ENV=staging", "CALL_ID=abc")
    assert result.returncode == 2
    assert "make logs needs the gcloud CLI" in result.stderr


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_diagnose_without_terraform(tmp_path: Path) -> None:
    result = _make_without_cloud_tools(tmp_path, "diagnose", "ENV=staging")
    assert result.returncode == 2
    assert "make diagnose needs terraform" in result.stderr


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bootstrap", "ENV=staging"], "make bootstrap needs gcloud: install the Google Cloud CLI"),
        (["image", "ENV=staging"], "make image needs git: install git"),
        (["deploy", "ENV=staging"], "make deploy needs gcloud: install the Google Cloud CLI"),
        (["promote", "FROM=staging", "TO=production"], "make promote needs gcloud"),
        (["rollback", "ENV=production", "DIGEST=sha256:abc"], "make rollback needs gcloud"),
        (["diff", "ENV=staging"], "make diff needs terraform: install Terraform >= 1.5"),
        (["promote", "TO=production"], "usage: make promote FROM=<environment> TO=<environment>"),
        (["rollback", "ENV=production"], "usage: make rollback ENV=<environment> DIGEST=sha256:<digest>"),
    ],
)
def test_cloud_targets_say_what_is_missing(tmp_path: Path, args: list[str], message: str) -> None:
    result = _make_without_cloud_tools(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
@pytest.mark.parametrize("target", ["logs", "diagnose"])
def test_unknown_environment_is_named_with_the_existing_ones(tmp_path: Path, target: str) -> None:
    result = _make_without_cloud_tools(tmp_path, target, "ENV=nope")
    assert result.returncode == 2, result.stderr
    existing = " ".join(sorted(p.stem for p in (ROOT / "environments").glob("*.toml")))
    assert "there is no environment file environments/nope.toml (ENV=nope)" in result.stderr
    assert f"Existing environments: {existing}." in result.stderr
    assert "Traceback" not in result.stderr and "make deploy" not in result.stderr


def test_describe_names_the_project_and_queue_service_or_says_what_is_wrong(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from infra.describe import main

    assert main(["nope"]) == 2
    assert "there is no environment file environments/nope.toml" in capsys.readouterr().err
    assert main(["staging"]) == 0
    project, service = capsys.readouterr().out.split()
    assert project and service.endswith("-queue")
