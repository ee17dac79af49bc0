"""Settings and timing profile: the seed's bug was the local profile's short delays running on Cloud Run."""

from __future__ import annotations

from callqueue.ops.context import Context
from callqueue.ops.verdict import CheckResult, fail, ok, warn
from callqueue.settings import TIMING_VARIABLES, TimingProfile

WRONG_PROFILE_FIX = "calls will be marked failed/missed too early; set CLOUD_RUN_OPTIMIZED=true"


def check_settings(ctx: Context) -> CheckResult:
    if ctx.settings is None:
        return fail(
            "settings",
            f"the service would not start: {ctx.settings_error}",
            "fix the variable named above (docs/configuration.md lists every variable)",
        )
    return ok("settings", "loaded: the service would start with this environment")


def _values(timing: TimingProfile) -> dict[str, str]:
    return {
        v.name: f"{getattr(timing, v.name.lower())} ({timing.sources.get(v.name, 'default')})" for v in TIMING_VARIABLES
    }


def _below_cloud_run(timing: TimingProfile) -> list[str]:
    """Overrides that bring a Cloud Run deployment back towards the local profile's too-short windows."""
    return [
        f"{v.name}={getattr(timing, v.name.lower())} < {v.cloud_run}"
        for v in TIMING_VARIABLES
        if timing.sources.get(v.name) == "override"
        and v.name != "MAX_STATUS_RETRIES"
        and getattr(timing, v.name.lower()) < v.cloud_run
    ]


def check_profile(ctx: Context) -> CheckResult:
    settings = ctx.need_settings()
    timing = settings.timing
    where = "on Cloud Run" if settings.on_cloud_run else "off Cloud Run (K_SERVICE unset)"
    details = {"reason": timing.reason, "values": _values(timing)}
    head = f"profile {timing.name} {where}"
    if settings.on_cloud_run and timing.name != "cloud_run":
        return fail("profile", f"{head}: {timing.reason}", WRONG_PROFILE_FIX, **details)
    if settings.on_cloud_run and (low := _below_cloud_run(timing)):
        return warn(
            "profile",
            f"{head}, but overridden below it: {', '.join(low)}",
            "remove these overrides unless measured: short windows mark live calls failed/missed",
            **details,
        )
    if not settings.on_cloud_run and timing.name == "cloud_run":
        return warn(
            "profile",
            f"{head}: {timing.reason}",
            "off Cloud Run the longer waits only slow detection; unset CLOUD_RUN_OPTIMIZED for local runs",
            **details,
        )
    return ok("profile", head, **details)
