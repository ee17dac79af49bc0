"""The one place where every environment variable of the queue service is named, defaulted and validated.

The infrastructure stacks import the names and the Cloud Run profile from here, so what a stack writes is what
the service reads. Settings are built explicitly by `load_settings` (never at import time) so tests and tools can
load them from any mapping, e.g. the environment block of a synthesized stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

ProfileName = Literal["local", "cloud_run"]


class SettingsError(ValueError):
    """Raised at start-up when a variable is missing or invalid; the message names the variable and the fix."""


@dataclass(frozen=True)
class TimingVariable:
    name: str
    local: int
    cloud_run: int
    minimum: int
    maximum: int
    meaning: str


# The seed's timing profile, one row per variable: (local profile, Cloud Run profile, allowed range).
TIMING_VARIABLES: tuple[TimingVariable, ...] = (
    TimingVariable("INITIAL_STATUS_DELAY", 5, 20, 0, 600, "seconds after the dial before the first status poll"),
    TimingVariable("STATUS_CHECK_INTERVAL", 10, 15, 1, 600, "seconds between status polls"),
    TimingVariable("REQUEST_TIMEOUT", 10, 30, 1, 300, "seconds for each outbound HTTP request"),
    TimingVariable("MAX_STATUS_RETRIES", 2, 3, 0, 10, "retries of one status request (exponential backoff, jitter)"),
    TimingVariable("MAX_CONSECUTIVE_ERRORS", 3, 6, 1, 100, "consecutive failed status checks tolerated"),
    TimingVariable("AUTO_MISS_TIMEOUT", 45, 60, 5, 3600, "seconds without ringing or answer before 'missed'"),
    TimingVariable("SERVICE_TIMEOUT", 300, 300, 10, 3600, "request timeout Cloud Run enforces (max 3600)"),
    TimingVariable(
        "PLIVO_QUEUE_TIMEOUT",
        300,
        600,
        5,
        86400,
        "seconds a call may wait in Plivo's CPS queue (counted from the first check that saw it there); then its"
        " request is deleted at Plivo (DELETE Request) and it ends 'missed' with the reason, freeing its slot",
    ),
)
TIMING_BY_NAME = {v.name: v for v in TIMING_VARIABLES}
CLOUD_RUN_OPTIMIZED = "CLOUD_RUN_OPTIMIZED"


@dataclass(frozen=True)
class PlainVariable:
    name: str
    default: str | None
    meaning: str
    secret: bool = False


# Every other variable the service reads. `None` means "no default": see the meaning for what happens then.
PLAIN_VARIABLES: tuple[PlainVariable, ...] = (
    PlainVariable("PORT", "8080", "port the HTTP server listens on (Cloud Run sets it)"),
    PlainVariable(
        "SERVICE_ROLE",
        "all",
        "'all': API, webhooks and background work; 'webhooks': only Plivo's callbacks and health, no background"
        " work (the public face on Cloud Run, so the API can stay private)",
    ),
    PlainVariable("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis holding the queue and all call state"),
    PlainVariable("REDIS_KEY_PREFIX", "cq", "prefix of every Redis key, to share one Redis between deployments"),
    PlainVariable("AGENT_SERVER_URL", "http://127.0.0.1:7860", "base URL of the voice agent (POST /start)"),
    PlainVariable("BACKEND_URL", "http://127.0.0.1:8000", "base URL of the backend receiving call results"),
    PlainVariable("BACKEND_RESULTS_PATH", "/api/call-results", "path on BACKEND_URL where results are POSTed"),
    PlainVariable("PUBLIC_BASE_URL", "http://127.0.0.1:8080", "URL at which Plivo reaches this service's webhooks"),
    PlainVariable("PLIVO_AUTH_ID", None, "Plivo auth id; without it status is never polled from Plivo", True),
    PlainVariable("PLIVO_AUTH_TOKEN", None, "Plivo auth token; also verifies callback signatures", True),
    PlainVariable("PLIVO_API_BASE_URL", "https://api.plivo.com", "Plivo REST API base (a simulator in tests)"),
    PlainVariable("PLIVO_API_LIMIT", "300", "Plivo REST requests allowed per PLIVO_API_WINDOW, all instances"),
    PlainVariable("PLIVO_API_WINDOW", "5", "seconds of the Plivo REST rate-limit window"),
    PlainVariable("DISPATCH_RATE", "2", "call starts per second across all instances (Plivo's default CPS)"),
    PlainVariable("MAX_CONCURRENT_CALLS", "10", "calls in flight (dispatched, not finished) across all instances"),
    PlainVariable("DISPATCH_WORKERS", "4", "dispatch workers per process"),
    PlainVariable("MAX_DISPATCH_ATTEMPTS", "5", "agent start attempts before a call fails"),
    PlainVariable(
        "DIAL_PROOF_SETTLE",
        "15",
        "seconds Plivo must show no call to the number (two searches this far apart) before a start whose answer was"
        " lost counts as never dialled, when the agent gives no explicit answer (pipecat's stock agent): covers a call"
        " between Plivo's queue and ringing, and a detail record not written yet (docs/contracts.md)",
    ),
    PlainVariable(
        "DIAL_PROOF_TIMEOUT",
        "600",
        "seconds a call whose start answer was lost waits for proof (found at Plivo, or proven absent) before it"
        " becomes `unknown` with the reason; it is never re-dialled without proof",
    ),
    PlainVariable("TRACKER_CONCURRENCY", "200", "status checks one process runs at once"),
    PlainVariable("MAX_BODY_BYTES", "16384", "largest accepted request body"),
    PlainVariable(
        "MAX_BULK_BODY_BYTES",
        "16777216",
        "largest accepted body of a bulk enqueue (POST /api/campaigns/{id}/calls) or suppression list"
        " (POST /api/suppressions)",
    ),
    PlainVariable(
        "CAMPAIGN_RETENTION",
        "604800",
        "seconds a campaign's settings and counts are kept after its last waiting or in-flight call ended (a new"
        " call keeps it); its own clock, apart from CALL_RETENTION: a campaign's counts outlive the calls they count",
    ),
    PlainVariable("AUTH_MODE", "auto", "'auto' (Google ID tokens on Cloud Run), 'id_token' or 'none'"),
    PlainVariable("LOG_LEVEL", "INFO", "Python log level"),
    PlainVariable(
        "LOG_FORMAT", "auto", "'json' (Cloud Logging lines with severity), 'text', or 'auto': json on Cloud Run"
    ),
    PlainVariable(
        "REDIS_CA_CERT",
        None,
        "PEM certificate(s) of the CA that signs the Redis server's TLS certificate (Memorystore's server CA), for a"
        " rediss:// REDIS_URL; unset, the system CAs are used",
    ),
    PlainVariable(
        "REDIS_ALLOW_EVICTION",
        "false",
        "'true' lets the service start against a Redis whose maxmemory-policy is not noeviction (a local Redis you"
        " cannot reconfigure); never on Cloud Run: an evicting Redis drops queued calls, idempotency keys and nonces",
    ),
    PlainVariable(
        "GCE_METADATA_HOST",
        None,
        "host[:port] of the metadata server that issues ID tokens, as Google's client libraries honour it; unset:"
        " metadata.google.internal (tests point it at a simulator)",
    ),
    PlainVariable(
        "MAX_QUEUED_CALLS",
        "50000",
        "calls waiting to be dialled, queued or scheduled (calling hours, not_before, redials), all instances; beyond"
        " it POST /api/calls/queue answers 429 with Retry-After and writes nothing, bulk enqueue refuses the items"
        " that do not fit (all_or_nothing: the whole request) (size Redis for this many calls: bench/results.md)",
    ),
    PlainVariable(
        "CALL_RETENTION",
        "86400",
        "seconds a finished call (record, history, attempts, callbacks, Idempotency-Key or item key, uuid indexes) is"
        " kept after its final status, then expires; longer while a result is still being delivered; a call whose"
        " redial is scheduled is not finished",
    ),
    PlainVariable(
        "CLIENT_HEADER_TIMEOUT",
        "10",
        "seconds a client has to send a request's headers, from connecting or from its previous answer; then the"
        " connection is closed (slow clients cannot hold the public service)",
    ),
    PlainVariable(
        "CLIENT_BODY_TIMEOUT", "15", "seconds a client has to send a request's body once its headers arrived: then 408"
    ),
    PlainVariable(
        "GOOGLE_CLOUD_PROJECT",
        None,
        "project id for the trace field of JSON log lines (`logging.googleapis.com/trace`); unset, lines carry"
        " `trace_id` instead, which Cloud Logging does not link (the stacks set it)",
    ),
    PlainVariable(
        "METRICS_ENABLED",
        "true",
        "serve Prometheus metrics at GET /metrics (API role only) and count what this process does",
    ),
)
PLAIN_BY_NAME = {v.name: v for v in PLAIN_VARIABLES}


@dataclass(frozen=True)
class TimingProfile:
    """Effective timing values and the source of each: 'default', 'profile', or 'override'."""

    name: ProfileName
    reason: str
    initial_status_delay: int
    status_check_interval: int
    request_timeout: int
    max_status_retries: int
    max_consecutive_errors: int
    auto_miss_timeout: int
    service_timeout: int
    plivo_queue_timeout: int
    sources: Mapping[str, str] = field(default_factory=dict)

    def as_env(self) -> dict[str, str]:
        return {v.name: str(getattr(self, v.name.lower())) for v in TIMING_VARIABLES}

    def summary(self) -> str:
        """The seed's one-line start-up banner, with every value."""
        mode = "CLOUD RUN MODE" if self.name == "cloud_run" else "LOCAL MODE"
        return (
            f"{mode}: Delays={self.initial_status_delay}s, Interval={self.status_check_interval}s, "
            f"Timeout={self.request_timeout}s, Retries={self.max_status_retries}, "
            f"ErrorTolerance={self.max_consecutive_errors}, AutoMiss={self.auto_miss_timeout}s, "
            f"ServiceTimeout={self.service_timeout}s ({self.reason})"
        )


