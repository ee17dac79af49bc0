"""`callqueue` / `python -m callqueue`: validate settings, log the timing profile, serve on $PORT."""

from __future__ import annotations

import sys

from callqueue.api.app import create_app
from callqueue.logs import configure_logging
from callqueue.serving import serve
from callqueue.settings import SettingsError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"callqueue: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    serve(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
