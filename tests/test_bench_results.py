"""The benchmarks' plumbing: rerunning one section replaces that section of bench/results.md and nothing else; the
variables they read are parsed strictly; the processes they place land where the printed text says."""

from __future__ import annotations

import os

import pytest

from bench.__main__ import main, splice
from bench.common import per_round, rounds_from_env, slice_sizes, switch_from_env
from bench.placement import CORE_SWITCH, GeneratorPlacement, local_redis_pid, placement

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


@pytest.mark.parametrize("raw", ["yes", "off", "2", "", "true"])
def test_a_placement_switch_that_is_not_0_or_1_stops_the_bench_saying_which_variable(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CORE_SWITCH, raw)
    with pytest.raises(SystemExit, match=r"BENCH_CORE_PLACE=.*must be 1 \(on\) or 0 \(off\) \(default 1\)"):
        switch_from_env(CORE_SWITCH)


def test_a_placement_switch_is_on_unless_set_to_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CORE_SWITCH, raising=False)
    assert switch_from_env(CORE_SWITCH) is True
    monkeypatch.setenv(CORE_SWITCH, "0")
    assert switch_from_env(CORE_SWITCH) is False
    monkeypatch.setenv(CORE_SWITCH, "1")
    assert switch_from_env(CORE_SWITCH) is True


def test_the_measured_process_gets_the_first_cpu_it_may_use_and_redis_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {5, 2, 7})
    where = placement()
    assert where is not None and where.first == {2} and where.others == {5, 7}
    assert where.describe("the load generator", "Redis") == "the load generator on CPU 2, Redis on CPU 5,7"
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3})
    assert placement() is None  # one CPU: nothing to place


def test_a_sides_calls_in_a_round_are_cut_into_turns_that_add_up_to_them_all() -> None:
    assert slice_sizes(1500, 5) == [300] * 5
    assert slice_sizes(1502, 5) == [301, 301, 300, 300, 300]  # every call run, no turn more than one longer
    assert slice_sizes(3, 5) == [1, 1, 1, 0, 0]


def test_per_round_figures_are_listed_in_the_order_the_rounds_ran() -> None:
    assert per_round([3110.4, 1959.0, 12345.6]) == "3,110 · 1,959 · 12,346"
    assert per_round([1.234, 0.9], 2) == "1.23 · 0.90"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="placement needs two CPUs")
def test_the_load_generator_and_redis_run_where_the_text_says_for_each_run_and_are_let_go_after(
    redis_url: str,
) -> None:
    redis_pid = local_redis_pid(redis_url)
    if redis_pid is None:
        pytest.skip("the tests' Redis is not a process of this machine")
    mine, redis_before = os.sched_getaffinity(0), os.sched_getaffinity(redis_pid)
    first, *rest = sorted(mine)
    placed = GeneratorPlacement(redis_url, True)
    with placed.run(concurrent=False):  # a round trip at a time: both on the first CPU
        assert os.sched_getaffinity(0) == {first} and os.sched_getaffinity(redis_pid) == {first}
    assert os.sched_getaffinity(0) == mine and os.sched_getaffinity(redis_pid) == redis_before
    with placed.run(concurrent=True):  # many at once: Redis on the others
        assert os.sched_getaffinity(0) == {first} and os.sched_getaffinity(redis_pid) == set(rest)
    assert os.sched_getaffinity(0) == mine and os.sched_getaffinity(redis_pid) == redis_before
    others = ",".join(str(c) for c in rest)
    text = placed.describe(concurrent=True)
    generator = "the load generator (this process: every side's client)"
    assert f"one call at a time, {generator} and Redis both on CPU {first}" in text
    assert f"many at once, {generator} on CPU {first}, Redis on CPU " in text
    assert text.count(f"Redis on CPU {others}") == 1 and "BENCH_CORE_PLACE=0 turns it off" in text
    assert "many at once" not in placed.describe(concurrent=False)


def test_with_placement_off_nothing_is_pinned_and_the_text_says_so(redis_url: str) -> None:
    mine = os.sched_getaffinity(0)
    placed = GeneratorPlacement(redis_url, False)
    with placed.run(concurrent=False):
        assert os.sched_getaffinity(0) == mine
    assert placed.describe(concurrent=True).startswith("No placement (BENCH_CORE_PLACE=0)")
