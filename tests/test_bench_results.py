"""Rerunning one benchmark section replaces that section of bench/results.md and nothing else."""

from __future__ import annotations

import pytest

from bench.__main__ import main, splice
from bench.common import rounds_from_env

RESULTS = """# Benchmark results

Run 2026-01-01 00:00 UTC with `make bench` on: a machine.

## Enqueue

old enqueue figures

### HTTP

old http figures

## Pacing

old pacing figures
"""


def test_a_rerun_section_replaces_its_own_and_keeps_the_others() -> None:
    out = splice(RESULTS, ["## Enqueue\n\nnew enqueue figures\n"], "2026-11-28 15:00 UTC on here")
    assert "old enqueue figures" not in out and "old http figures" not in out
    assert "## Enqueue\n\n_Rerun on its own: 2026-11-28 15:00 UTC on here._\n\nnew enqueue figures" in out
    assert "## Pacing\n\nold pacing figures" in out
    assert out.startswith("# Benchmark results\n\nRun 2026-01-01 00:00 UTC")
    assert out.index("## Enqueue") < out.index("## Pacing")  # in place, not moved


def test_a_section_the_file_lacks_is_appended() -> None:
    out = splice(RESULTS, ["## Soak\n\nsoak figures"], "now")
    assert out.rstrip().endswith("soak figures")
    assert "old enqueue figures" in out and "old pacing figures" in out


def test_a_section_without_a_heading_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with a '## ' heading"):
        splice(RESULTS, ["figures with no heading"], "now")


def test_an_unknown_section_name_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enqeue"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark section(s): enqeue" in err and "enqueue claim" in err


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "2.5", ""])
def test_a_round_count_that_is_not_a_whole_number_stops_the_bench_saying_which_variable(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_HTTP_ROUNDS", raw)
    with pytest.raises(SystemExit, match=r"BENCH_HTTP_ROUNDS=.*whole number of rounds, at least 1 \(default 6\)"):
        rounds_from_env("BENCH_HTTP_ROUNDS", 6)


def test_a_round_count_from_the_environment_or_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_ROUNDS", "7")
    assert rounds_from_env("BENCH_ROUNDS", 5) == 7
    monkeypatch.delenv("BENCH_ROUNDS")
    assert rounds_from_env("BENCH_ROUNDS", 5) == 5
