"""Region co-location: every call start and status poll crosses between the services, so they must share a region.

Works on the configured URL strings (plus the metadata server for the queue's own region on Cloud Run), so the
verdict stands whether or not the URLs answer. The seed's us-east1 agent beside an asia-southeast1 backend fails.
"""

from __future__ import annotations

import httpx

from callqueue.ops.context import Context
from callqueue.ops.metadata import own_region
from callqueue.ops.runapp import parse_run_url
from callqueue.ops.runner import summarize
from callqueue.ops.verdict import CheckResult, fail, ok, warn

COLOCATE_FIX = "deploy all four services (queue, webhooks, agent, backend) in one region (see infra)"


async def check_region(ctx: Context) -> CheckResult:
    settings = ctx.need_settings()
    regions: dict[str, str] = {}
    unknown: list[str] = []
    notes: dict[str, str] = {}
    sources = {"agent": settings.agent_server_url, "backend": settings.backend_url}
    if not ctx.on_cloud_run:
        sources["queue"] = settings.public_base_url
    for role, url in sources.items():
        run = parse_run_url(url)
        if run.form == "deterministic" and run.region:
            regions[role] = run.region
            notes[role] = f"{run.region} (from {url})"
        elif run.form == "legacy":
            unknown.append(role)
            notes[role] = f"unknown: legacy URL {url} does not name its region"
        else:
            notes[role] = f"not a run.app URL ({url})"
    if ctx.on_cloud_run:
        try:
            regions["queue"] = await own_region(ctx.http, ctx.metadata_base, ctx.timeout_s)
            notes["queue"] = f"{regions['queue']} (from the metadata server)"
        except (httpx.HTTPError, ValueError, OSError) as exc:
            unknown.append("queue")
            notes["queue"] = f"unknown: metadata server lookup failed ({summarize(exc)})"
    distinct = sorted(set(regions.values()))
    if len(distinct) > 1:
        spread = ", ".join(f"{role} in {region}" for role, region in regions.items())
        return fail("region", f"services span {len(distinct)} regions: {spread}", COLOCATE_FIX, **notes)
    if unknown:
        return warn(
            "region",
            f"region unknown for {', '.join(unknown)}" + (f"; known: {distinct[0]}" if distinct else ""),
            "compare with: gcloud run services list --format='table(name,region)'; " + COLOCATE_FIX,
            **notes,
        )
    if distinct:
        return ok("region", f"all Cloud Run services found are in {distinct[0]}", **notes)
    return ok("region", "no Cloud Run URLs configured: region check not applicable", **notes)
