"""Plivo's V3 callback signature, computed the way `plivo.utils.signature_v3.validate_v3_signature` checks it.

Written out here rather than borrowed from the SDK so that the tests prove the two agree. The signed string is
the callback URL without its query, then `?` and the URL's query parameters sorted (`k=v&…`), then for a POST
with parameters a `.` (only when there was a query) and the body parameters sorted and concatenated as `kv`;
finally `.` and the nonce. HMAC-SHA256 with the auth token, base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit, urlunsplit


def _sorted_query(query_map: Mapping[str, list[str]]) -> str:
    return "&".join("&".join(f"{key}={value}" for value in sorted(query_map[key])) for key in sorted(query_map))


def signed_string(method: str, url: str, params: Mapping[str, str]) -> str:
    """The string Plivo signs for a callback to `url` with `params` (form body for POST, query for GET)."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query_map = {key: list(values) for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    if method.upper() == "GET":
        for key, value in params.items():
            query_map[key] = [value]
        query = _sorted_query(query_map)
        return f"{base}?{query}" if query else base
    query = _sorted_query(query_map)
    if not params:
        return f"{base}?{query}" if query else base
    body = "".join(f"{key}{params[key]}" for key in sorted(params))
    return f"{base}?{query}.{body}" if query else f"{base}?{body}"


def sign_v3(auth_token: str, method: str, url: str, params: Mapping[str, str], nonce: str) -> str:
    message = f"{signed_string(method, url, params)}.{nonce}".encode()
    digest = hmac.new(auth_token.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_headers(auth_token: str, method: str, url: str, params: Mapping[str, str]) -> dict[str, str]:
    """The `X-Plivo-Signature-V3` and `-Nonce` headers for one callback request (fresh nonce each time)."""
    nonce = secrets.token_hex(10)
    return {
        "X-Plivo-Signature-V3": sign_v3(auth_token, method, url, params, nonce),
        "X-Plivo-Signature-V3-Nonce": nonce,
    }
