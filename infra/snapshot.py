"""Committed snapshots of every stack's synthesized JSON (`make snapshot` refreshes them).

A snapshot is the stack's cdk.tf.json, pretty-printed with sorted keys, synthesized with the fixture release
records in tests/infra/releases/ (not the repository's releases/), so it changes only when the infrastructure
does, never with a deployment.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from infra.naming import REPO_ROOT

SNAPSHOT_DIR = REPO_ROOT / "tests" / "infra" / "snapshots"
FIXTURE_RELEASES = REPO_ROOT / "tests" / "infra" / "releases"


def normalize(stack_json: str) -> str:
    """The snapshot form of one stack's JSON."""
    return json.dumps(json.loads(stack_json), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def snapshot_path(stack_name: str) -> Path:
    return SNAPSHOT_DIR / f"{stack_name}.tf.json"


def main() -> int:
    from infra.main import build_app

    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp) / "cdktf.out"
        build_app(str(outdir), releases_dir=FIXTURE_RELEASES).synth()
        SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
        stale = {p.name for p in SNAPSHOT_DIR.glob("*.tf.json")}
        for stack in sorted((outdir / "stacks").iterdir()):
            target = snapshot_path(stack.name)
            target.write_text(normalize((stack / "cdk.tf.json").read_text(encoding="utf-8")), encoding="utf-8")
            stale.discard(target.name)
            print(f"wrote {target.relative_to(REPO_ROOT)}")
        for name in sorted(stale):  # an environment whose file was removed
            (SNAPSHOT_DIR / name).unlink()
            print(f"removed tests/infra/snapshots/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
