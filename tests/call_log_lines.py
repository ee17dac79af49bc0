"""Which call each log line was bound to when written (what the JSON formatter puts in its call_id field)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from callqueue.tracing import current_call_id


class CallOfEachLine(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), current_call_id.get()))


@contextmanager
def call_of_each_line(logger_name: str) -> Iterator[CallOfEachLine]:
    """The INFO and above lines of `logger_name` written inside the block, each with the call bound then."""
    lines = CallOfEachLine()
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
