"""`callqueue-connectivity` / `python -m callqueue.ops.connectivity`: can this process reach its peers, and how fast?

For the agent, the backend, Plivo and Redis: DNS, TCP connect, TLS (https/rediss), the HTTP status or PING, and
latency p50/p95 over N requests, each step timed so a failure names the layer that broke and what to do about it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
from redis.exceptions import AuthenticationError, RedisError

from callqueue.ops.checks.peers import Peer, explain_status
from callqueue.ops.checks.redis_health import UNREACHABLE_FIX, redis_target
from callqueue.ops.context import Context, build_context
from callqueue.ops.probes import percentile, resolve, tcp_connect, tls_handshake
from callqueue.ops.report import render_json, render_text
from callqueue.ops.runner import GRACE_S, Check, run_in_turn, summarize
from callqueue.ops.verdict import CheckResult, exit_code, fail, ok, warn
from callqueue.store.connection import redis_client

SLOW_P95_MS = 300.0  # above a cross-region round trip (us-east1 ↔ asia-southeast1 is ~220 ms)
CERT_WARN_DAYS = 14
Sample = Callable[[], Awaitable[str]]  # one timed request; returns an outcome label ("200", "PONG")


@dataclass
class Target:
    name: str
    variable: str
    url: str
    tls: bool
    host: str
    port: int
    details: dict[str, Any] = field(default_factory=dict)


def target(name: str, variable: str, url: str) -> Target:
    parts = urlsplit(url)
    tls = parts.scheme in ("https", "rediss")
    default = {"https": 443, "http": 80, "redis": 6379, "rediss": 6379}.get(parts.scheme, 0)
    return Target(name, variable, url, tls, parts.hostname or "", parts.port or default)


async def network_steps(t: Target, timeout_s: float) -> CheckResult | None:
    """DNS, TCP, TLS in order; the first failure is the verdict. None when all passed (details filled in)."""
    try:
        resolved = await resolve(t.host, t.port, timeout_s)
    except (OSError, TimeoutError) as exc:
        return fail(
            t.name,
            f"DNS: {t.host} does not resolve ({summarize(exc)})",
            f"check the host in {t.variable}; inside a VPC check its DNS (private zones for Memorystore)",
            **t.details,
        )
    t.details["dns"] = f"{resolved.ms} ms → {', '.join(resolved.addresses[:4])}"
    try:
        tcp_ms = await tcp_connect(resolved.addresses[0], t.port, timeout_s)
    except TimeoutError:
        return fail(
            t.name,
            f"TCP: no answer from {resolved.addresses[0]}:{t.port} within {timeout_s:g} s",
            "packets are dropped: check firewall rules and VPC egress (Direct VPC egress or a connector)",
            **t.details,
        )
    except OSError as exc:
        return fail(
            t.name,
            f"TCP: {resolved.addresses[0]}:{t.port} refused ({summarize(exc)})",
            f"nothing listens there: check the port in {t.variable} and that the {t.name} is running",
            **t.details,
        )
    t.details["tcp"] = f"{tcp_ms} ms to {resolved.addresses[0]}:{t.port}"
    if not t.tls:
        t.details["tls"] = "not used (plain " + urlsplit(t.url).scheme + ")"
        return None
    try:
        info = await tls_handshake(t.host, t.port, timeout_s)
    except (OSError, TimeoutError) as exc:
        return fail(
            t.name,
            f"TLS handshake with {t.host} failed: {summarize(exc)}",
            "the certificate does not match the host or is not trusted: check the URL's host and the server's cert",
            **t.details,
        )
    days = f", certificate expires in {info.cert_days_left:g} days" if info.cert_days_left is not None else ""
    t.details["tls"] = f"{info.ms} ms, {info.version}{days}"
    if info.cert_days_left is not None and info.cert_days_left < CERT_WARN_DAYS:
        t.details["tls_warning"] = f"certificate expires in {info.cert_days_left:g} days"
    return None


async def series(t: Target, sample: Sample, n: int, timeout_s: float) -> tuple[list[float], Counter[str], str | None]:
    """A first request (it opens the connection: a cold start shows there), then up to n timed samples for the
    percentiles; stops at the first transport error or when the time budget is spent."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    budget_end = time.monotonic() + timeout_s
    for i in range(n + 1):
        started = time.perf_counter()
        try:
            outcomes[await sample()] += 1
        except (httpx.HTTPError, RedisError, OSError, TimeoutError) as exc:
            return latencies, outcomes, summarize(exc)
        took = round((time.perf_counter() - started) * 1000, 1)
        if i == 0:
            t.details["first_request"] = f"{took} ms (opens the connection; a cold start shows here)"
        else:
            latencies.append(took)
        if time.monotonic() > budget_end and i < n:
            t.details["note"] = f"stopped after {i} of {n} timed samples: time budget of {timeout_s:g} s spent"
            break
    return latencies, outcomes, None


def latency_verdict(t: Target, latencies: list[float], outcomes: Counter[str]) -> CheckResult:
    if not latencies:  # the budget went on the first request: judge by it alone
        return warn(t.name, "reachable, but too slow to measure", "read the peer's logs", **t.details)
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    t.details["latency"] = f"p50 {p50} ms, p95 {p95} ms over {len(latencies)} request(s) after the first"
    t.details["answers"] = ", ".join(f"{k} ×{v}" for k, v in outcomes.most_common())
    summary = f"reachable; p50 {p50} ms, p95 {p95} ms"
    if "tls_warning" in t.details:
        return warn(t.name, f"{summary}; {t.details['tls_warning']}", "renew the certificate", **t.details)
    if p95 > SLOW_P95_MS:
        return warn(
            t.name,
            f"{summary}: slow",
            "a cross-region hop or cold starts: deploy all four services in one region, keep min instances ≥ 1",
            **t.details,
        )
    return ok(t.name, summary, **t.details)


