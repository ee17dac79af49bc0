"""The environment file model: one TOML file per environment, validated before any provider binding is imported.

Every rule stops synthesis with one line per problem naming the FILE, the KEY and the FIX, so an operator can
repair an environment file without reading this module. Adding an environment is adding a file.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callqueue.settings import TIMING_BY_NAME, SettingsError, cloud_run_timing_env

# Regions where Cloud Run runs (cloud.google.com/run/docs/locations). A region Google adds later goes here.
CLOUD_RUN_REGIONS: frozenset[str] = frozenset(
    {
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-north2",
        "europe-southwest1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "europe-west10",
        "europe-west12",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "northamerica-south1",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
    }
)
MAX_REQUEST_TIMEOUT = 3600  # Cloud Run's ceiling for a request (and so for a websocket, i.e. a phone call)
DEFAULT_REQUEST_TIMEOUT = 300
_SERVICE_TIMEOUT = TIMING_BY_NAME["SERVICE_TIMEOUT"].name
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_PROJECT = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
_MEMBER = re.compile(r"^(user|serviceAccount|group|domain|principal):\S+$")
_EVERYONE = frozenset({"allUsers", "allAuthenticatedUsers"})
_SECRET_ID = r"^[A-Za-z0-9_-]{1,255}$"
_VERSION = r"^[1-9]\d*$"
_VERSION_HELP = 'a version number, e.g. "1": pinned, so every instance reads the same value (docs/infrastructure.md)'


class ConfigError(ValueError):
    """An environment file is unusable; the message has one `FILE: KEY: problem. Fix: …` line per problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_image(value: str) -> str:
    name = value.rsplit("/", 1)[-1]
    if "@sha256:" in name:
        return value
    if ":" not in name:
        raise ValueError(f"image {value!r} has no tag: Terraform would never redeploy it. Fix: add :<version>")
    if name.endswith(":latest"):
        raise ValueError(f"image {value!r} is tagged latest: Terraform never redeploys it. Fix: pin a version tag")
    return value


class _Sizing(_Strict):
    """Placement and sizing every Cloud Run service has."""

    region: str | None = Field(None, description="only to make placement explicit: it must equal `region`")
    cpu: str = Field("1", pattern=r"^(\d+(\.\d+)?|\d+m)$", description='CPU limit, e.g. "1" or "2"')
    memory: str = Field("512Mi", pattern=r"^\d+(Mi|Gi)$", description='memory limit, e.g. "512Mi"')
    min_instances: int = Field(0, ge=0, le=1000)
    max_instances: int = Field(3, ge=1, le=1000)
    concurrency: int = Field(80, ge=1, le=1000, description="requests one instance serves at once")
    timeout_seconds: int = Field(
        DEFAULT_REQUEST_TIMEOUT, ge=1, le=MAX_REQUEST_TIMEOUT, description="Cloud Run request timeout"
    )


