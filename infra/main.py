"""The cdktf app: every environment file becomes a stack, all synthesized in one process.

`cdktf synth` runs this module (see cdktf.json); `python -m infra.main` does the same without the CLI, which is
how CI synthesizes. `make rollback` sets CALLQUEUE_ROLLBACK_ENV and CALLQUEUE_ROLLBACK_IMAGE to redeploy one
environment at a pinned queue image; a rollback that should stick is `queue_image = "…"` in the file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from infra.config import ConfigError, Environment, load_environments, with_queue_image
from infra.naming import REPO_ROOT, content_tag

if TYPE_CHECKING:
    from cdktf import App

ENVIRONMENTS_DIR = REPO_ROOT / "environments"
ROLLBACK_ENV = "CALLQUEUE_ROLLBACK_ENV"
ROLLBACK_IMAGE = "CALLQUEUE_ROLLBACK_IMAGE"


def apply_rollback(envs: Sequence[Environment], environ: Mapping[str, str]) -> list[Environment]:
    """Pin the queue image of the environment named by the rollback variables (both or neither)."""
    name, image = environ.get(ROLLBACK_ENV, ""), environ.get(ROLLBACK_IMAGE, "")
    if not name and not image:
        return list(envs)
    if not name or not image:
        raise ConfigError(f"{ROLLBACK_ENV} and {ROLLBACK_IMAGE} go together. Fix: make rollback ENV=… IMAGE=…")
    if name not in {e.name for e in envs}:
        raise ConfigError(f"{ROLLBACK_ENV}={name!r}: no environments/{name}.toml. Fix: use an existing environment")
    return [with_queue_image(e, image) if e.name == name else e for e in envs]


def build_app(
    outdir: str | None = None, environments: Sequence[Environment] | None = None, image_tag: str | None = None
) -> App:
    """An App with one stack per environment; the provider bindings are imported here, not at module import."""
    from cdktf import App

    from infra.stacks import EnvironmentStack

    envs = load_environments(ENVIRONMENTS_DIR, REPO_ROOT) if environments is None else environments
    tag = content_tag() if image_tag is None else image_tag
    app = App(outdir=outdir) if outdir is not None else App()  # the CLI passes its outdir via CDKTF_OUTDIR
    for env in envs:
        EnvironmentStack(app, env, tag)
    return app


def main() -> int:
    try:
        envs = apply_rollback(load_environments(ENVIRONMENTS_DIR, REPO_ROOT), os.environ)
    except ConfigError as exc:
        print(f"synthesis stopped: environment file problems\n{exc}", file=sys.stderr)
        return 2
    app = build_app(environments=envs)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
