"""The queue image's source: the files the Dockerfile copies, from one clean commit; identity by their content."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from infra.naming import REPO_ROOT
from infra.source import SourceError, archive, content_tag, copied_paths, head_commit, image_inputs, require_clean

DOCKERFILE = """FROM python:3.11-slim AS build
COPY pyproject.toml uv.lock ./
RUN true
COPY service ./service
FROM python:3.11-slim
COPY --from=build /app/.venv /app/.venv
"""


def sh(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def make_repo(root: Path) -> Path:
    """A small repository shaped like this one: service code, docs, infra, a Dockerfile."""
    (root / "service" / "pkg").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / ".dockerignore").write_text("*\n!pyproject.toml\n!uv.lock\n!service/\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "uv.lock").write_text("version = 1\n")
    (root / "README.md").write_text("# x\n")
    (root / "docs" / "guide.md").write_text("guide\n")
    (root / "service" / "pkg" / "a.py").write_text("A = 1\n")
    sh(root, "init", "--quiet", "--initial-branch=main")
    sh(root, "config", "user.email", "test@example.com")
    sh(root, "config", "user.name", "test")
    commit(root, "initial")
    return root


def commit(root: Path, message: str) -> str:
    sh(root, "add", "-A")
    sh(root, "commit", "--quiet", "-m", message)
    return head_commit(root)


def test_inputs_are_what_the_dockerfile_copies() -> None:
    assert copied_paths(DOCKERFILE) == ["pyproject.toml", "uv.lock", "service"]
    real = image_inputs(REPO_ROOT)
    assert real == sorted([".dockerignore", "Dockerfile", "pyproject.toml", "service", "uv.lock"])
    assert "README.md" not in real, "documentation is not in the image"


def test_documentation_changes_make_no_new_image(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    first = content_tag(root, head_commit(root))
    (root / "README.md").write_text("# x, better explained\n")
    (root / "docs" / "guide.md").write_text("a longer guide\n")
    (root / "infra.py").write_text("stack = 1\n")
    docs = commit(root, "docs and infra")
    assert content_tag(root, docs) == first
    (root / "service" / "pkg" / "a.py").write_text("A = 2\n")
    code = commit(root, "code")
    assert content_tag(root, code) != first
    (root / "service" / "pkg" / "a.py").rename(root / "service" / "pkg" / "b.py")
    renamed = commit(root, "rename")
    assert content_tag(root, renamed) not in (first, content_tag(root, code))
    (root / "Dockerfile").write_text(DOCKERFILE + "ENV X=1\n")
    assert content_tag(root, commit(root, "recipe")) != content_tag(root, renamed), "the recipe is an input"
    assert len(first) == 16 and first != "latest"


def test_the_tag_is_the_same_in_another_clone(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "one")
    clone = tmp_path / "two"
    subprocess.run(["git", "clone", "--quiet", str(root), str(clone)], check=True)
    assert content_tag(clone, head_commit(clone)) == content_tag(root, head_commit(root))


def test_a_dirty_tree_is_refused(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    require_clean(root)
    (root / "docs" / "guide.md").write_text("edited, not committed\n")
    (root / "scratch.txt").write_text("untracked\n")
    with pytest.raises(SourceError) as caught:
        require_clean(root)
    message = str(caught.value)
    assert "docs/guide.md" in message and "scratch.txt" in message
    assert "Fix: commit or stash these changes" in message


def test_the_build_context_is_the_commit_not_the_working_tree(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    at = head_commit(root)
    (root / "service" / "pkg" / "a.py").write_text("A = 'uncommitted'\n")
    context = archive(root, at, tmp_path / "context.tar.gz")
    with tarfile.open(context) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
        code = tar.extractfile("service/pkg/a.py")
        assert code is not None and code.read() == b"A = 1\n"
    assert names == [".dockerignore", "Dockerfile", "pyproject.toml", "service/pkg/a.py", "uv.lock"]


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="git"):
        head_commit(tmp_path)
