"""The queue image's content tag: deterministic, and a function of the image's inputs only."""

from __future__ import annotations

from pathlib import Path

from infra.naming import content_tag, image_input_files


def _tree(root: Path) -> None:
    (root / "service" / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "uv.lock").write_text("version = 1\n")
    (root / "README.md").write_text("# x\n")
    (root / "service" / "pkg" / "a.py").write_text("A = 1\n")
    (root / "service" / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (root / "docs.md").write_text("not in the image\n")


def test_tag_depends_on_content_not_location_or_noise(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        root.mkdir()
        _tree(root)
    assert image_input_files(one) == [
        "Dockerfile",
        "README.md",
        "pyproject.toml",
        "service/pkg/a.py",
        "uv.lock",
    ]
    assert content_tag(one) == content_tag(two)
    (two / "docs.md").write_text("changed, but not an input\n")
    (two / "service" / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\1")
    assert content_tag(one) == content_tag(two)
    (two / "service" / "pkg" / "a.py").write_text("A = 2\n")
    assert content_tag(one) != content_tag(two)


def test_tag_sees_renames(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = content_tag(tmp_path)
    (tmp_path / "service" / "pkg" / "a.py").rename(tmp_path / "service" / "pkg" / "b.py")
    assert content_tag(tmp_path) != before
    assert len(before) == 16 and before != "latest"
