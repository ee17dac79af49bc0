"""The few gcloud commands the release tool runs, each failing with what to do instead of a stack trace.

Only the steps Terraform cannot do are here: creating the state bucket Terraform keeps its state in, building and
tagging an image, and reading what a service runs. Everything else is in the stacks.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL = "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
# How gcloud says "there is no such thing" (an image, a bucket, an object, a service), lower-cased.
_ABSENT = ("not_found", "not found", "does not exist", "matched no objects", "cannot find service")


class CloudError(RuntimeError):
    """A gcloud step failed or cannot run; the message names the step and the fix."""


class NotFound(CloudError):
    """What was asked for does not exist."""


@dataclass(frozen=True)
class Gcloud:
    binary: str = "gcloud"

    def run(self, *args: str) -> str:
        path = shutil.which(self.binary)
        if path is None:
            raise CloudError(f"gcloud is not installed: {INSTALL}")
        done = subprocess.run([path, *args, "--quiet"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            message = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()
            text = " ".join(line.strip() for line in message[-3:])
            if any(marker in text.lower() for marker in _ABSENT):
                raise NotFound(text)
            raise CloudError(f"gcloud {' '.join(args[:3])} failed: {text}")
        return done.stdout.strip()

    def require_login(self) -> None:
        """gcloud itself (builds, tags) and application-default credentials (Terraform) must both work."""
        try:
            self.run("auth", "print-access-token")
        except NotFound as exc:
            raise CloudError(f"gcloud has no active account ({exc}). Fix: gcloud auth login") from None
        except CloudError as exc:
            if "not installed" in str(exc):
                raise
            raise CloudError(f"gcloud has no usable login ({exc}). Fix: gcloud auth login") from None
        try:
            self.run("auth", "application-default", "print-access-token")
        except CloudError as exc:
            raise CloudError(
                f"no application-default credentials for Terraform ({exc}). Fix: gcloud auth application-default login"
            ) from None

    # --- the state bucket (make bootstrap) -------------------------------------------------------------------

    def enable_services(self, project: str, services: Sequence[str]) -> None:
        self.run("services", "enable", *services, f"--project={project}")

    def bucket_exists(self, bucket: str, project: str) -> bool:
        try:
            self.run("storage", "buckets", "describe", f"gs://{bucket}", f"--project={project}", "--format=value(name)")
        except NotFound:
            return False
        return True

    def create_state_bucket(self, bucket: str, project: str, location: str) -> None:
        """Private from the first second; versioned before the first state is written."""
        self.run(
            "storage", "buckets", "create", f"gs://{bucket}", f"--project={project}", f"--location={location}",
            "--uniform-bucket-level-access", "--public-access-prevention",
        )  # fmt: skip
        self.run("storage", "buckets", "update", f"gs://{bucket}", "--versioning")

    def object_exists(self, url: str) -> bool:
        try:
            return bool(self.run("storage", "ls", url))
        except NotFound:
            return False

    # --- images ---------------------------------------------------------------------------------------------

    def image_digest(self, image: str) -> str | None:
        """The digest `image` (by tag or digest) names in Artifact Registry; None when there is no such image."""
        try:
            digest = self.run(
                "artifacts", "docker", "images", "describe", image, "--format=value(image_summary.digest)"
            )
        except NotFound:
            return None
        return digest or None

    def build(
        self,
        archive: Path,
        *,
        image: str,
        commit: str,
        project: str,
        region: str,
        account: str,
        bucket: str,
        config: Path,
    ) -> None:
        """Cloud Build runs `config` on the uploaded archive as `account` and pushes `image` once."""
        self.run(
            "builds", "submit", str(archive), f"--config={config}", f"--substitutions=_IMAGE={image},_COMMIT={commit}",
            f"--project={project}", f"--region={region}",
            f"--service-account=projects/{project}/serviceAccounts/{account}",
            f"--gcs-source-staging-dir=gs://{bucket}/source",
        )  # fmt: skip

    def add_tag(self, image: str, tag_ref: str) -> None:
        self.run("artifacts", "docker", "tags", "add", image, tag_ref)

    def running_image(self, service: str, project: str, region: str) -> str | None:
        """The image the Cloud Run service's current template names; None when there is no such service."""
        try:
            image = self.run(
                "run", "services", "describe", service, f"--project={project}", f"--region={region}",
                "--format=value(spec.template.spec.containers[0].image)",
            )  # fmt: skip
        except NotFound:
            return None
        return image or None
