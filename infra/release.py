"""`python -m infra.release`: the steps around the stacks that Terraform cannot take (the Makefile calls them).

- `bootstrap ENV`: enables the APIs Terraform needs to start, creates the private, versioned state bucket if it
  is missing; `make bootstrap` then applies the foundation stack.
- `image ENV`: builds the queue image of HEAD (clean tree only) once, pushes it under its content tag, and
  records its digest in `releases/ENV.json` (committed). Nothing is built when the registry already has the tag.
- `promote FROM TO`: records for TO the digest FROM runs (checked against the live FROM service).
- `rollback ENV DIGEST`: records for ENV a digest an earlier record named.
- `preflight ENV`: what `make deploy` needs before calling Terraform: tools, credentials, foundation, record.

Every recorded digest is also tagged `release-ENV-<UTC time>` in the registry, which its cleanup policy keeps.
Errors end in one message naming the fix and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from infra.config import ConfigError, Environment, load_environments
from infra.gcloud import CloudError, Gcloud
from infra.naming import (
    BOOTSTRAP_APIS,
    RELEASE_TAG_PREFIX,
    REPO_ROOT,
    REQUIRED_TERRAFORM,
    build_account_id,
    build_bucket,
    queue_image_by_digest,
    queue_image_by_tag,
    queue_image_repository,
    service_name,
    state_prefix,
)
from infra.releases import (
    DIGEST_PATTERN,
    RELEASES_DIR,
    Release,
    ReleaseError,
    how_to_release,
    read_release,
    release_path,
    write_release,
)
from infra.source import SourceError, archive, content_tag, git, head_commit, require_clean

CLOUDBUILD_CONFIG = REPO_ROOT / "infra" / "cloudbuild.yaml"
MIN_TERRAFORM = (1, 5)


class ReleaseFailure(RuntimeError):
    """One step cannot go on; the message says why and what to do."""


class Releaser:
    def __init__(
        self,
        envs: Sequence[Environment],
        root: Path = REPO_ROOT,
        releases_dir: Path = RELEASES_DIR,
        cloud: Gcloud | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    ) -> None:
        self.envs = {e.name: e for e in envs}
        self.root = root
        self.releases_dir = releases_dir
        self.cloud = cloud or Gcloud()
        self.now = now
        self.say = say

    def env(self, name: str) -> Environment:
        if name not in self.envs:
            known = ", ".join(sorted(self.envs))
            raise ReleaseFailure(f"no environments/{name}.toml. Fix: use one of {known}")
        return self.envs[name]

    # --- make bootstrap --------------------------------------------------------------------------------------

    def bootstrap(self, name: str) -> None:
        env = self.env(name)
        cfg = env.config
        self.cloud.require_login()
        self.say(f"enabling {', '.join(BOOTSTRAP_APIS)} in {cfg.project} (the foundation enables the rest)")
        self.cloud.enable_services(cfg.project, BOOTSTRAP_APIS)
        if self.cloud.bucket_exists(cfg.state_bucket, cfg.project):
            self.say(f"state bucket gs://{cfg.state_bucket} exists: the foundation adopts it as it is")
        else:
            self.say(f"creating gs://{cfg.state_bucket} in {cfg.region}: uniform access, public access prevented")
            self.cloud.create_state_bucket(cfg.state_bucket, cfg.project, cfg.region)

    # --- make image ------------------------------------------------------------------------------------------

    def image(self, name: str) -> Release:
        env = self.env(name)
        require_clean(self.root)
        commit = head_commit(self.root)
        tag = content_tag(self.root, commit)
        by_tag = queue_image_by_tag(env, tag)
        self.cloud.require_login()
        digest = self.cloud.image_digest(by_tag)
        if digest is not None:
            self.say(f"{by_tag} exists ({digest}): the image inputs are unchanged since it was built, nothing to build")
            earlier = self._recorded(digest)
            if earlier is not None:  # the record of the build names the commit it was built from
                commit = earlier.commit
        else:
            digest = self._build(env, commit, tag, by_tag)
        release = Release(digest=digest, content_tag=tag, commit=commit, source=f"built from {commit[:12]}")
        self._record(env, release)
        return release

    def _build(self, env: Environment, commit: str, tag: str, by_tag: str) -> str:
        address = env.registry
        account = f"{build_account_id()}@{address.project}.iam.gserviceaccount.com"
        self.say(f"building {by_tag} from {commit[:12]} with Cloud Build in {address.project} (a few minutes)")
        with tempfile.TemporaryDirectory(prefix="callqueue-image-") as tmp:
            context = archive(self.root, commit, Path(tmp) / f"callqueue-{tag}.tar.gz")
            self.cloud.build(
                context, image=by_tag, commit=commit, project=address.project, region=address.location,
                account=account, bucket=build_bucket(address.project), config=CLOUDBUILD_CONFIG,
            )  # fmt: skip
        digest = self.cloud.image_digest(by_tag)
        if digest is None:
            raise ReleaseFailure(f"the build finished but {by_tag} is not in the registry: read the build's log")
        return digest

    # --- make promote ----------------------------------------------------------------------------------------

    def promote(self, source_name: str, target_name: str) -> Release:
        source, target = self.env(source_name), self.env(target_name)
        if source is target:
            raise ReleaseFailure("FROM and TO are the same environment. Fix: make promote FROM=staging TO=production")
        if source.registry != target.registry:
            raise ReleaseFailure(
                f"{target.source} runs images from {target.registry.url}, {source.source} from"
                f" {source.registry.url}: one digest cannot be in both. Fix: set [registry] project (and location,"
                f" repository) in {target.source} to {source.name}'s registry"
            )
        release = self._release_of(source)
        expected = queue_image_by_digest(source, release.digest)
        self.cloud.require_login()
        running = self.cloud.running_image(service_name(source, "queue"), source.config.project, source.config.region)
        if running is None:
            raise ReleaseFailure(f"{source.name} runs no queue service yet. Fix: make deploy ENV={source.name}")
        if running != expected:
            raise ReleaseFailure(
                f"{source.name} runs {running}, but {release_path(source.name, self.releases_dir).name} records"
                f" {expected}: promote only what {source.name} runs. Fix: make deploy ENV={source.name}, check it,"
                " then promote"
            )
        promoted = Release(
            digest=release.digest,
            content_tag=release.content_tag,
            commit=release.commit,
            source=f"promoted from {source.name} (built from {release.commit[:12]})",
        )
        self._record(target, promoted)
        return promoted

    # --- make rollback ---------------------------------------------------------------------------------------

    def rollback(self, name: str, digest: str) -> Release:
        env = self.env(name)
        if not re.match(DIGEST_PATTERN, digest):
            raise ReleaseFailure(f"{digest!r} is not an image digest. Fix: DIGEST=sha256:<64 hex digits>")
        earlier = self._recorded(digest)
        if earlier is None:
            raise ReleaseFailure(
                f"no release record in this repository's history names {digest}, so nothing says which commit it"
                " is. Fix: pick a digest from `git log -p releases/`"
            )
        self.cloud.require_login()
        if self.cloud.image_digest(queue_image_by_digest(env, digest)) is None:
            raise ReleaseFailure(
                f"{queue_image_repository(env)} has no {digest} (deleted by the cleanup policy?). Fix: rebuild commit"
                f" {earlier.commit[:12]} (git checkout {earlier.commit[:12]} && make image ENV={name})"
            )
        rolled = Release(
            digest=digest,
            content_tag=earlier.content_tag,
            commit=earlier.commit,
            source=f"rollback to the image built from {earlier.commit[:12]}",
        )
        self._record(env, rolled)
        return rolled

    def _recorded(self, digest: str) -> Release | None:
        """The first release record in git history (any environment) that names `digest`."""
        relative = self.releases_dir.relative_to(self.root).as_posix()
        for commit in git(self.root, "log", "--format=%H", f"-S{digest}", "--", relative).split():
            for path in git(self.root, "ls-tree", "--name-only", commit, f"{relative}/").split():
                try:
                    release = Release.model_validate(json.loads(git(self.root, "show", f"{commit}:{path}")))
                except (ValueError, SourceError):
                    continue
                if release.digest == digest:
                    return release
        return None

    # --- make deploy -----------------------------------------------------------------------------------------

    def preflight(self, name: str) -> None:
        env = self.env(name)
        self._release_of(env)
        _require_terraform()
        if shutil.which("npx") is None:
            raise ReleaseFailure(
                "npx is not installed: the cdktf CLI runs through it. Fix: install Node.js 20 or newer"
            )
        self.cloud.require_login()
        foundation = f"gs://{env.config.state_bucket}/{state_prefix(env, 'foundation')}/default.tfstate"
        if not self.cloud.object_exists(foundation):
            raise ReleaseFailure(
                f"{env.name}'s foundation is not applied ({foundation} missing). Fix: make bootstrap ENV={env.name}"
            )

    # --- records ---------------------------------------------------------------------------------------------

    def _release_of(self, env: Environment) -> Release:
        release = read_release(env.name, self.releases_dir)
        if release is None:
            raise ReleaseFailure(
                f"{env.name} has no release record ({release_path(env.name, self.releases_dir).name})."
                f" Fix: {how_to_release(env.name)}"
            )
        return release

    def _record(self, env: Environment, release: Release) -> None:
        image = queue_image_by_digest(env, release.digest)
        stamp = self.now().strftime("%Y%m%d-%H%M%S")
        self.cloud.add_tag(image, queue_image_by_tag(env, f"{RELEASE_TAG_PREFIX}{env.name}-{stamp}"))
        path = write_release(env.name, release, self.releases_dir)
        relative = path.relative_to(self.root).as_posix()
        if not git(self.root, "status", "--porcelain", "--", relative).strip():
            self.say(f"{relative} already records this: {env.name} runs {image}")
            return
        git(self.root, "add", "--", relative)
        message = f"release: {env.name} runs {release.digest[:19]}… ({release.source})"
        git(self.root, "commit", "--quiet", "--only", "-m", message, "--", relative)
        self.say(f"{relative}: {env.name} runs {image}\ncommitted: {message}")


def _require_terraform() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        raise ReleaseFailure(f"terraform is not installed. Fix: install Terraform {REQUIRED_TERRAFORM}")
    answer = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, check=False)
    try:
        version = str(json.loads(answer.stdout)["terraform_version"])
    except (ValueError, KeyError):
        raise ReleaseFailure(f"cannot read `terraform version -json`: {answer.stderr.strip()[:200]}") from None
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if numbers < MIN_TERRAFORM:
        raise ReleaseFailure(f"terraform {version} is too old: the stacks need {REQUIRED_TERRAFORM}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.release", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bootstrap", help="APIs and the state bucket, before the foundation").add_argument("env")
    sub.add_parser("image", help="build HEAD's image once and record its digest").add_argument("env")
    promote = sub.add_parser("promote", help="record for TO the digest FROM runs")
    promote.add_argument("source")
    promote.add_argument("target")
    rollback = sub.add_parser("rollback", help="record an earlier digest")
    rollback.add_argument("env")
    rollback.add_argument("digest")
    sub.add_parser("preflight", help="what make deploy needs").add_argument("env")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        releaser = Releaser(load_environments(REPO_ROOT / "environments", REPO_ROOT))
        if args.command == "bootstrap":
            releaser.bootstrap(args.env)
        elif args.command == "image":
            releaser.image(args.env)
        elif args.command == "promote":
            releaser.promote(args.source, args.target)
        elif args.command == "rollback":
            releaser.rollback(args.env, args.digest)
        else:
            releaser.preflight(args.env)
    except (ReleaseFailure, CloudError, SourceError, ConfigError, ReleaseError) as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
