"""A stand-in for the `gcloud` commands infra/gcloud.py runs, with the behaviour that matters to the release tool.

State lives in the JSON file named by FAKE_GCLOUD_STATE. Like the real registry: tags are immutable, a digest is a
hash of the image content (here: of the uploaded build context), an unknown image or service is NOT_FOUND.
Every call is appended to `calls`. Run as `python fake_gcloud.py ARGS…` (tests put a `gcloud` shim on PATH).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any


def _flags(args: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def _positional(args: list[str]) -> list[str]:
    return [a for a in args if not a.startswith("--")]


def _fail(message: str, code: int = 1) -> int:
    print(f"ERROR: (gcloud) {message}", file=sys.stderr)
    return code


def _repository_of(image: str) -> str:
    return image.split("@", 1)[0].rsplit(":", 1)[0] if "@" in image else image.rsplit(":", 1)[0]


def handle(state: dict[str, Any], args: list[str]) -> int:
    words, flags = _positional(args), _flags(args)
    if words[:2] == ["auth", "print-access-token"]:
        if not state.get("logged_in", True):
            return _fail("You do not currently have an active account selected.")
        print("ya29.fake")
        return 0
    if words[:3] == ["auth", "application-default", "print-access-token"]:
        if not state.get("adc", True):
            return _fail("Could not automatically determine credentials")
        print("ya29.fake-adc")
        return 0
    if words[:2] == ["services", "enable"]:
        state.setdefault("enabled", {}).setdefault(flags["project"], []).extend(words[2:])
        return 0
    if words[:3] == ["storage", "buckets", "describe"]:
        name = words[3].removeprefix("gs://")
        if name not in state.setdefault("buckets", {}):
            return _fail(f"gs://{name} not found: 404.")
        print(name)
        return 0
    if words[:3] == ["storage", "buckets", "create"]:
        name = words[3].removeprefix("gs://")
        state.setdefault("buckets", {})[name] = {
            "project": flags["project"], "location": flags["location"], "versioning": False,
            "uniform": "--uniform-bucket-level-access" in args, "pap": "--public-access-prevention" in args,
        }  # fmt: skip
        return 0
    if words[:3] == ["storage", "buckets", "update"]:
        state["buckets"][words[3].removeprefix("gs://")]["versioning"] = "--versioning" in args
        return 0
    if words[:2] == ["storage", "ls"]:
        if words[2] not in state.get("objects", []):
            return _fail("One or more URLs matched no objects.")
        print(words[2])
        return 0
    if words[:4] == ["artifacts", "docker", "images", "describe"]:
        digest = state.setdefault("images", {}).get(words[4])
        if digest is None:
            return _fail(f"NOT_FOUND: Requested entity was not found: {words[4]}")
        print(digest)
        return 0
    if words[:4] == ["artifacts", "docker", "tags", "add"]:
        digest = state.setdefault("images", {}).get(words[4])
        if digest is None:
            return _fail(f"NOT_FOUND: image {words[4]} not found")
        if state["images"].get(words[5], digest) != digest:
            return _fail(f"FAILED_PRECONDITION: tag {words[5]} is immutable")
        state["images"][words[5]] = digest
        return 0
    if words[:2] == ["builds", "submit"]:
        substitutions = dict(kv.split("=", 1) for kv in flags["substitutions"].split(","))
        image = substitutions["_IMAGE"]
        if image in state.setdefault("images", {}):
            return _fail(f"push refused: tag {image} is immutable")
        with tarfile.open(words[2]) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        content = hashlib.sha256()
        for name in sorted(files):
            content.update(name.encode() + b"\0" + files[name])
        digest = f"sha256:{content.hexdigest()}"
        state["images"][image] = digest
        state["images"][f"{_repository_of(image)}@{digest}"] = digest
        state.setdefault("builds", []).append(
            {"image": image, "commit": substitutions["_COMMIT"], "files": sorted(files), "flags": flags,
             "service/pkg/a.py": files.get("service/pkg/a.py", b"").decode()}
        )  # fmt: skip
        return 0
    if words[:3] == ["run", "services", "describe"]:
        key = f"{flags['project']}/{flags['region']}/{words[3]}"
        image = state.setdefault("run", {}).get(key)
        if image is None:
            return _fail(f"Cannot find service [{words[3]}]")
        print(image)
        return 0
    return _fail(f"fake gcloud does not know: {' '.join(args)}", 2)


def main() -> int:
    path = Path(os.environ["FAKE_GCLOUD_STATE"])
    state = json.loads(path.read_text()) if path.exists() else {}
    args = [a for a in sys.argv[1:] if a != "--quiet"]
    state.setdefault("calls", []).append(args)
    code = handle(state, args)
    path.write_text(json.dumps(state, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
