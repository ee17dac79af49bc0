"""Release records: `releases/<env>.json` names the queue image digest an environment runs, and where it came from.

The environment's stack reads its record and deploys the queue and the webhooks service at exactly that digest;
`make image` writes staging's, `make promote` copies one environment's into another's, `make rollback` writes an
earlier digest. Each record is committed when written, so the repository's history is the deployment log.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.naming import REPO_ROOT

RELEASES_DIR = REPO_ROOT / "releases"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class ReleaseError(ValueError):
    """A release record is unreadable; the message names the file and the fix."""


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str = Field(pattern=DIGEST_PATTERN, description="the queue image's manifest digest")
    content_tag: str = Field(pattern=r"^[0-9a-f]{16}$", description="hash of the image inputs (infra/source.py)")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="the clean commit the image was built from")
    source: str = Field(min_length=1, description="how it got here: built, promoted from …, rollback")


def how_to_release(env_name: str) -> str:
    """The fix wherever a record is missing: the release tool, `make synth`'s note, the stack's plan-time check."""
    return f"make image ENV={env_name}, or make promote FROM=<environment> TO={env_name}"


def release_path(env_name: str, directory: Path = RELEASES_DIR) -> Path:
    return directory / f"{env_name}.json"


def read_release(env_name: str, directory: Path = RELEASES_DIR) -> Release | None:
    """The environment's record, or None when it has none yet (nothing built or promoted for it)."""
    path = release_path(env_name, directory)
    if not path.exists():
        return None
    try:
        return Release.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise ReleaseError(
            f"{path.name}: not a release record ({exc}). Fix: restore it from git (git checkout -- {path.name})"
        ) from None


def write_release(env_name: str, release: Release, directory: Path = RELEASES_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = release_path(env_name, directory)
    path.write_text(json.dumps(release.model_dump(), indent=2) + "\n", encoding="utf-8")
    return path
