"""Log lines Cloud Logging understands: one JSON object per line with `severity`, so levels and filters work.

A line written while a call is bound (tracing.bind_call) also carries `call_id` and the call's trace in the
fields Cloud Logging links: `logging.googleapis.com/trace` = `projects/{GOOGLE_CLOUD_PROJECT}/traces/{trace_id}`
with its span and sampled flag, so Logs Explorer groups every line of one call across services, and `make logs
CALL_ID=…` finds them. Off Cloud Run the lines stay plain text for people.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from callqueue.settings import Settings
from callqueue.tracing import current_call_id, current_trace

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"


class CloudLoggingFormatter(logging.Formatter):
    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"severity": record.levelname, "message": record.getMessage(), "logger": record.name}
        if record.exc_info:
            entry["message"] += "\n" + self.formatException(record.exc_info)
        call_id = current_call_id.get()
        if call_id:
            entry["call_id"] = call_id
        trace = current_trace.get()
        if trace is not None:
            if self.project:
                entry[TRACE_FIELD] = f"projects/{self.project}/traces/{trace.trace_id}"
                entry[SPAN_FIELD] = trace.span_id
                entry[SAMPLED_FIELD] = trace.sampled
            else:
                entry["trace_id"] = trace.trace_id
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    json_lines = settings.log_format == "json" or (settings.log_format == "auto" and settings.on_cloud_run)
    formatter = CloudLoggingFormatter(settings.google_cloud_project) if json_lines else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # one format for every line
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))  # not a line per outbound request
