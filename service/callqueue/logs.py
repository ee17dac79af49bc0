"""Log lines Cloud Logging understands: one JSON object per line with `severity`, so levels and filters work.

Off Cloud Run the lines stay plain text for people. A `call id` in a message is not parsed out: `make logs
CALL_ID=…` searches the message text.
"""

from __future__ import annotations

import json
import logging
import sys

from callqueue.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": record.levelname, "message": record.getMessage(), "logger": record.name}
        if record.exc_info:
            entry["message"] += "\n" + self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    json_lines = settings.log_format == "json" or (settings.log_format == "auto" and settings.on_cloud_run)
    handler.setFormatter(CloudLoggingFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # one format for every line
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))  # not a line per outbound request
