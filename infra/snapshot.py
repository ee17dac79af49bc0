"""Committed snapshots of every environment's synthesized JSON (`make snapshot` refreshes them).

A snapshot is the stack's cdk.tf.json, pretty-printed with sorted keys, with the queue image's content tag
replaced by a placeholder: the tag changes with every edit under service/, and the tests check it separately,
so the snapshot only changes when the infrastructure does.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from infra.naming import REPO_ROOT, content_tag

SNAPSHOT_DIR = REPO_ROOT / "tests" / "infra" / "snapshots"
TAG_PLACEHOLDER = "CONTENT_TAG"


def normalize(stack_json: str, tag: str) -> str:
    """The snapshot form of one stack's JSON."""
    data = json.loads(stack_json.replace(tag, TAG_PLACEHOLDER))
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def snapshot_path(env_name: str) -> Path:
    return SNAPSHOT_DIR / f"{env_name}.tf.json"


def main() -> int:
    from infra.main import build_app

    tag = content_tag()
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp) / "cdktf.out"
        build_app(str(outdir), image_tag=tag).synth()
        SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
        stale = {p.name for p in SNAPSHOT_DIR.glob("*.tf.json")}
        for stack in sorted((outdir / "stacks").iterdir()):
            target = snapshot_path(stack.name)
            target.write_text(normalize((stack / "cdk.tf.json").read_text(encoding="utf-8"), tag), encoding="utf-8")
            stale.discard(target.name)
            print(f"wrote {target.relative_to(REPO_ROOT)}")
        for name in sorted(stale):  # an environment whose file was removed
            (SNAPSHOT_DIR / name).unlink()
            print(f"removed tests/infra/snapshots/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
