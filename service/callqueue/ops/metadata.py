"""The Cloud Run metadata server: the instance's region and ID tokens for calling private services.

The base URL is injectable (argument, or GCE_METADATA_HOST as Google's client libraries honour it) so the tools
can be tested against a fake metadata server.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from callqueue.ops.runapp import region_from_metadata

DEFAULT_METADATA_BASE = "http://metadata.google.internal"
REGION_PATH = "/computeMetadata/v1/instance/region"
IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"
HEADERS = {"Metadata-Flavor": "Google"}


def metadata_base(explicit: str | None, env: Mapping[str, str]) -> str:
    if explicit:
        return explicit.rstrip("/")
    host = env.get("GCE_METADATA_HOST", "").strip()
    if host:
        return (host if "://" in host else f"http://{host}").rstrip("/")
    return DEFAULT_METADATA_BASE


async def own_region(http: httpx.AsyncClient, base: str, timeout_s: float) -> str:
    """The region this instance runs in; raises ValueError when the answer is not `projects/N/regions/R`."""
    response = await http.get(base + REGION_PATH, headers=HEADERS, timeout=timeout_s)
    response.raise_for_status()
    region = region_from_metadata(response.text)
    if region is None:
        raise ValueError(f"unexpected metadata region answer {response.text[:80]!r}")
    return region


def identity_url(base: str) -> str:
    return base + IDENTITY_PATH
