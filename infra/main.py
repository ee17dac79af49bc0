"""The cdktf app: every environment file becomes a foundation stack and a services stack.

`cdktf synth` runs this module (see cdktf.json); `python -m infra.main` does the same without the CLI, which is
how CI synthesizes. Stacks: `<env>-foundation` (make bootstrap) and `<env>` (make deploy), which runs the queue
image digest of the environment's release record (`releases/<env>.json`). An environment without one still gets
its services stack, to read and review, with the queue image marked unreleased: its plan fails with how to
record one (infra/image.py), and `make synth` says so.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from infra.config import ConfigError, Environment, load_environments
from infra.naming import REPO_ROOT
from infra.releases import RELEASES_DIR, ReleaseError, how_to_release, read_release, release_path

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

    Environments without a release record get a services stack that cannot be planned; `notes` (when given)
    says which. The environment files are read first, so a mistake in one is said before the slow import.
    """
    envs = load_environments(ENVIRONMENTS_DIR, REPO_ROOT) if environments is None else list(environments)
    from cdktf import App

    from infra.foundation import FoundationStack
    from infra.stacks import EnvironmentStack

    app = App(outdir=outdir) if outdir is not None else App()  # the CLI passes its outdir via CDKTF_OUTDIR
    for env in envs:
        FoundationStack(app, env, envs)
        release = read_release(env.name, releases_dir)
        if release is None and notes is not None:
            path = _shown(release_path(env.name, releases_dir))
            notes.append(
                f"{env.name}: no release record ({path}): its stack is synthesized for reading, with the queue image"
                f" marked unreleased, and a plan of it fails. Fix: {how_to_release(env.name)}"
            )
        EnvironmentStack(app, env, release)
    return app


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def import_provider_bindings(say: Callable[[str], None]) -> None:
    """Import cdktf and the Google provider bindings, saying so: jsii loads a large assembly, which takes a while."""
    say("importing the cdktf Google provider bindings (about 30 s; minutes on a busy machine) ...")
    started = time.monotonic()
    importlib.import_module("infra.stacks")
    importlib.import_module("infra.foundation")
    say(f"imported in {time.monotonic() - started:.0f} s; synthesizing ...")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    notes: list[str] = []
    try:
        load_environments(ENVIRONMENTS_DIR, REPO_ROOT)  # its errors before the slow import
        import_provider_bindings(_say)
        app = build_app(notes=notes)
    except (ConfigError, ReleaseError) as exc:
        print(f"synthesis stopped: environment or release file problems\n{exc}", file=sys.stderr)
        return 2
    app.synth()
    outdir = Path(app.outdir)
    stacks = sorted(p.name for p in (outdir / "stacks").iterdir()) if (outdir / "stacks").is_dir() else []
    _say(f"wrote {len(stacks)} stacks to {_shown(outdir)}/stacks/: {', '.join(stacks)}")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
