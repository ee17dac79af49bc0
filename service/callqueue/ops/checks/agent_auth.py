"""Does the deployed agent refuse an anonymous `/start`? It is public (Plivo must reach it), and `/start` dials.

The probe dials nobody: it sends `POST /start` with no token and the body `{}`, which names no phone number. An
agent that checks identity first answers 401 or 403. Any other answer means the body was read without a check: a
400/422 is a validation error that the same request with a phone number would have passed, a 2xx accepted it,
a 5xx failed while processing it. Run only when the queue is deployed (it sends ID tokens, or the agent is a
non-local https URL): a local simulator is the stock agent, which checks nobody.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from callqueue.ops.context import Context
from callqueue.ops.runner import summarize
from callqueue.ops.verdict import CheckResult, fail, ok

START_PATH = "/start"
PROBE_BODY: dict[str, object] = {}  # no dialout_settings: nothing to dial, whatever the agent does with it
CONTRACT_FIX = (
    "make the agent verify the caller's Google ID token on /start before reading the body (audience = the agent's"
    " URL, caller = the queue's service account), answering 401/403 otherwise: docs/contracts.md"
)
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def applies(ctx: Context) -> bool:
    settings = ctx.need_settings()
    url = urlsplit(settings.agent_server_url)
    return settings.use_id_tokens or (url.scheme == "https" and (url.hostname or "") not in _LOCAL_HOSTS)


async def check_agent_auth(ctx: Context) -> CheckResult:
    url = ctx.need_settings().agent_server_url + START_PATH
    details: dict[str, object] = {"url": url, "sent": "POST /start, no Authorization header, body {}"}
    try:
        response = await ctx.http.post(url, json=PROBE_BODY, timeout=ctx.timeout_s)
    except httpx.HTTPError as exc:
        return fail("agent-auth", f"could not probe {url}: {summarize(exc)}", "check AGENT_SERVER_URL", **details)
    code = response.status_code
    details["status"] = code
    if code in (401, 403):
        return ok("agent-auth", f"the agent refuses an anonymous /start ({code})", **details)
    if code in (404, 405):
        return fail(
            "agent-auth",
            f"POST /start answered {code}: AGENT_SERVER_URL does not point at the agent",
            "check AGENT_SERVER_URL",
            **details,
        )
    if 200 <= code < 300:
        found = f"the agent ACCEPTED an anonymous /start ({code}): anyone on the internet can place calls"
    elif code in (400, 422):
        found = (
            f"the agent validated the body of an anonymous /start ({code}) instead of refusing it: the same request"
            " with a phone number would place a call"
        )
    else:
        found = f"the agent answered {code} to an anonymous /start: it processed the request without a token check"
    return fail("agent-auth", found, CONTRACT_FIX, **details)
