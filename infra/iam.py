"""Identities and access: one service account per service, invokers per environment, secret access.

Least privilege: only the queue's account may call the agent and the backend; the queue's and the webhooks
service's accounts read the secrets their environment references, nobody else does. Public services (the
webhooks service always, the agent and others when the file says `public = true`) get no `allUsers` grant, which
organisation policies often forbid: their Cloud Run invoker check is off (services.py) and the app checks callers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_google.cloud_run_v2_service import CloudRunV2Service
from cdktf_cdktf_provider_google.cloud_run_v2_service_iam_member import CloudRunV2ServiceIamMember
from cdktf_cdktf_provider_google.secret_manager_secret_iam_member import SecretManagerSecretIamMember
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from constructs import Construct

from infra.config import Environment
from infra.naming import service_account_id

ROLES: tuple[str, ...] = ("queue", "webhooks", "agent", "backend")
INVOKER = "roles/run.invoker"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"


def _slug(member: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", member.lower()).strip("_")


def service_accounts(scope: Construct, env: Environment) -> dict[str, ServiceAccount]:
    """Protected from destroy where deletion_protection is true: a recreated account loses every grant on it."""
    return {
        role: ServiceAccount(
            scope,
            f"{role}_sa",
            project=env.config.project,
            account_id=service_account_id(env, role),
            display_name=f"call queue {role} ({env.name})",
            lifecycle=TerraformResourceLifecycle(prevent_destroy=env.config.deletion_protection),
        )
        for role in ROLES
    }


def invokers(
    scope: Construct,
    env: Environment,
    services: Mapping[str, CloudRunV2Service],
    queue_sa: ServiceAccount,
) -> list[CloudRunV2ServiceIamMember]:
    """The queue's account on the agent and the backend, plus each service's `invokers` from the file."""
    cfg = env.config
    wanted: dict[str, list[tuple[str, str]]] = {
        "agent": [("queue_sa", f"serviceAccount:{queue_sa.email}")],
        "backend": [("queue_sa", f"serviceAccount:{queue_sa.email}")],
        "queue": [],
        "webhooks": [],
    }
    for role, svc in (("queue", cfg.queue), ("agent", cfg.agent), ("backend", cfg.backend)):
        wanted[role] += [(_slug(member), member) for member in svc.invokers]
    bindings = []
    for role in ROLES:
        for slug, member in wanted[role]:
            bindings.append(
                CloudRunV2ServiceIamMember(
                    scope,
                    f"{role}_invoker_{slug}",
                    project=cfg.project,
                    location=cfg.region,
                    name=services[role].name,
                    role=INVOKER,
                    member=member,
                )
            )
    return bindings


def secret_readers(
    scope: Construct, env: Environment, accounts: Mapping[str, ServiceAccount], secrets: Mapping[str, str]
) -> list[SecretManagerSecretIamMember]:
    """secretAccessor for each account in `accounts` (by role: the queue, the webhooks service) on each secret in
    `secrets` (by a short name: its id, or the Terraform reference of a secret the stack creates)."""
    return [
        SecretManagerSecretIamMember(
            scope,
            f"{role}_reads_{_slug(name)}",
            project=env.config.project,
            secret_id=secret_id,
            role=SECRET_ACCESSOR,
            member=f"serviceAccount:{account.email}",
        )
        for role, account in accounts.items()
        for name, secret_id in sorted(secrets.items())
    ]
