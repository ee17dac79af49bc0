"""What a project needs once, before any environment stack: `make bootstrap ENV=…` applies it.

APIs, the state bucket (adopted: `make bootstrap` creates it first), and, in the project that owns the registry,
the registry and the build account. It owns what outlives a deployment, so destroying an environment's stack
never deletes images, state or the registry other environments run from.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import ITerraformDependable, TerraformOutput, TerraformStack
from constructs import Construct

from infra.apis import enable_apis
from infra.build import build_account
from infra.config import Environment
from infra.provider import configure
from infra.registry import registry, registry_protected
from infra.state_bucket import state_bucket


def foundation_stack_name(env: Environment) -> str:
    return f"{env.name}-foundation"


class FoundationStack(TerraformStack):
    def __init__(self, scope: Construct, env: Environment, everyone: Sequence[Environment]) -> None:
        super().__init__(scope, foundation_stack_name(env))
        configure(self, env, "foundation")
        apis: list[ITerraformDependable] = list(enable_apis(self, env))
        bucket = state_bucket(self, env)
        TerraformOutput(self, "state_bucket_name", value=bucket.name)
        if not env.owns_registry:
            TerraformOutput(self, "registry_url", value=env.registry.url)
            return
        consumers = [e for e in everyone if e is not env and e.registry == env.registry]
        repository = registry(self, env, consumers, apis)
        account, sources = build_account(self, env, repository, registry_protected(env, consumers), apis)
        TerraformOutput(self, "registry_url", value=env.registry.url)
        TerraformOutput(self, "build_service_account_email", value=account.email)
        TerraformOutput(self, "build_bucket_name", value=sources.name)
