"""What a Cloud Run URL says about its service: name, project number and region, from the URL string alone.

Deterministic URLs (`https://NAME-PROJECTNUMBER.REGION.run.app`) carry the region; legacy ones
(`https://NAME-HASH-XX.a.run.app`) only a two-letter code that Google does not document as a region, so the region
is reported unknown. Working on the string keeps the region verdict independent of whether the URL answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

_DETERMINISTIC = re.compile(r"^(?P<service>[a-z0-9-]+?)-(?P<project>\d+)\.(?P<region>[a-z]+-[a-z]+\d+)\.run\.app$")
_LEGACY = re.compile(r"^(?P<service>[a-z0-9-]+)-(?P<hash>[a-z0-9]+)-(?P<code>[a-z]{2})\.a\.run\.app$")
_METADATA_REGION = re.compile(r"^projects/(?P<project>\d+)/regions/(?P<region>[a-z]+-[a-z]+\d+)$")


@dataclass(frozen=True)
class RunUrl:
    url: str
    form: Literal["deterministic", "legacy", "not_run_app"]
    service: str | None = None
    project_number: str | None = None
    region: str | None = None


def parse_run_url(url: str) -> RunUrl:
    host = (urlsplit(url.strip()).hostname or "").lower()
    if m := _DETERMINISTIC.match(host):
        return RunUrl(url, "deterministic", m["service"], m["project"], m["region"])
    if m := _LEGACY.match(host):
        return RunUrl(url, "legacy", m["service"])
    return RunUrl(url, "not_run_app")


def region_from_metadata(answer: str) -> str | None:
    """`projects/123/regions/us-east1` (the metadata server's instance/region) → `us-east1`."""
    m = _METADATA_REGION.match(answer.strip())
    return m["region"] if m else None