@dataclass(frozen=True)
class Settings:
    timing: TimingProfile
    port: int
    service_role: Literal["all", "webhooks"]
    redis_url: str
    redis_key_prefix: str
    agent_server_url: str
    backend_url: str
    backend_results_path: str
    public_base_url: str
    plivo_auth_id: str | None
    plivo_auth_token: str | None
    plivo_api_base_url: str
    plivo_api_limit: int
    plivo_api_window: int
    dispatch_rate: int
    max_concurrent_calls: int
    dispatch_workers: int
    max_dispatch_attempts: int
    tracker_concurrency: int
    max_body_bytes: int
    max_bulk_body_bytes: int
    campaign_retention: int
    auth_mode: Literal["auto", "id_token", "none"]
    log_level: str
    log_format: Literal["auto", "json", "text"]
    on_cloud_run: bool
    max_queued_calls: int
    call_retention: int
    client_header_timeout: int
    client_body_timeout: int
    redis_ca_cert: str | None = None
    redis_allow_eviction: bool = False
    gce_metadata_host: str | None = None
    google_cloud_project: str | None = None
    metrics_enabled: bool = True
    dial_proof_settle: int = 15
    dial_proof_timeout: int = 600

    @property
    def use_id_tokens(self) -> bool:
        return self.auth_mode == "id_token" or (self.auth_mode == "auto" and self.on_cloud_run)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean: use true or false")


