"""The environment blocks of the queue and of its webhooks twin, composed from `callqueue.settings` so infra
never retypes a name.

Pure data (no provider bindings): a list of `EnvEntry`, each either a plain value or a Secret Manager reference.
A variable the settings module marks secret can only be given as a reference; the stack renders the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callqueue.settings import PLAIN_BY_NAME, cloud_run_timing_env
from infra.config import Environment
from infra.naming import public_base_url

# SERVICE_ROLE values (callqueue.settings.Settings.service_role): the queue does everything, its twin only
# answers Plivo's callbacks and health checks.
QUEUE_ROLE = "all"
WEBHOOKS_ROLE = "webhooks"


@dataclass(frozen=True)
class SecretRef:
    secret: str
    version: str


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str | None = None
    secret: SecretRef | None = None


def _var(name: str) -> str:
    """The variable's name as the settings module declares it; a name it does not know fails here, not in prod."""
    return PLAIN_BY_NAME[name].name


def queue_env(
    env: Environment,
    *,
    agent_uri: str,
    backend_uri: str,
    project_number: str,
    redis_url: SecretRef,
    redis_ca_cert: str | None,
) -> list[EnvEntry]:
    """Every variable the stack sets on the queue, sorted by name.

    `agent_uri`, `backend_uri` and `project_number` are Terraform references (the other services' `uri`, the
    project's number); `redis_url` is the secret holding REDIS_URL (with the AUTH string, so never plain), and
    `redis_ca_cert` the server CA expression of a Memorystore instance with TLS.
    """
    cfg = env.config
    plain: dict[str, str] = dict(cloud_run_timing_env(env.timing_overrides()))
    plain[_var("AGENT_SERVER_URL")] = agent_uri
    plain[_var("BACKEND_URL")] = backend_uri
    plain[_var("SERVICE_ROLE")] = QUEUE_ROLE
    # The webhooks service's URL: the queue itself is private.
    plain[_var("PUBLIC_BASE_URL")] = public_base_url(env, project_number)
    plain[_var("GOOGLE_CLOUD_PROJECT")] = cfg.project  # JSON log lines link their call's trace in this project
    if cfg.queue.dispatch_rate is not None:
        plain[_var("DISPATCH_RATE")] = str(cfg.queue.dispatch_rate)
    if cfg.queue.max_concurrent_calls is not None:
        plain[_var("MAX_CONCURRENT_CALLS")] = str(cfg.queue.max_concurrent_calls)
    if redis_ca_cert is not None:
        plain[_var("REDIS_CA_CERT")] = redis_ca_cert
    secrets = {
        _var("PLIVO_AUTH_ID"): SecretRef(cfg.plivo.auth_id_secret, cfg.plivo.auth_id_version),
        _var("PLIVO_AUTH_TOKEN"): SecretRef(cfg.plivo.auth_token_secret, cfg.plivo.auth_token_version),
        _var("REDIS_URL"): redis_url,
    }
    leaked = sorted(n for n in plain if n in PLAIN_BY_NAME and PLAIN_BY_NAME[n].secret)
    assert not leaked, f"secret variables must come from Secret Manager, never plain: {leaked}"
    entries = [EnvEntry(name, value=value) for name, value in plain.items()]
    entries += [EnvEntry(name, secret=ref) for name, ref in secrets.items()]
    return sorted(entries, key=lambda e: e.name)


def _shared() -> frozenset[str]:
    """What the webhooks service takes from the queue's block, entry for entry: Redis (same store, same keys), the
    Plivo credentials (the token checks signatures; the settings want id and token together) and PUBLIC_BASE_URL
    (the signature covers the full public URL, so both must agree). REDIS_CA_CERT goes with REDIS_URL; both services'
    log lines link the same traces (GOOGLE_CLOUD_PROJECT)."""
    names = (
        "REDIS_URL",
        "REDIS_CA_CERT",
        "REDIS_KEY_PREFIX",
        "PLIVO_AUTH_ID",
        "PLIVO_AUTH_TOKEN",
        "PUBLIC_BASE_URL",
        "GOOGLE_CLOUD_PROJECT",
    )
    return frozenset(_var(name) for name in names)


def webhooks_env(env: Environment, queue_entries: Sequence[EnvEntry]) -> list[EnvEntry]:
    """The webhooks service's block: SERVICE_ROLE=webhooks, the queue's timing profile with its own request timeout
    as SERVICE_TIMEOUT (its handler schedules the next status checks with that profile), and the shared entries."""
    shared = _shared()
    plain: dict[str, str] = dict(cloud_run_timing_env(env.webhooks_timing_overrides()))
    plain[_var("SERVICE_ROLE")] = WEBHOOKS_ROLE
    entries = [EnvEntry(name, value=value) for name, value in plain.items()]
    entries += [e for e in queue_entries if e.name in shared]
    missing = {_var(n) for n in ("REDIS_URL", "PLIVO_AUTH_TOKEN", "PUBLIC_BASE_URL")} - {e.name for e in entries}
    assert not missing, f"the webhooks service cannot work without {sorted(missing)}"
    return sorted(entries, key=lambda e: e.name)
