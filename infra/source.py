"""The queue image's source: exactly what the Dockerfile copies, taken from one clean commit.

The image's identity (its content tag) is a hash over the git blobs of the files the Dockerfile copies, at a
commit: two commits that differ only in documentation, infrastructure or tests have the same tag, so they share
one image and nothing is rebuilt. The build context is `git archive` of those paths at that commit, so what is
built is what is committed, whatever the working tree holds; and a dirty tree is refused anyway, so the commit
recorded with the image is the code you are looking at.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

TAG_LENGTH = 16
# The build context also depends on these two: the recipe itself and what it is allowed to see.
BUILD_FILES: tuple[str, ...] = ("Dockerfile", ".dockerignore")


class SourceError(RuntimeError):
    """The source cannot make an image (dirty tree, not a git checkout); the message says what to do."""


def copied_paths(dockerfile: str) -> list[str]:
    """The sources of every `COPY` without `--from` (copies between stages add nothing from the context)."""
    paths: list[str] = []
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        paths += [a.rstrip("/") for a in args[:-1]]
    return paths


def image_inputs(root: Path) -> list[str]:
    """Every path whose content goes into the image: the Dockerfile's COPY sources plus the build files."""
    copied = copied_paths((root / "Dockerfile").read_text(encoding="utf-8"))
    return sorted({*BUILD_FILES, *copied})


def git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SourceError("git is not installed: the image is built from a git commit") from None
    if done.returncode != 0:
        raise SourceError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def head_commit(root: Path) -> str:
    return git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()


def require_clean(root: Path) -> None:
    """Refuse a tree with uncommitted or untracked files: the image must be one commit, and say which."""
    dirty = git(root, "status", "--porcelain", "--untracked-files=normal").splitlines()
    if dirty:
        shown = "\n".join(f"  {line}" for line in dirty[:20]) + ("\n  …" if len(dirty) > 20 else "")
        raise SourceError(
            f"the working tree is not clean ({len(dirty)} paths):\n{shown}\n"
            "The image is built from one commit and labelled with it. Fix: commit or stash these changes"
        )


def content_tag(root: Path, commit: str) -> str:
    """sha256 over (path, git blob id) of every image input at `commit`, sorted; the first 16 hex digits."""
    listing = git(root, "ls-tree", "-r", "--full-tree", commit, "--", *image_inputs(root))
    outer = hashlib.sha256()
    entries = []
    for line in listing.splitlines():
        meta, _, path = line.partition("\t")
        mode, kind, blob = meta.split()
        if kind == "blob":
            entries.append((path, mode, blob))
    if not entries:
        raise SourceError(f"commit {commit[:12]} holds none of the image inputs {image_inputs(root)}")
    for path, mode, blob in sorted(entries):
        outer.update(f"{path}\0{mode}\0{blob}\n".encode())
    return outer.hexdigest()[:TAG_LENGTH]


def archive(root: Path, commit: str, destination: Path) -> Path:
    """The build context: a gzipped tar of the image inputs at `commit` (what `gcloud builds submit` uploads)."""
    present = git(root, "ls-tree", "--name-only", commit, "--", *image_inputs(root)).split()
    git(root, "archive", "--format=tar.gz", f"--output={destination}", commit, "--", *present)
    return destination


_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def is_commit(value: str) -> bool:
    return bool(_COMMIT.match(value))
