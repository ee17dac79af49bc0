"""The agent and the backend: reachable, healthy, fast enough, and accepting the queue's credentials.

A 403 from a private Cloud Run service means the caller's identity lacks roles/run.invoker on it; a 401 means no
(valid) token was sent. Both are the seed's "403 between services" symptom.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from callqueue.ops.context import Context
from callqueue.ops.runapp import parse_run_url
from callqueue.ops.runner import summarize
from callqueue.ops.verdict import CheckResult, fail, ok, warn

HEALTH_PATH = "/health"


@dataclass(frozen=True)
class Peer:
    name: str
    variable: str
    url: str


def peers(ctx: Context) -> list[Peer]:
    settings = ctx.need_settings()
    return [
        Peer("agent", "AGENT_SERVER_URL", settings.agent_server_url),
        Peer("backend", "BACKEND_URL", settings.backend_url),
    ]


def invoker_fix(url: str) -> str:
    run = parse_run_url(url)
    service = run.service or "SERVICE"
    region = run.region or "REGION"
    return (
        f"grant the queue's service account roles/run.invoker on {service}: gcloud run services add-iam-policy-binding "
        f"{service} --region={region} --member=serviceAccount:QUEUE_SA --role=roles/run.invoker (infra/iam.py)"
    )


def explain_status(peer: Peer, code: int, token_kind: str) -> tuple[str, str] | None:
    """(summary, remedy) for an authentication failure; None when the status is not one."""
    if code == 401:
        if token_kind == "none":
            return (
                f"{peer.name} answered 401: it requires a Google ID token and none was sent",
                "on Cloud Run set AUTH_MODE=auto (or id_token) so the queue sends one; off Cloud Run pass "
                "CALLQUEUE_ID_TOKEN=$(gcloud auth print-identity-token)",
            )
        return (
            f"{peer.name} answered 401: the ID token was rejected",
            f"the token's audience must be the service URL {peer.url}; check the token source and clock",
        )
    if code == 403 and token_kind == "none":  # Cloud Run answers 403, not 401, to an anonymous request
        return (
            f"{peer.name} answered 403 to a request without an ID token: it is private",
            "send a token (AUTH_MODE=auto on Cloud Run; CALLQUEUE_ID_TOKEN off it), and " + invoker_fix(peer.url),
        )
    if code == 403:
        return (
            f"{peer.name} answered 403: the caller is authenticated but not allowed to invoke it",
            invoker_fix(peer.url),
        )
    return None


async def check_peer(ctx: Context, peer: Peer) -> CheckResult:
    url = peer.url + HEALTH_PATH
    details: dict[str, object] = {"url": url, "auth": ctx.tokens.describe()}
    try:
        headers = await ctx.tokens.headers_for(url)
    except (httpx.HTTPError, OSError) as exc:
        return fail(
            peer.name,
            f"could not get an ID token from the metadata server: {summarize(exc)}",
            "run on Cloud Run with a service account, or set AUTH_MODE=none for unauthenticated peers",
            **details,
        )
    started = time.perf_counter()
    try:
        response = await ctx.http.get(url, headers=headers, timeout=ctx.timeout_s)
    except httpx.TimeoutException as exc:
        return fail(
            peer.name,
            f"no answer from {peer.url} within {ctx.timeout_s:g} s ({type(exc).__name__})",
            f"the {peer.name} hangs or cold-starts slowly: check its logs, min instances and CPU; "
            f"it must answer well within REQUEST_TIMEOUT",
            **details,
        )
    except httpx.HTTPError as exc:
        return fail(
            peer.name,
            f"{peer.url} unreachable: {summarize(exc)}",
            f"check {peer.variable} (host, port, scheme) and that the {peer.name} is deployed and running",
            **details,
        )
    latency = round((time.perf_counter() - started) * 1000, 1)
    details.update(status=response.status_code, latency_ms=latency)
    auth = explain_status(peer, response.status_code, ctx.tokens.kind)
    if auth:
        return fail(peer.name, auth[0], auth[1], **details)
    if response.status_code == 404:
        return warn(
            peer.name,
            f"{peer.url} is reachable but has no {HEALTH_PATH} (404)",
            f"add GET {HEALTH_PATH} to the {peer.name} (docs/contracts.md), or check {peer.variable} points at it",
            **details,
        )
    if response.status_code >= 300:
        return fail(
            peer.name,
            f"{HEALTH_PATH} answered {response.status_code}: {response.text[:120]!r}",
            f"the {peer.name} is up but unhealthy: read its logs",
            **details,
        )
    try:
        body = response.json()
    except ValueError:
        return warn(
            peer.name,
            f"{HEALTH_PATH} answered {response.status_code} in {latency} ms, but not JSON: {response.text[:80]!r}",
            f'make the {peer.name}\'s {HEALTH_PATH} answer JSON (e.g. {{"status": "ok"}}); check {peer.variable}',
            **details,
        )
    details["body"] = body if isinstance(body, dict) else str(body)[:120]
    if latency > ctx.timeout_s * 1000 / 2:
        return warn(
            peer.name,
            f"healthy but slow: {latency} ms, over half of the {ctx.timeout_s:g} s request timeout",
            "co-locate the services in one region and keep min instances ≥ 1 on the agent",
            **details,
        )
    return ok(peer.name, f"{HEALTH_PATH} {response.status_code} in {latency} ms", **details)
