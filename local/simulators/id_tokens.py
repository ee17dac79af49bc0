"""Google-style ID tokens without Google: a metadata server that issues them and the check an agent makes.

On Cloud Run the queue fetches an ID token for the agent's URL from the metadata server and sends it as
`Authorization: Bearer …`; the agent verifies it (signature, issuer, expiry, audience = its own URL) and that the
caller is the queue's service account. Here the tokens are JWTs signed with a shared HMAC key instead of Google's
RSA keys; every claim the agent checks is the real one (`iss`, `aud`, `exp`, `email`, `email_verified`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

ISSUER = "https://accounts.google.com"
ALGORITHM = "HS256"
LIFETIME_S = 3600
DEFAULT_KEY = "callqueue-simulated-google-signing-key"  # 32+ bytes, as HS256 wants
DEFAULT_CALLER = "callqueue-queue@project.iam.gserviceaccount.com"


def issue(audience: str, email: str = DEFAULT_CALLER, key: str = DEFAULT_KEY, lifetime_s: int = LIFETIME_S) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "email": email, "email_verified": True, "iat": now,
              "exp": now + lifetime_s, "sub": email}  # fmt: skip
    return jwt.encode(claims, key, algorithm=ALGORITHM)


@dataclass(frozen=True)
class CallerPolicy:
    """Who may call a protected route: a valid token for `audience` (None: the URL the request came to) from one of
    `callers` (empty: any verified Google identity)."""

    audience: str | None = None
    callers: frozenset[str] = field(default_factory=lambda: frozenset({DEFAULT_CALLER}))
    key: str = DEFAULT_KEY

    def refusal(self, request: Request) -> JSONResponse | None:
        """None when the caller may proceed; else the 401/403 answer. Checked before the body is read."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _deny(401, "missing Google ID token: send Authorization: Bearer <token>")
        audience = self.audience or str(request.base_url).rstrip("/")
        try:
            claims = jwt.decode(token, self.key, algorithms=[ALGORITHM], audience=audience, issuer=ISSUER,
                                options={"require": ["exp", "aud", "iss"]})  # fmt: skip
        except jwt.ExpiredSignatureError:
            return _deny(401, "ID token expired")
        except jwt.InvalidAudienceError:
            return _deny(401, f"ID token audience is not {audience}")
        except jwt.InvalidTokenError as exc:
            return _deny(401, f"invalid ID token: {exc}")
        if not claims.get("email_verified") or (self.callers and claims.get("email") not in self.callers):
            return _deny(403, f"caller {claims.get('email')!r} may not start calls")
        return None


def _deny(status: int, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return JSONResponse({"detail": detail}, status, headers=headers)


def create_metadata_app(email: str = DEFAULT_CALLER, key: str = DEFAULT_KEY) -> FastAPI:
    """The identity endpoint of the metadata server, for a process running as `email`."""
    app = FastAPI(title="Metadata server simulator")
    issued: list[str] = []

    @app.get("/computeMetadata/v1/instance/service-accounts/default/identity")
    async def identity(request: Request, audience: str) -> PlainTextResponse:
        if request.headers.get("metadata-flavor") != "Google":
            return PlainTextResponse("missing Metadata-Flavor: Google", 403)
        issued.append(audience)
        return PlainTextResponse(issue(audience, email, key))

    @app.get("/_sim/issued")
    async def list_issued() -> dict[str, list[str]]:
        return {"audiences": issued}

    @app.get("/_sim/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app
