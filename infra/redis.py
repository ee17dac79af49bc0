"""Redis for the queue: a Memorystore instance in the region reached by Direct VPC egress, or nothing to create
when the environment keeps an existing Redis URL in Secret Manager (the queue's env then references the secret).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_google.cloud_run_v2_service import (
    CloudRunV2ServiceTemplateVpcAccess,
    CloudRunV2ServiceTemplateVpcAccessNetworkInterfaces,
)
from cdktf_cdktf_provider_google.compute_network import ComputeNetwork
from cdktf_cdktf_provider_google.compute_subnetwork import ComputeSubnetwork
from cdktf_cdktf_provider_google.redis_instance import RedisInstance
from constructs import Construct

from infra.config import Environment, MemorystoreRedis


@dataclass(frozen=True)
class RedisWiring:
    """What the queue service needs: the URL expression (None: from a secret) and its network path."""

    url: str | None
    vpc_access: CloudRunV2ServiceTemplateVpcAccess | None
    instance: RedisInstance | None


def redis_for(scope: Construct, env: Environment, depends_on: Sequence[ITerraformDependable]) -> RedisWiring:
    cfg = env.config
    if not isinstance(cfg.redis, MemorystoreRedis):
        return RedisWiring(url=None, vpc_access=None, instance=None)
    spec = cfg.redis
    network = ComputeNetwork(
        scope,
        "network",
        project=cfg.project,
        name=f"{cfg.name_prefix}-vpc",
        auto_create_subnetworks=False,
        depends_on=list(depends_on),
    )
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
        lifecycle=TerraformResourceLifecycle(prevent_destroy=cfg.deletion_protection),
        depends_on=list(depends_on),
    )
    vpc = CloudRunV2ServiceTemplateVpcAccess(
        egress="PRIVATE_RANGES_ONLY",
        network_interfaces=[
            CloudRunV2ServiceTemplateVpcAccessNetworkInterfaces(network=network.name, subnetwork=subnet.name)
        ],
    )
    return RedisWiring(
        url=f"redis://{instance.host}:{Token.as_string(instance.port)}/0", vpc_access=vpc, instance=instance
    )
