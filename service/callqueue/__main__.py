"""`callqueue` / `python -m callqueue`: validate settings, log the timing profile, serve on $PORT."""

from __future__ import annotations

import sys

import uvicorn

from callqueue.api.app import create_app
from callqueue.logs import configure_logging
from callqueue.settings import SettingsError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"callqueue: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host="0.0.0.0",
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the handlers configure_logging installed
        access_log=False,  # Cloud Run logs every request itself
        timeout_graceful_shutdown=8,
        proxy_headers=True,
        forwarded_allow_ips="*",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
