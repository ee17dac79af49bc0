"""What every check gets: the settings the service would load, one HTTP client, the timeout, and a token source.

Built once per run so every check sees the same settings and shares connections; closed by the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from callqueue.clients.auth import IdTokens
from callqueue.ops.metadata import identity_url, metadata_base
from callqueue.settings import Settings, SettingsError, load_settings

# An operator off Cloud Run passes a token of their own: CALLQUEUE_ID_TOKEN=$(gcloud auth print-identity-token).
OPERATOR_TOKEN_ENV = "CALLQUEUE_ID_TOKEN"
FALLBACK_TIMEOUT_S = 10.0


class TokenSource:
    """Authorization headers for a peer: a metadata-server ID token on Cloud Run, an operator's token, or none."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings | None, env: Mapping[str, str], base: str) -> None:
        self.static = env.get(OPERATOR_TOKEN_ENV, "").strip()
        enabled = bool(settings and settings.use_id_tokens) and not self.static
        self._tokens = IdTokens(http, enabled=enabled, metadata_url=identity_url(base))
        self.kind = "metadata" if enabled else ("operator" if self.static else "none")

    async def headers_for(self, url: str) -> dict[str, str]:
        if self.static:
            return {"Authorization": f"Bearer {self.static}"}
        return await self._tokens.headers_for(url)

    def describe(self) -> str:
        return {
            "metadata": "Google ID token from the metadata server",
            "operator": f"operator token from {OPERATOR_TOKEN_ENV}",
            "none": "no token (AUTH_MODE=none or not on Cloud Run)",
        }[self.kind]


@dataclass
class Context:
    env: Mapping[str, str]
    settings: Settings | None
    settings_error: str | None
    timeout_s: float
    metadata_base: str
    http: httpx.AsyncClient
    tokens: TokenSource

    @property
    def on_cloud_run(self) -> bool:
        return bool(self.env.get("K_SERVICE"))

    def need_settings(self) -> Settings:
        if self.settings is None:
            raise RuntimeError(f"settings are invalid: {self.settings_error}")
        return self.settings

    async def aclose(self) -> None:
        await self.http.aclose()


def build_context(
    env: Mapping[str, str] | None = None, timeout_s: float | None = None, metadata_url: str | None = None
) -> Context:
    env = dict(os.environ if env is None else env)
    settings: Settings | None = None
    error: str | None = None
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        error = str(exc)
    timeout = timeout_s or (float(settings.timing.request_timeout) if settings else FALLBACK_TIMEOUT_S)
    http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
    base = metadata_base(metadata_url, env)
    return Context(env, settings, error, timeout, base, http, TokenSource(http, settings, env, base))
