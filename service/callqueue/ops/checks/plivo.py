"""Plivo: the credentials work, with a harmless authenticated read, and the pacing fits the account's limits."""

from __future__ import annotations

from typing import Any

import httpx

from callqueue.ops.context import Context
from callqueue.ops.runner import summarize
from callqueue.ops.verdict import CheckResult, fail, ok, warn

DEFAULT_CPS = 2  # Plivo's default outbound calls per second per account
ACCOUNT_FIELDS = ("name", "account_type", "billing_mode", "cash_credit", "auto_recharge", "state")


def _account_base(base_url: str, auth_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/Account/{auth_id}/"


async def check_plivo(ctx: Context) -> CheckResult:
    settings = ctx.need_settings()
    if not (settings.plivo_auth_id and settings.plivo_auth_token):
        return warn(
            "plivo",
            "no Plivo credentials: status polling from Plivo is disabled (only callbacks and the agent report status)",
            "set PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN (from Secret Manager on Cloud Run)",
        )
    base = _account_base(settings.plivo_api_base_url, settings.plivo_auth_id)
    auth = (settings.plivo_auth_id, settings.plivo_auth_token)
    limits = {
        "dispatch_rate": f"{settings.dispatch_rate}/s (Plivo default CPS {DEFAULT_CPS})",
        "rest_budget": f"{settings.plivo_api_limit} requests / {settings.plivo_api_window} s",
    }
    try:
        response = await ctx.http.get(base, auth=auth, timeout=ctx.timeout_s)
        via = "an account-details read"
        if response.status_code == 404:  # no account endpoint at this base (e.g. a simulator): list one call
            response = await ctx.http.get(base + "Call/", params={"limit": 1}, auth=auth, timeout=ctx.timeout_s)
            via = "a call-list read (no account-details endpoint at this base URL)"
    except httpx.TimeoutException:
        return fail(
            "plivo",
            f"no answer from {settings.plivo_api_base_url} within {ctx.timeout_s:g} s",
            "check egress to the Plivo API (VPC egress all-traffic needs Cloud NAT) and PLIVO_API_BASE_URL",
        )
    except httpx.HTTPError as exc:
        return fail(
            "plivo",
            f"{settings.plivo_api_base_url} unreachable: {summarize(exc)}",
            "check PLIVO_API_BASE_URL and outbound internet access (Cloud NAT when all egress goes through the VPC)",
        )
    code = response.status_code
    if code == 401:
        return fail(
            "plivo",
            f"Plivo rejected the credentials of {settings.plivo_auth_id} (401)",
            "set PLIVO_AUTH_ID/PLIVO_AUTH_TOKEN to the account's values (Plivo console → API keys)",
        )
    if code == 429:
        return warn(
            "plivo",
            "Plivo answered 429: the account's REST budget is spent right now",
            "lower STATUS_CHECK_INTERVAL polling or PLIVO_API_LIMIT so all instances stay under Plivo's limit",
            **limits,
        )
    if code >= 300:
        return fail(
            "plivo",
            f"Plivo answered {code}: {response.text[:120]!r}",
            "check PLIVO_API_BASE_URL and Plivo's status page",
        )
    account: dict[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict):
            account = {k: body[k] for k in ACCOUNT_FIELDS if k in body}
    except ValueError:
        pass
    details = {**limits, **({"account": account} if account else {})}
    if settings.dispatch_rate > DEFAULT_CPS:
        return warn(
            "plivo",
            f"credentials accepted by {via}; DISPATCH_RATE={settings.dispatch_rate}/s exceeds Plivo's default CPS",
            f"ask Plivo to raise the account's CPS, or set DISPATCH_RATE≤{DEFAULT_CPS}: "
            "excess calls wait at Plivo and look stuck in 'initiated'",
            **details,
        )
    return ok("plivo", f"credentials accepted by {via}", **details)
