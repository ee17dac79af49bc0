"""The cdktf app: every environment file becomes a foundation stack and, once it has a release, a stack.

`cdktf synth` runs this module (see cdktf.json); `python -m infra.main` does the same without the CLI, which is
how CI synthesizes. Stacks: `<env>-foundation` (make bootstrap) for every environment, and `<env>` (make deploy)
for every environment with a release record (`releases/<env>.json`: the queue image digest it runs). An
environment without one is reported and skipped: nothing can be deployed before its image exists.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from infra.config import ConfigError, Environment, load_environments
from infra.naming import REPO_ROOT
from infra.releases import RELEASES_DIR, ReleaseError, read_release, release_path

if TYPE_CHECKING:
    from cdktf import App

ENVIRONMENTS_DIR = REPO_ROOT / "environments"


def build_app(
    outdir: str | None = None,
    environments: Sequence[Environment] | None = None,
    releases_dir: Path = RELEASES_DIR,
    notes: list[str] | None = None,
) -> App:
    """An App with every stack; the provider bindings are imported here, not at module import.

    Environments without a release record get only their foundation; `notes` (when given) says which.
    """
    from cdktf import App

    from infra.foundation import FoundationStack
    from infra.stacks import EnvironmentStack

    envs = load_environments(ENVIRONMENTS_DIR, REPO_ROOT) if environments is None else list(environments)
    app = App(outdir=outdir) if outdir is not None else App()  # the CLI passes its outdir via CDKTF_OUTDIR
    for env in envs:
        FoundationStack(app, env, envs)
        release = read_release(env.name, releases_dir)
        if release is None:
            if notes is not None:
                path = _shown(release_path(env.name, releases_dir))
                notes.append(
                    f"{env.name}: no release record ({path}), so only {env.name}-foundation is synthesized."
                    f" Record one with `make image ENV={env.name}` or `make promote FROM=… TO={env.name}`"
                )
            continue
        EnvironmentStack(app, env, release)
    return app


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main() -> int:
    notes: list[str] = []
    try:
        app = build_app(notes=notes)
    except (ConfigError, ReleaseError) as exc:
        print(f"synthesis stopped: environment or release file problems\n{exc}", file=sys.stderr)
        return 2
    app.synth()
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
