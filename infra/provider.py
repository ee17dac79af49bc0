"""What every stack starts with: the Google provider with default labels, GCS state, and the Terraform it needs."""

from __future__ import annotations

from typing import Literal

from cdktf import GcsBackend, TerraformStack
from cdktf_cdktf_provider_google.provider import GoogleProvider

from infra.config import Environment
from infra.naming import REQUIRED_TERRAFORM, state_prefix

StackKind = Literal["services", "foundation"]


def labels(env: Environment, kind: StackKind) -> dict[str, str]:
    """Every labelled resource of the stack carries these (provider default_labels): whose, which, from where.

    Keys use underscores: cdktf rewrites dashes in provider-block map keys to underscores (`managed-by` came out
    as `managed_by`), so a dashed key here would not be the label Google gets; a test compares with the JSON.
    """
    return {"app": "callqueue", "environment": env.name, "stack": kind, "managed_by": "cdktf"}


def configure(stack: TerraformStack, env: Environment, kind: StackKind) -> GoogleProvider:
    cfg = env.config
    provider = GoogleProvider(stack, "google", project=cfg.project, region=cfg.region, default_labels=labels(env, kind))
    GcsBackend(stack, bucket=cfg.state_bucket, prefix=state_prefix(env, kind))
    stack.add_override("terraform.required_version", REQUIRED_TERRAFORM)
    return provider
