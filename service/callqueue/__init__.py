"""Outbound call queue: durable queue in Redis, paced dispatch through the voice agent, truthful call tracking."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("callqueue")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