class _Service(_Sizing):
    """A service whose callers the file chooses: public, or the IAM members it names (the queue's account on the
    agent and the backend is always added)."""

    public: bool = Field(
        False, description="reachable without a Google token (invoker_iam_disabled): the app checks its callers"
    )
    invokers: tuple[str, ...] = Field((), description='IAM members with roles/run.invoker, e.g. "group:ops@x.com"')

    @field_validator("invokers")
    @classmethod
    def _members(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for member in value:
            if member in _EVERYONE:
                raise ValueError(
                    f"{member!r} as an invoker is a public grant that organisation policies often forbid. Fix: set"
                    " `public = true` instead (Cloud Run's invoker check off; the app verifies its callers)"
                )
            if not _MEMBER.match(member):
                raise ValueError(f"{member!r} is not an IAM member. Fix: use serviceAccount:EMAIL or group:EMAIL")
        return tuple(sorted(set(value)))


class QueueService(_Service):
    """The queue: this repository's image at the digest `releases/<env>.json` records; always-on CPU."""

    min_instances: int = Field(1, ge=1, le=1000, description="the tracker works in the background: keep one up")
    dispatch_rate: int | None = Field(None, ge=1, le=1000, description="call starts per second, all instances")
    max_concurrent_calls: int | None = Field(None, ge=1, le=100_000, description="calls in flight, all instances")


class WebhooksService(_Sizing):
    """The queue image again with SERVICE_ROLE=webhooks: Plivo's public callback endpoint, request-driven CPU.

    Always public (Plivo sends no Google token; the app checks each request's Plivo V3 signature): the stack turns
    Cloud Run's invoker check off (invoker_iam_disabled), so there is no `public` or `invokers` key. Scales to
    zero by default: a cold start delays one callback by seconds, and the queue's safety-net polling covers any
    callback that is lost.
    """

    max_instances: int = Field(2, ge=1, le=1000, description="callbacks are tiny: a few instances carry them")


class ImageService(_Service):
    """A service deployed from an image built elsewhere (the agent, the backend). An Artifact Registry image is
    read at plan time (the plan fails while it is not pushed) and deployed by the digest its tag names."""

    image: str = Field(description="full image reference with a version tag or digest")
    cpu_idle: bool = Field(True, description="false bills instance-based and keeps CPU between requests")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return _check_image(value)


class AgentService(ImageService):
    longest_call_seconds: int = Field(
        ge=1, le=MAX_REQUEST_TIMEOUT, description="longest phone call the agent must carry, in seconds"
    )


Weekday = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


class MemorystoreRedis(_Strict):
    """Create a Memorystore instance in the region, reached by Direct VPC egress from the queue: noeviction, AUTH
    and TLS always; RDB snapshots and STANDARD_HA required where `deletion_protection` is true (production)."""

    mode: Literal["memorystore"]
    region: str | None = Field(None, description="only to make placement explicit: it must equal `region`")
    tier: Literal["BASIC", "STANDARD_HA"] = "BASIC"
    memory_size_gb: int = Field(1, ge=1, le=300)
    redis_version: str = Field("REDIS_7_2", pattern=r"^REDIS_\d+_\d+$")
    subnet_cidr: str = Field("10.8.0.0/26", description="subnet for Direct VPC egress, /26 or larger")
    persistence: Literal["RDB", "DISABLED"] = Field("DISABLED", description="RDB: snapshots survive a restart")
    rdb_snapshot_period: Literal["ONE_HOUR", "SIX_HOURS", "TWELVE_HOURS", "TWENTY_FOUR_HOURS"] = "ONE_HOUR"
    maintenance_day: Weekday = Field("SUNDAY", description="weekly maintenance window: day (UTC)")
    maintenance_hour: int = Field(3, ge=0, le=23, description="weekly maintenance window: start hour (UTC)")

    @field_validator("subnet_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a CIDR range. Fix: use e.g. 10.8.0.0/26") from None
        if net.version != 4 or net.prefixlen > 26:
            raise ValueError(f"{value} is too small for Direct VPC egress. Fix: use an IPv4 /26 or larger")
        return value


class SecretRedis(_Strict):
    """Use an existing Redis whose URL is stored in a Secret Manager secret (never in this file)."""

    mode: Literal["secret"]
    url_secret: str = Field(pattern=_SECRET_ID, description="Secret Manager secret id of REDIS_URL")
    url_version: str = Field(pattern=_VERSION, description=_VERSION_HELP)


class PlivoSecrets(_Strict):
    """Secret Manager secrets holding the Plivo credentials, at pinned versions; the values never enter Terraform."""

    auth_id_secret: str = Field("plivo-auth-id", pattern=_SECRET_ID)
    auth_id_version: str = Field(pattern=_VERSION, description=_VERSION_HELP)
    auth_token_secret: str = Field("plivo-auth-token", pattern=_SECRET_ID)
    auth_token_version: str = Field(pattern=_VERSION, description=_VERSION_HELP)


class Registry(_Strict):
    """The Artifact Registry repository the queue image is pushed to once and every environment runs it from.

    Owned by the foundation stack of the environment whose project it is in (`make bootstrap`); an environment
    in another project names that project here and reads the same images, so production runs the digest staging
    ran. `keep_versions` and `delete_after_days` are the owner's cleanup policy for the queue image.
    """

    project: str | None = Field(
        None, pattern=_PROJECT, description="project of the registry; unset: this environment's project"
    )
    location: str | None = Field(
        None, pattern=r"^[a-z]+(-[a-z]+\d+)?$", description="region of the registry; unset: `region`"
    )
    repository: str = Field("callqueue", pattern=r"^[a-z][a-z0-9-]{0,62}$")
    keep_versions: int = Field(10, ge=1, le=100, description="queue image versions always kept")
    delete_after_days: int = Field(30, ge=1, le=3650, description="older versions are deleted unless kept")


class Monitoring(_Strict):
    """Dashboard and alert policies of the environment (infra/monitoring.py), and the metrics collector."""

    notification_channels: tuple[str, ...] = Field(
        (), description="display names of existing Cloud Monitoring notification channels that alerts notify"
    )
    oldest_queued_minutes: int = Field(10, ge=1, le=1440, description="alert: a call queued longer than this")
    stuck_in_flight_minutes: int = Field(
        70, ge=5, le=1440, description="alert: a call holding its slot longer than this (longest call + margin)"
    )
    failure_ratio: float = Field(
        0.2, gt=0, le=1, description="alert: failed+unknown+missed over all outcomes in 15 min above this"
    )
    failure_min_calls: int = Field(10, ge=1, description="…counted only once this many calls ended in the 15 min")
    heartbeat_minutes: int = Field(3, ge=1, le=60, description="alert: no dispatch worker heartbeat for this long")
    redis_memory_ratio: float = Field(0.8, gt=0, le=1, description="alert: Redis memory used above this share")
    scrape_interval_seconds: int = Field(30, ge=10, le=300, description="how often the collector scrapes /metrics")
    collector_image: str = Field(
        "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0",
        description="the Managed Service for Prometheus sidecar for Cloud Run, pinned",
    )

    @field_validator("collector_image")
    @classmethod
    def _collector(cls, value: str) -> str:
        return _check_image(value)


class EnvironmentConfig(_Strict):
    """What one `environments/<name>.toml` holds."""

    project: str = Field(pattern=_PROJECT, description="Google Cloud project id")
    region: str = Field(description="the one region of every service and of Redis")
    state_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", description="GCS bucket of state")
    deletion_protection: bool = Field(description="true in production: Terraform refuses to delete services")
    name_prefix: str = Field("callqueue", pattern=r"^[a-z][a-z0-9-]{0,20}$", description="prefix of every name")
    registry: Registry = Field(default_factory=Registry)  # type: ignore[arg-type]  # all fields default
    timing: dict[str, int] = Field(default_factory=dict, description="timing overrides, by variable name")
    queue: QueueService = Field(default_factory=QueueService)  # type: ignore[arg-type]  # all fields default
    webhooks: WebhooksService = Field(default_factory=WebhooksService)  # type: ignore[arg-type]  # all fields default
    agent: AgentService
    backend: ImageService
    redis: Annotated[MemorystoreRedis | SecretRedis, Field(discriminator="mode")]
    plivo: PlivoSecrets
    monitoring: Monitoring = Field(default_factory=Monitoring)  # type: ignore[arg-type]  # all fields default

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in CLOUD_RUN_REGIONS:
            raise ValueError(
                f"{value!r} is not a Cloud Run region. Fix: use one of {', '.join(sorted(CLOUD_RUN_REGIONS))}"
            )
        return value

    @field_validator("timing")
    @classmethod
    def _timing(cls, value: dict[str, int]) -> dict[str, int]:
        for name in value:
            if name == _SERVICE_TIMEOUT:
                raise ValueError(f"{name} is the queue's request timeout. Fix: set queue.timeout_seconds instead")
            if name not in TIMING_BY_NAME:
                raise ValueError(f"unknown timing variable {name!r}. Fix: use one of {sorted(TIMING_BY_NAME)}")
        return dict(sorted(value.items()))


@dataclass(frozen=True)
class Environment:
    """A validated environment: its name (the file's stem), where it came from, and its settings."""

    name: str
    source: str
    config: EnvironmentConfig

    def timing_overrides(self) -> dict[str, int]:
        """Overrides for `cloud_run_timing_env`: SERVICE_TIMEOUT is always the queue's request timeout."""
        return {**self.config.timing, _SERVICE_TIMEOUT: self.config.queue.timeout_seconds}

    def webhooks_timing_overrides(self) -> dict[str, int]:
        """The same timing as the queue (its webhook handler schedules the next checks), with SERVICE_TIMEOUT the
        webhooks service's own request timeout."""
        return {**self.config.timing, _SERVICE_TIMEOUT: self.config.webhooks.timeout_seconds}

    @property
    def registry(self) -> RegistryAddress:
        reg = self.config.registry
        return RegistryAddress(reg.project or self.config.project, reg.location or self.config.region, reg.repository)

    @property
    def owns_registry(self) -> bool:
        """True when the registry is in this environment's project: its foundation stack creates it."""
        return self.registry.project == self.config.project


@dataclass(frozen=True)
class RegistryAddress:
    project: str
    location: str
    repository: str

    @property
    def url(self) -> str:
        return f"{self.location}-docker.pkg.dev/{self.project}/{self.repository}"


_SCALARS = frozenset({"project", "region", "state_bucket", "deletion_protection"})


_RETIRED = {
    "project_number": "the stacks read it from the project (data google_project)",
    "queue_image": "the queue runs the digest in releases/<env>.json (make image, make promote, make rollback)",
    "artifact_repository": "use `[registry] repository = …`",
}


def _dotted(loc: Iterable[int | str]) -> str:
    parts = [str(p) for p in loc if p not in ("memorystore", "secret")]  # the redis union's tags
    return ".".join(parts) or "(file)"


def _fix(error: Mapping[str, Any], key: str) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden" and key in ("webhooks.invokers", "webhooks.public"):
        return f"remove `{key}`: the webhooks service is always public (invoker check off), Plivo's signature guards it"
    if kind == "extra_forbidden" and key in ("project_number", "queue_image", "artifact_repository"):
        return f"remove `{key}`: {_RETIRED[key]}"
    if kind == "string_pattern_mismatch" and key.endswith("_version"):
        return f'set `{key}` to a version number, e.g. "1" (not "latest": every instance must read the same value)'
    if kind == "missing" and key.endswith("_version"):
        return f'add `{key} = "1"` (the secret version to read; docs/infrastructure.md, "Secrets and rotation")'

    if kind == "extra_forbidden":
        return f"remove `{key}` (misspelt? see docs/infrastructure.md for the keys)"
    if kind == "missing":
        return f"add `{key} = …`" if "." in key or key in _SCALARS else f"add a `[{key}]` table"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        op = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "?")
        why = " (Cloud Run's maximum request timeout)" if key.endswith("timeout_seconds") and op == "<=" else ""
        return f"set `{key}` {op} {bound}{why}"
    if kind == "string_pattern_mismatch":
        return f"set `{key}` to match {ctx.get('pattern')}"
    if kind == "value_error":
        return "see above"
    return f"give `{key}` a valid value"


