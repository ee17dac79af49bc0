"""Redis for the queue: a Memorystore instance that cannot evict, leak or forget, or an existing Redis whose URL
is a Secret Manager secret.

Memorystore here: maxmemory-policy noeviction (the default volatile-lru evicts idempotency keys and nonces; the
service refuses to start against it), AUTH and in-transit encryption (the rediss:// URL with the AUTH string goes
into a secret the stack writes, never into a plain variable; the server CA goes to REDIS_CA_CERT), RDB snapshots
when the file asks (required in production), a weekly maintenance window, and Direct VPC egress from the queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_google.cloud_run_v2_service import (
    CloudRunV2ServiceTemplateVpcAccess,
    CloudRunV2ServiceTemplateVpcAccessNetworkInterfaces,
)
from cdktf_cdktf_provider_google.compute_network import ComputeNetwork
from cdktf_cdktf_provider_google.compute_subnetwork import ComputeSubnetwork
from cdktf_cdktf_provider_google.data_google_secret_manager_secret import DataGoogleSecretManagerSecret
from cdktf_cdktf_provider_google.redis_instance import (
    RedisInstance,
    RedisInstanceMaintenancePolicy,
    RedisInstanceMaintenancePolicyWeeklyMaintenanceWindow,
    RedisInstanceMaintenancePolicyWeeklyMaintenanceWindowStartTime,
    RedisInstancePersistenceConfig,
)
from cdktf_cdktf_provider_google.secret_manager_secret import (
    SecretManagerSecret,
    SecretManagerSecretReplication,
    SecretManagerSecretReplicationAuto,
)
from cdktf_cdktf_provider_google.secret_manager_secret_version import SecretManagerSecretVersion
from constructs import Construct

from infra.config import Environment, MemorystoreRedis
from infra.queue_env import SecretRef

REDIS_CONFIGS = {"maxmemory-policy": "noeviction"}
TRANSIT_ENCRYPTION = "SERVER_AUTHENTICATION"


@dataclass(frozen=True)
class RedisWiring:
    """What the queue and the webhooks service need: REDIS_URL's secret, REDIS_CA_CERT, their network path."""

    url: SecretRef
    ca_cert: str | None
    vpc_access: CloudRunV2ServiceTemplateVpcAccess | None
    instance: RedisInstance | None


def redis_for(scope: Construct, env: Environment) -> RedisWiring:
    cfg = env.config
    if not isinstance(cfg.redis, MemorystoreRedis):
        existing = DataGoogleSecretManagerSecret(
            scope, "redis_url_secret", project=cfg.project, secret_id=cfg.redis.url_secret
        )
        return RedisWiring(
            url=SecretRef(existing.secret_id, cfg.redis.url_version), ca_cert=None, vpc_access=None, instance=None
        )
    spec = cfg.redis
    protected = TerraformResourceLifecycle(prevent_destroy=cfg.deletion_protection)
    network = ComputeNetwork(
        scope, "network", project=cfg.project, name=f"{cfg.name_prefix}-vpc", auto_create_subnetworks=False,
        lifecycle=protected,
    )  # fmt: skip
    subnet = ComputeSubnetwork(
        scope,
        "run_subnet",
        project=cfg.project,
        name=f"{cfg.name_prefix}-run-egress",
        region=cfg.region,
        network=network.id,
        ip_cidr_range=spec.subnet_cidr,
        private_ip_google_access=True,
    )
    instance = RedisInstance(
        scope,
        "redis",
        project=cfg.project,
        name=f"{cfg.name_prefix}-redis",
        region=cfg.region,
        tier=spec.tier,
        memory_size_gb=spec.memory_size_gb,
        redis_version=spec.redis_version,
        authorized_network=network.id,
        connect_mode="DIRECT_PEERING",
        redis_configs=REDIS_CONFIGS,
        auth_enabled=True,
        transit_encryption_mode=TRANSIT_ENCRYPTION,
        persistence_config=RedisInstancePersistenceConfig(
            persistence_mode=spec.persistence,
            rdb_snapshot_period=spec.rdb_snapshot_period if spec.persistence == "RDB" else None,
        ),
        maintenance_policy=RedisInstanceMaintenancePolicy(
            weekly_maintenance_window=[
                RedisInstanceMaintenancePolicyWeeklyMaintenanceWindow(
                    day=spec.maintenance_day,
                    start_time=RedisInstanceMaintenancePolicyWeeklyMaintenanceWindowStartTime(
                        hours=spec.maintenance_hour, minutes=0, seconds=0, nanos=0
                    ),
                )
            ]
        ),
        lifecycle=protected,
    )
    secret = SecretManagerSecret(
        scope,
        "redis_url",
        project=cfg.project,
        secret_id=f"{cfg.name_prefix}-redis-url",
        replication=SecretManagerSecretReplication(auto=SecretManagerSecretReplicationAuto()),
    )
    # The AUTH string is in the Redis resource's state anyway (the state bucket is private); it reaches the
    # services only through this secret. A new AUTH string writes a new version, pinned below: a new revision.
    version = SecretManagerSecretVersion(
        scope,
        "redis_url_version",
        secret=secret.id,
        secret_data=f"rediss://:{instance.auth_string}@{instance.host}:{Token.as_string(instance.port)}/0",
    )
    vpc = CloudRunV2ServiceTemplateVpcAccess(
        egress="PRIVATE_RANGES_ONLY",
        network_interfaces=[
            CloudRunV2ServiceTemplateVpcAccessNetworkInterfaces(network=network.name, subnetwork=subnet.name)
        ],
    )
    ca_cert = '${join("", google_redis_instance.redis.server_ca_certs[*].cert)}'  # every CA: rotation adds one
    return RedisWiring(
        url=SecretRef(secret.secret_id, version.version), ca_cert=ca_cert, vpc_access=vpc, instance=instance
    )
