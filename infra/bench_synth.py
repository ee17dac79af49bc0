"""Where synthesis time goes: importing the provider bindings versus building and writing every stack.

Run `python -m infra.bench_synth`; it prints one markdown table row for the benchmark results. The target is
that everything beyond the import stays at most 30 % of the total: the import is a fixed jsii cost, the rest
grows with the number of environments.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_SHARE = 0.30
WARM_RUNS = 5


def _synth_once(outdir: Path) -> tuple[float, int]:
    from infra.config import load_environments
    from infra.main import ENVIRONMENTS_DIR, build_app
    from infra.naming import REPO_ROOT
    from infra.snapshot import FIXTURE_RELEASES

    start = time.perf_counter()
    envs = load_environments(ENVIRONMENTS_DIR, REPO_ROOT)
    build_app(str(outdir), envs, releases_dir=FIXTURE_RELEASES).synth()  # every stack, as with recorded releases
    return time.perf_counter() - start, len(envs)


def main() -> int:
    start = time.perf_counter()
    importlib.import_module("infra.stacks")  # pulls in cdktf and every provider module the stacks use
    imported = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        first, count = _synth_once(Path(tmp) / "first")
        warm = [_synth_once(Path(tmp) / f"warm{i}")[0] for i in range(WARM_RUNS)]
    total = imported + first
    share = first / total
    verdict = "ok" if share <= TARGET_SHARE else "OVER TARGET"
    print("| measurement | import bindings | synth all (first) | synth all (warm median) | total | beyond import |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| infra synth, {count} environments | {imported:.2f} s | {first:.2f} s | {statistics.median(warm):.2f} s"
        f" | {total:.2f} s | {share:.1%} (target ≤ {TARGET_SHARE:.0%}: {verdict}) |"
    )
    return 0 if share <= TARGET_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