def _messages(source: str, exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        key = _dotted(error["loc"])
        msg = str(error["msg"]).removeprefix("Value error, ")
        fix = _fix(error, key)
        lines.append(f"{source}: {key}: {msg}" + ("" if fix == "see above" else f". Fix: {fix}"))
    return lines


def _rules(source: str, env: Environment) -> list[str]:
    """Rules across keys, each reported against the key to change."""
    cfg = env.config
    problems = []
    placed: list[tuple[str, str | None]] = [
        ("queue.region", cfg.queue.region),
        ("webhooks.region", cfg.webhooks.region),
        ("agent.region", cfg.agent.region),
        ("backend.region", cfg.backend.region),
    ]
    if isinstance(cfg.redis, MemorystoreRedis):
        placed.append(("redis.region", cfg.redis.region))
    for key, region in placed:
        if region is not None and region != cfg.region:
            problems.append(
                f"{source}: {key}: {region!r} is outside the environment's region {cfg.region!r}: every service"
                f' runs in the one region. Fix: set `{key} = "{cfg.region}"` or remove it'
            )
    agent = cfg.agent
    if agent.timeout_seconds < agent.longest_call_seconds:
        problems.append(
            f"{source}: agent.timeout_seconds: {agent.timeout_seconds} s is shorter than agent.longest_call_seconds"
            f" ({agent.longest_call_seconds} s): Cloud Run cuts the agent's websocket, i.e. the call, at its request"
            f" timeout. Fix: set `agent.timeout_seconds` >= {agent.longest_call_seconds} (at most"
            f" {MAX_REQUEST_TIMEOUT})"
        )
    sized: tuple[tuple[str, _Sizing], ...] = (
        ("queue", cfg.queue), ("webhooks", cfg.webhooks), ("agent", cfg.agent), ("backend", cfg.backend),
    )  # fmt: skip
    for name, svc in sized:
        if svc.min_instances > svc.max_instances:
            problems.append(
                f"{source}: {name}.min_instances: {svc.min_instances} exceeds {name}.max_instances"
                f" ({svc.max_instances}). Fix: raise `{name}.max_instances` or lower `{name}.min_instances`"
            )
    if cfg.deletion_protection and isinstance(cfg.redis, MemorystoreRedis):
        if cfg.redis.tier != "STANDARD_HA":
            problems.append(
                f"{source}: redis.tier: {cfg.redis.tier!r} has no replica: a zone outage or a maintenance restart"
                ' loses the queue where deletion_protection is true (production). Fix: set `redis.tier = "STANDARD_HA"`'
            )
        if cfg.redis.persistence != "RDB":
            problems.append(
                f"{source}: redis.persistence: {cfg.redis.persistence!r} loses every accepted call when the instance"
                ' restarts, where deletion_protection is true (production). Fix: set `redis.persistence = "RDB"`'
            )
    try:
        cloud_run_timing_env(env.timing_overrides())
    except SettingsError as exc:
        problems.append(f"{source}: timing: {exc}. Fix: change `timing` or `queue.timeout_seconds`")
    else:  # the same timing with the webhooks service's own SERVICE_TIMEOUT
        try:
            cloud_run_timing_env(env.webhooks_timing_overrides())
        except SettingsError as exc:
            problems.append(
                f"{source}: webhooks.timeout_seconds: {exc}. Fix: raise `webhooks.timeout_seconds` (default"
                f" {DEFAULT_REQUEST_TIMEOUT})"
            )
    return problems


def validate_environment(name: str, source: str, data: Mapping[str, Any]) -> Environment:
    """Validate parsed file content; raise ConfigError listing every problem with file, key and fix."""
    if not _ENV_NAME.match(name):
        raise ConfigError(
            f"{source}: (file name): {name!r} is not a valid environment name. Fix: rename the file to"
            " lowercase letters, digits and dashes, e.g. staging.toml"
        )
    try:
        cfg = EnvironmentConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError("\n".join(_messages(source, exc))) from None
    env = Environment(name=name, source=source, config=cfg)
    problems = _rules(source, env)
    if problems:
        raise ConfigError("\n".join(problems))
    return env


def load_environment(path: Path, root: Path | None = None) -> Environment:
    """Read and validate one environment file; the messages name it relative to `root` when possible."""
    source = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: (file): not valid TOML ({exc}). Fix: correct the syntax") from None
    return validate_environment(path.stem, source, data)


def load_environments(directory: Path, root: Path | None = None) -> list[Environment]:
    """Every `*.toml` in `directory`, sorted by name; all files are checked before any error is raised."""
    envs, problems = [], []
    for path in sorted(directory.glob("*.toml")):
        try:
            envs.append(load_environment(path, root))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    if not envs:
        raise ConfigError(f"{directory}: no environment files. Fix: add e.g. {directory}/staging.toml")
    problems = _across(envs)
    if problems:
        raise ConfigError("\n".join(problems))
    return envs


def _across(envs: Sequence[Environment]) -> list[str]:
    """Rules between files: one project per environment (each has its own foundation), and a registry in another
    environment's project must be the one that environment owns."""
    problems = []
    by_project: dict[str, Environment] = {}
    for env in envs:
        other = by_project.setdefault(env.config.project, env)
        if other is not env:
            problems.append(
                f"{env.source}: project: {env.config.project!r} is also {other.source}'s project: each environment"
                " has its own project (its own foundation: state bucket, registry, build account). Fix: use another"
                " project"
            )
    for env in envs:
        if env.owns_registry:
            continue
        owner = by_project.get(env.registry.project)
        if owner is None:
            problems.append(
                f"{env.source}: registry.project: {env.registry.project!r} is no environment's project, so no"
                " foundation creates that registry or lets this project read it. Fix: name the project of the"
                " environment that builds the image (e.g. staging's), or remove `registry.project`"
            )
        elif owner.registry != env.registry:
            problems.append(
                f"{env.source}: registry: {env.registry.url} is not the registry {owner.source} owns"
                f" ({owner.registry.url}). Fix: set `registry.location` and `registry.repository` as {owner.source}"
                " has them"
            )
    return problems
