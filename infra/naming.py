"""Names and URLs: pure functions, shared by the stacks, the release tool, the tests and the bench."""

from __future__ import annotations

from pathlib import Path

from infra.config import Environment

REPO_ROOT = Path(__file__).resolve().parent.parent
QUEUE_PACKAGE = "callqueue-queue"  # the queue image's name in the registry, the same for every environment
RELEASE_TAG_PREFIX = "release-"  # every recorded digest is tagged release-<env>-<time>; the cleanup policy keeps it
# Import blocks (the foundation adopts the state bucket that `make bootstrap` creates) need Terraform 1.5.
REQUIRED_TERRAFORM = ">= 1.5.0"
# What must be on before Terraform can manage the rest (make bootstrap enables them with gcloud first).
BOOTSTRAP_APIS: tuple[str, ...] = (
    "cloudresourcemanager.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
)


def service_name(env: Environment, role: str) -> str:
    """Cloud Run service name of `role` (queue, webhooks, agent, backend)."""
    return f"{env.config.name_prefix}-{role}"


def service_account_id(env: Environment, role: str) -> str:
    """Account id (6 to 30 characters) of the service account `role` runs as."""
    return f"{env.config.name_prefix}-{role}"[:30]


def deterministic_url(env: Environment, role: str, project_number: str) -> str:
    """https://SERVICE-PROJECTNUMBER.REGION.run.app: known before deployment, so a service can be told its own URL.

    `project_number` is what the stack reads from the project (a Terraform expression), never a typed number.
    """
    return f"https://{service_name(env, role)}-{project_number}.{env.config.region}.run.app"


def public_base_url(env: Environment, project_number: str) -> str:
    """PUBLIC_BASE_URL of the queue AND the webhooks service: the webhooks service's URL, where Plivo calls back.

    Both services must carry the same value: the queue puts it in the callback URLs it gives Plivo, the webhooks
    service rebuilds the URL from it to check the V3 signature, which covers the full public URL.
    """
    return deterministic_url(env, "webhooks", project_number)


def state_prefix(env: Environment, kind: str) -> str:
    """Object prefix of a stack's state in the environment's bucket (kind: services, foundation); never shared."""
    return f"callqueue/{env.name}" if kind == "services" else f"callqueue-foundation/{env.name}"


def queue_image_repository(env: Environment) -> str:
    """Where the queue image lives, without tag or digest."""
    return f"{env.registry.url}/{QUEUE_PACKAGE}"


def queue_image_by_digest(env: Environment, digest: str) -> str:
    return f"{queue_image_repository(env)}@{digest}"


def queue_image_by_tag(env: Environment, tag: str) -> str:
    return f"{queue_image_repository(env)}:{tag}"


def build_account_id() -> str:
    """The service account Cloud Build runs the queue image's build as, in the registry's project."""
    return "callqueue-build"


def build_bucket(project: str) -> str:
    """The bucket `gcloud builds submit` uploads the source archive to (created by the foundation)."""
    return f"{project}-callqueue-build"
