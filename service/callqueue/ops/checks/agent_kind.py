"""Which kind of agent the queue talks to (status contract, or pipecat's stock example), what that means for
re-sent starts, and whether Plivo's callbacks can reach the queue. The probe dials nobody: it asks the agent's
status route about an id the queue never hands out (clients/agent.py, PROBE_CALL_ID).
"""

from __future__ import annotations

from callqueue.clients.agent import AgentClient
from callqueue.clients.agent_kind import ADD_CALLBACKS, describe
from callqueue.ops.context import Context
from callqueue.ops.verdict import CheckResult, ok, warn

STATUS_CONTRACT_FIX = (
    'implement GET /calls/{call_id} (docs/contracts.md, "Proof before a dial is re-sent") so a lost start can be'
    " settled from the agent's explicit answer, and pass the queue's ring/hangup URLs to Plivo: "
)


async def check_agent_kind(ctx: Context) -> CheckResult:
    settings = ctx.need_settings()
    agent = AgentClient(settings.agent_server_url, ctx.http, ctx.tokens, ctx.timeout_s)
    kind, evidence = await agent.kind()
    details = describe(kind, evidence, settings)
    if kind == "status_contract":
        return ok("agent-kind", "the agent implements the status contract: lost starts are settled from its answer",
                  **details)  # fmt: skip
    if kind == "stock":
        return warn(
            "agent-kind",
            "the agent has no status contract (pipecat's stock example?): Plivo callbacks are not configured, outcomes"
            " come from Plivo polling, and a lost start is re-sent only once Plivo proves it was never placed",
            STATUS_CONTRACT_FIX + ADD_CALLBACKS,
            **details,
        )
    return warn("agent-kind", f"could not tell which kind of agent this is: {evidence}", "check AGENT_SERVER_URL",
                **details)  # fmt: skip
