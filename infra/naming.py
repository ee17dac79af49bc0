"""Names, URLs and the queue image's content tag: pure functions, shared by the stacks, the tests and the bench.

The image tag is a hash of exactly what goes into the image, so the same sources always deploy the same tag,
any change to them deploys a new one, and Terraform never sees `latest`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from infra.config import Environment

REPO_ROOT = Path(__file__).resolve().parent.parent
# What the root Dockerfile copies into the queue image (its COPY lines and .dockerignore's allow-list), plus the
# Dockerfile itself; directories are walked recursively.
IMAGE_INPUTS: tuple[str, ...] = ("Dockerfile", "README.md", "pyproject.toml", "uv.lock", "service")
_SKIPPED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
TAG_LENGTH = 16


def image_input_files(root: Path = REPO_ROOT) -> list[str]:
    """Relative POSIX paths of every image input that exists, sorted; caches and bytecode are left out."""
    files: set[str] = set()
    for entry in IMAGE_INPUTS:
        path = root / entry
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in candidates:
            rel = file.relative_to(root)
            if _SKIPPED_PARTS.isdisjoint(rel.parts) and not rel.name.endswith(_SKIPPED_SUFFIXES):
                files.add(rel.as_posix())
    return sorted(files)


def content_tag(root: Path = REPO_ROOT) -> str:
    """sha256 over (relative path, sha256 of content) of every input, sorted: independent of machine and clock."""
    outer = hashlib.sha256()
    for rel in image_input_files(root):
        inner = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        outer.update(f"{rel}\0{inner}\n".encode())
    return outer.hexdigest()[:TAG_LENGTH]


def service_name(env: Environment, role: str) -> str:
    """Cloud Run service name of `role` (queue, webhooks, agent, backend)."""
    return f"{env.config.name_prefix}-{role}"


def service_account_id(env: Environment, role: str) -> str:
    """Account id (6 to 30 characters) of the service account `role` runs as."""
    return f"{env.config.name_prefix}-{role}"[:30]


def deterministic_url(env: Environment, role: str) -> str:
    """https://SERVICE-PROJECTNUMBER.REGION.run.app: known before deployment, so a service can be told its own URL."""
    cfg = env.config
    return f"https://{service_name(env, role)}-{cfg.project_number}.{cfg.region}.run.app"


def public_base_url(env: Environment) -> str:
    """PUBLIC_BASE_URL of the queue AND the webhooks service: the webhooks service's URL, where Plivo calls back.

    Both services must carry the same value: the queue puts it in the callback URLs it gives Plivo, the webhooks
    service rebuilds the URL from it to check the V3 signature, which covers the full public URL.
    """
    return deterministic_url(env, "webhooks")


def registry_host(env: Environment) -> str:
    return f"{env.config.region}-docker.pkg.dev"


def built_queue_image(env: Environment, tag: str) -> str:
    """Where the image built from this repository is pushed, at its content tag."""
    cfg = env.config
    return f"{registry_host(env)}/{cfg.project}/{cfg.artifact_repository}/{service_name(env, 'queue')}:{tag}"
