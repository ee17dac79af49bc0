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
