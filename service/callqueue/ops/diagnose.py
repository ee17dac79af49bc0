"""`callqueue-diagnose` / `python -m callqueue.ops.diagnose`: is this deployment configured and healthy?

Reads the same settings as the service, runs every check concurrently under a deadline, prints a report, and
exits 1 when any check fails (warnings exit 0). Works inside the container or from a laptop (see docs/runbook.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial

from callqueue.ops.checks import agent_auth
from callqueue.ops.checks.agent_kind import check_agent_kind
from callqueue.ops.checks.peers import check_peer, peers
from callqueue.ops.checks.plivo import check_plivo
from callqueue.ops.checks.profile import check_profile, check_settings
from callqueue.ops.checks.queue import check_queue
from callqueue.ops.checks.queue_service import check_queue_service
from callqueue.ops.checks.redis_health import check_eviction, check_redis
from callqueue.ops.checks.region import check_region
from callqueue.ops.context import Context, build_context
from callqueue.ops.report import render_json, render_text
from callqueue.ops.runner import Check, run_all
from callqueue.ops.stack_outputs import StackOutputsError, env_from_outputs
from callqueue.ops.verdict import CheckResult, exit_code, fail

CHECK_NAMES = (
    "profile",
    "redis",
    "redis-eviction",
    "agent",
    "agent-auth",
    "agent-kind",
    "backend",
    "region",
    "plivo",
    "queue",
    "queue-service",
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callqueue-diagnose", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per request (default REQUEST_TIMEOUT)")
    parser.add_argument("--skip", default="", help=f"comma-separated checks to skip: {','.join(CHECK_NAMES)}")
    parser.add_argument("--metadata-url", default=None, help="metadata server base URL (default GCE_METADATA_HOST)")
    parser.add_argument(
        "--stack-outputs", default=None, help="`terraform output -json` of a deployed stack: check its URLs"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no details, verdicts and fixes only")
    args = parser.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if unknown := args.skip - set(CHECK_NAMES):
        parser.error(f"--skip: unknown check(s) {', '.join(sorted(unknown))}; known: {', '.join(CHECK_NAMES)}")
    return args


async def _profile(ctx: Context) -> CheckResult:
    return check_profile(ctx)


def build_checks(ctx: Context) -> list[Check]:
    checks = [
        Check("profile", partial(_profile, ctx)),
        Check("redis", partial(check_redis, ctx), "check REDIS_URL and the VPC path to Redis"),
        Check("redis-eviction", partial(check_eviction, ctx), "check REDIS_URL and the VPC path to Redis"),
    ]
    for peer in peers(ctx):
        checks.append(Check(peer.name, partial(check_peer, ctx, peer), f"check {peer.variable}"))
    if agent_auth.applies(ctx):  # deployed: the public agent must refuse an anonymous /start
        checks.append(Check("agent-auth", partial(agent_auth.check_agent_auth, ctx), "check AGENT_SERVER_URL"))
    checks += [
        Check("agent-kind", partial(check_agent_kind, ctx), "check AGENT_SERVER_URL"),
        Check("region", partial(check_region, ctx)),
        Check("plivo", partial(check_plivo, ctx), "check PLIVO_API_BASE_URL and egress"),
        Check("queue", partial(check_queue, ctx), "check REDIS_URL and the VPC path to Redis"),
    ]
    queue_url = ctx.env.get("QUEUE_URL", "").strip()
    if queue_url:  # the deployed queue's own view of its profile and Redis; known only when given
        checks.append(Check("queue-service", partial(check_queue_service, ctx, queue_url), "check QUEUE_URL"))
    return checks


async def diagnose(ctx: Context, skip: set[str]) -> list[CheckResult]:
    results = [check_settings(ctx)]
    if ctx.settings is None:
        return results  # every other check reads the settings; the failure above says what to fix
    checks = [c for c in build_checks(ctx) if c.name not in skip]
    return results + await run_all(checks, ctx.timeout_s)


async def _main(args: argparse.Namespace, env: Mapping[str, str] | None) -> tuple[Context, list[CheckResult]]:
    if args.stack_outputs:
        env = {**(os.environ if env is None else env), **env_from_outputs(args.stack_outputs)}
    ctx = build_context(env, args.timeout, args.metadata_url)
    try:
        return ctx, await diagnose(ctx, args.skip)
    finally:
        await ctx.aclose()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ctx, results = asyncio.run(_main(args, env))
        extra = {"on_cloud_run": ctx.on_cloud_run, "timeout_s": ctx.timeout_s}
    except StackOutputsError as exc:
        results = [fail("stack-outputs", str(exc), "deploy the stack, or run terraform output from its directory")]
        extra = {}
    except Exception as exc:  # last resort: the tool reports, it never prints a traceback
        results = [fail("diagnose", f"the tool failed: {type(exc).__name__}: {exc}", "report this as a bug")]
        extra = {}
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if args.json:
        print(render_json("diagnose", results, {"at": when, **extra}))
    else:
        where = "on Cloud Run" if extra.get("on_cloud_run") else "off Cloud Run"
        print(render_text(f"callqueue diagnose, {when}, {where}", results, verbose=not args.quiet))
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