async def probe_http(
    ctx: Context, t: Target, path: str, n: int, basic: tuple[str, str] | None = None, id_token: bool = True
) -> CheckResult:
    """Agent and backend authenticate with ID tokens; Plivo with Basic auth (or nothing, to test reachability)."""
    broken = await network_steps(t, ctx.timeout_s)
    if broken:
        return broken
    url = t.url.rstrip("/") + path
    t.details["url"] = url
    headers: dict[str, str] = {}
    if id_token:
        try:
            headers = await ctx.tokens.headers_for(url)
        except (httpx.HTTPError, OSError) as exc:
            fix = "run on Cloud Run, or set AUTH_MODE=none"
            return fail(t.name, f"no ID token from the metadata server: {summarize(exc)}", fix, **t.details)
    t.details["auth"] = ctx.tokens.describe() if id_token else ("Basic auth" if basic else "none")

    async def sample() -> str:
        response = await ctx.http.get(url, headers=headers, auth=basic, timeout=ctx.timeout_s)
        return str(response.status_code)

    latencies, outcomes, error = await series(t, sample, n, ctx.timeout_s)
    if error:
        return fail(
            t.name,
            f"HTTP: {error}" + (f" after {n_ok} good answer(s)" if (n_ok := sum(outcomes.values())) else ""),
            f"the {t.name} accepts connections but does not answer in {ctx.timeout_s:g} s: read its logs",
            **t.details,
        )
    codes = sorted(int(c) for c in outcomes)
    if basic and 401 in codes:
        fix = "set PLIVO_AUTH_ID/PLIVO_AUTH_TOKEN to the account's values (Plivo console → API keys)"
        return fail(t.name, "HTTP 401: Plivo rejected the credentials", fix, **t.details)
    for code in codes:
        if id_token and (explained := explain_status(Peer(t.name, t.variable, t.url), code, ctx.tokens.kind)):
            return fail(t.name, f"HTTP: {explained[0]}", explained[1], **t.details)
    if codes[-1] >= 500:
        return fail(t.name, f"HTTP {codes[-1]} from {url}", f"the {t.name} is failing: read its logs", **t.details)
    return latency_verdict(t, latencies, outcomes)


async def probe_redis(ctx: Context, t: Target, n: int) -> CheckResult:
    t.url = redis_target(t.url)  # never print the password
    if urlsplit(t.url).scheme != "unix":
        broken = await network_steps(t, ctx.timeout_s)
        if broken:
            return broken
    client = redis_client(ctx.need_settings(), socket_connect_timeout=ctx.timeout_s, socket_timeout=ctx.timeout_s)
    try:

        async def sample() -> str:
            return "PONG" if await client.ping() else "no PONG"

        latencies, outcomes, error = await series(t, sample, n, ctx.timeout_s)
    except AuthenticationError as exc:
        return fail(t.name, f"Redis refused the password: {exc}", "put the AUTH string in REDIS_URL", **t.details)
    finally:
        await client.aclose()
    if error:
        return fail(t.name, f"PING: {error}", UNREACHABLE_FIX, **t.details)
    return latency_verdict(t, latencies, outcomes)


def build_checks(ctx: Context, n: int) -> list[Check]:
    s = ctx.need_settings()
    agent = target("agent", "AGENT_SERVER_URL", s.agent_server_url)
    backend = target("backend", "BACKEND_URL", s.backend_url)
    plivo = target("plivo", "PLIVO_API_BASE_URL", s.plivo_api_base_url)
    plivo_path = f"/v1/Account/{s.plivo_auth_id}/Call/?limit=1" if s.plivo_auth_id else "/"
    basic = (s.plivo_auth_id, s.plivo_auth_token) if s.plivo_auth_id and s.plivo_auth_token else None
    return [
        Check("agent", partial(probe_http, ctx, agent, "/health", n)),
        Check("backend", partial(probe_http, ctx, backend, "/health", n)),
        Check("plivo", partial(probe_http, ctx, plivo, plivo_path, n, basic, False)),
        Check("redis", partial(probe_redis, ctx, target("redis", "REDIS_URL", s.redis_url), n)),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callqueue-connectivity", description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10, help="requests per peer for the latency figures (default 10)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per step (default REQUEST_TIMEOUT)")
    parser.add_argument("--metadata-url", default=None, help="metadata server base URL (default GCE_METADATA_HOST)")
    args = parser.parse_args(argv)
    args.n = max(1, args.n)
    return args


async def _main(args: argparse.Namespace, env: Mapping[str, str] | None) -> list[CheckResult]:
    ctx = build_context(env, args.timeout, args.metadata_url)
    try:
        if ctx.settings is None:
            return [fail("settings", f"invalid: {ctx.settings_error}", "fix the variable named above")]
        # Peers in turn, so one peer's traffic does not skew another's latency; DNS, TCP, TLS and the first
        # request may each take the timeout, and the deadline allows for that.
        return await run_in_turn(build_checks(ctx, args.n), ctx.timeout_s * 3 + GRACE_S)
    finally:
        await ctx.aclose()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = asyncio.run(_main(args, env))
    except Exception as exc:  # last resort: the tool reports, it never prints a traceback
        results = [fail("connectivity", f"the tool failed: {type(exc).__name__}: {exc}", "report this as a bug")]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if args.json:
        print(render_json("connectivity", results, {"at": when, "requests_per_peer": args.n}))
    else:
        print(render_text(f"callqueue connectivity, {when}, {args.n} request(s) per peer", results))
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
