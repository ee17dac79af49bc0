"""The Cloud Run metadata server: the instance's region and ID tokens for calling private services.

The base URL is injectable (argument, or GCE_METADATA_HOST as Google's client libraries honour it) so the tools
can be tested against a fake metadata server.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from callqueue.clients.auth import IDENTITY_PATH, metadata_base_url
from callqueue.ops.runapp import region_from_metadata

REGION_PATH = "/computeMetadata/v1/instance/region"
HEADERS = {"Metadata-Flavor": "Google"}


def metadata_base(explicit: str | None, env: Mapping[str, str]) -> str:
    if explicit:
        return explicit.rstrip("/")
    return metadata_base_url(env.get("GCE_METADATA_HOST"))


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
