"""What the operations targets need to know about one environment, read from its file (no provider import).

`python -m infra.describe ENV` prints `<project> <queue service name>` (what `make logs` filters on); an unknown
environment or an invalid file is one clear message and exit 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from infra.config import ConfigError, Environment, load_environment
from infra.naming import REPO_ROOT, service_name

ENVIRONMENTS_DIR = REPO_ROOT / "environments"


def known_environments(directory: Path = ENVIRONMENTS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def unknown_environment_message(name: str, directory: Path = ENVIRONMENTS_DIR) -> str:
    """Names the missing file and the environments there are, for every target that takes ENV=."""
    path = directory / f"{name}.toml"
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    known = ", ".join(known_environments(directory)) or "none"
    return (
        f"there is no environment file {shown} (ENV={name}). Existing environments: {known}."
        f" Fix: pass one of them (ENV=…), or add {shown} (docs/infrastructure.md)"
    )


def read_environment(name: str, directory: Path = ENVIRONMENTS_DIR) -> Environment:
    path = directory / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(unknown_environment_message(name, directory))
    return load_environment(path, REPO_ROOT)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m infra.describe ENV", file=sys.stderr)
        return 2
    try:
        env = read_environment(argv[0])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(env.config.project, service_name(env, "queue"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