def _int(name: str, raw: str, minimum: int, maximum: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a whole number: set it to an integer in [{minimum}, {maximum}]"
        ) from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name}={value} is out of range: set it to an integer in [{minimum}, {maximum}]")
    return value


def _url(name: str, raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SettingsError(f"{name}={raw!r} is not an http(s) URL: set it like https://host[:port]")
    return raw.strip().rstrip("/")


def select_profile(env: Mapping[str, str]) -> tuple[ProfileName, str]:
    """CLOUD_RUN_OPTIMIZED decides when set; otherwise the platform does (Cloud Run sets K_SERVICE)."""
    raw = env.get(CLOUD_RUN_OPTIMIZED)
    if raw is not None and raw.strip() != "":
        chosen = parse_bool(CLOUD_RUN_OPTIMIZED, raw)
        return ("cloud_run" if chosen else "local"), f"{CLOUD_RUN_OPTIMIZED}={raw.strip()}"
    if env.get("K_SERVICE"):
        return "cloud_run", "K_SERVICE is set: running on Cloud Run"
    return "local", "CLOUD_RUN_OPTIMIZED unset and not on Cloud Run"


def load_timing(env: Mapping[str, str]) -> TimingProfile:
    profile, reason = select_profile(env)
    values: dict[str, int] = {}
    sources: dict[str, str] = {}
    for var in TIMING_VARIABLES:
        raw = env.get(var.name)
        if raw is not None and raw.strip() != "":
            values[var.name.lower()] = _int(var.name, raw, var.minimum, var.maximum)
            sources[var.name] = "override"
        else:
            values[var.name.lower()] = var.cloud_run if profile == "cloud_run" else var.local
            sources[var.name] = f"profile:{profile}"
    if values["request_timeout"] >= values["service_timeout"]:
        raise SettingsError(
            f"REQUEST_TIMEOUT={values['request_timeout']} must be below SERVICE_TIMEOUT={values['service_timeout']}:"
            " an outbound request cannot outlive the request that waits for it"
        )
    return TimingProfile(name=profile, reason=reason, sources=sources, **values)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `env` (default: the process environment); raise SettingsError naming the variable."""
    env = os.environ if env is None else env

    def get(name: str) -> str | None:
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            return PLAIN_BY_NAME[name].default
        return raw.strip()

    def req(name: str) -> str:
        value = get(name)
        assert value is not None, name  # every variable read through req() has a default
        return value

    auth_mode = req("AUTH_MODE").lower()
    if auth_mode not in {"auto", "id_token", "none"}:
        raise SettingsError(f"AUTH_MODE={auth_mode!r} is not valid: use auto, id_token or none")
    redis_url = req("REDIS_URL")
    if urlsplit(redis_url).scheme not in {"redis", "rediss", "unix"}:
        raise SettingsError(f"REDIS_URL={redis_url!r} is not a Redis URL: use redis://host:6379/0 or rediss://…")
    redis_ca_cert = _ca_cert(get("REDIS_CA_CERT"), redis_url)
    auth_id, auth_token = get("PLIVO_AUTH_ID"), get("PLIVO_AUTH_TOKEN")
    if bool(auth_id) != bool(auth_token):
        raise SettingsError("PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN must be set together: set both, or neither")
    log_level = req("LOG_LEVEL").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise SettingsError(f"LOG_LEVEL={log_level!r} is not valid: use DEBUG, INFO, WARNING or ERROR")
    log_format = req("LOG_FORMAT").lower()
    if log_format not in {"auto", "json", "text"}:
        raise SettingsError(f"LOG_FORMAT={log_format!r} is not valid: use auto, json or text")
    service_role = req("SERVICE_ROLE").lower()
    if service_role not in {"all", "webhooks"}:
        raise SettingsError(f"SERVICE_ROLE={service_role!r} is not valid: use all or webhooks")
    results_path = req("BACKEND_RESULTS_PATH")
    if not results_path.startswith("/"):
        raise SettingsError(f"BACKEND_RESULTS_PATH={results_path!r} must start with '/'")
    return Settings(
        timing=load_timing(env),
        port=_int("PORT", req("PORT"), 1, 65535),
        service_role=service_role,  # type: ignore[arg-type]  # checked against the literal's values above
        redis_url=redis_url,
        redis_key_prefix=req("REDIS_KEY_PREFIX"),
        agent_server_url=_url("AGENT_SERVER_URL", req("AGENT_SERVER_URL")),
        backend_url=_url("BACKEND_URL", req("BACKEND_URL")),
        backend_results_path=results_path,
        public_base_url=_url("PUBLIC_BASE_URL", req("PUBLIC_BASE_URL")),
        plivo_auth_id=auth_id,
        plivo_auth_token=auth_token,
        plivo_api_base_url=_url("PLIVO_API_BASE_URL", req("PLIVO_API_BASE_URL")),
        plivo_api_limit=_int("PLIVO_API_LIMIT", req("PLIVO_API_LIMIT"), 1, 100_000),
        plivo_api_window=_int("PLIVO_API_WINDOW", req("PLIVO_API_WINDOW"), 1, 3600),
        dispatch_rate=_int("DISPATCH_RATE", req("DISPATCH_RATE"), 1, 1000),
        max_concurrent_calls=_int("MAX_CONCURRENT_CALLS", req("MAX_CONCURRENT_CALLS"), 1, 100_000),
        dispatch_workers=_int("DISPATCH_WORKERS", req("DISPATCH_WORKERS"), 0, 256),
        max_dispatch_attempts=_int("MAX_DISPATCH_ATTEMPTS", req("MAX_DISPATCH_ATTEMPTS"), 1, 50),
        tracker_concurrency=_int("TRACKER_CONCURRENCY", req("TRACKER_CONCURRENCY"), 1, 10_000),
        max_body_bytes=_int("MAX_BODY_BYTES", req("MAX_BODY_BYTES"), 1024, 10_000_000),
        max_bulk_body_bytes=_int("MAX_BULK_BODY_BYTES", req("MAX_BULK_BODY_BYTES"), 1024, 32 * 1024 * 1024),
        campaign_retention=_int("CAMPAIGN_RETENTION", req("CAMPAIGN_RETENTION"), 3600, 366 * 86400),
        auth_mode=auth_mode,  # type: ignore[arg-type]  # checked against the literal's values above
        log_level=log_level,
        log_format=log_format,  # type: ignore[arg-type]  # checked against the literal's values above
        on_cloud_run=bool(env.get("K_SERVICE")),
        redis_ca_cert=redis_ca_cert,
        redis_allow_eviction=parse_bool("REDIS_ALLOW_EVICTION", req("REDIS_ALLOW_EVICTION")),
        gce_metadata_host=get("GCE_METADATA_HOST"),
        max_queued_calls=_int("MAX_QUEUED_CALLS", req("MAX_QUEUED_CALLS"), 1, 10_000_000),
        call_retention=_int("CALL_RETENTION", req("CALL_RETENTION"), 3600, 90 * 86400),
        client_header_timeout=_int("CLIENT_HEADER_TIMEOUT", req("CLIENT_HEADER_TIMEOUT"), 1, 300),
        client_body_timeout=_int("CLIENT_BODY_TIMEOUT", req("CLIENT_BODY_TIMEOUT"), 1, 300),
        google_cloud_project=get("GOOGLE_CLOUD_PROJECT"),
        metrics_enabled=parse_bool("METRICS_ENABLED", req("METRICS_ENABLED")),
        dial_proof_settle=_int("DIAL_PROOF_SETTLE", req("DIAL_PROOF_SETTLE"), 1, 3600),
        dial_proof_timeout=_int("DIAL_PROOF_TIMEOUT", req("DIAL_PROOF_TIMEOUT"), 10, 86400),
    )


_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


def _ca_cert(raw: str | None, redis_url: str) -> str | None:
    """REDIS_CA_CERT only means something with TLS; a value that is not PEM would fail every connection later."""
    if raw is None:
        return None
    if urlsplit(redis_url).scheme != "rediss":
        raise SettingsError(
            "REDIS_CA_CERT is set but REDIS_URL does not use TLS: use a rediss:// URL, or unset REDIS_CA_CERT"
        )
    if _PEM_BEGIN not in raw:
        raise SettingsError(f"REDIS_CA_CERT is not a PEM certificate: it must contain {_PEM_BEGIN}")
    return raw.strip() + "\n"


def cloud_run_timing_env(overrides: Mapping[str, int] | None = None) -> dict[str, str]:
    """The timing block a Cloud Run deployment writes: the profile switch plus every value, overrides applied."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(TIMING_BY_NAME)
    if unknown:
        raise SettingsError(f"unknown timing variable(s) {sorted(unknown)}: use one of {sorted(TIMING_BY_NAME)}")
    env = {CLOUD_RUN_OPTIMIZED: "true"}
    for var in TIMING_VARIABLES:
        env[var.name] = str(overrides.get(var.name, var.cloud_run))
    load_timing(env)  # the same validation the service applies at start-up
    return env
