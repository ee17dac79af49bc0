"""The served process freezes what it holds once started (serving.py): full collections then walk only what was
made since, instead of the whole startup heap with every request in flight waiting (the p99 tail)."""

from __future__ import annotations

import asyncio
import gc

from fastapi import FastAPI

from callqueue.serving import Server, uvicorn_config
from callqueue.settings import load_settings
from local.redis_server import free_port


class Startup:
    """Something the app made while starting: alive for the life of the process."""


def test_what_exists_once_started_is_frozen_and_later_objects_are_not() -> None:
    made_at_start = Startup()
    app = FastAPI()
    app.state.made_at_start = made_at_start
    settings = load_settings({"REDIS_URL": "redis://127.0.0.1:1/0", "LOG_LEVEL": "WARNING"})
    server = Server(uvicorn_config(app, settings, host="127.0.0.1", port=free_port()))

    async def start_and_stop() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started:  # uvicorn sets it once its startup is done
            assert not serving.done(), "the server stopped while starting"
            await asyncio.sleep(0.01)
        try:
            assert gc.get_freeze_count() > 0
            tracked = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
            assert id(made_at_start) not in tracked, "a startup object is still walked by every collection"
            after = Startup()
            tracked = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
            assert id(after) in tracked, "objects made while serving are collected as usual"
        finally:
            server.should_exit = True
            await serving

    gc.unfreeze()
    try:
        asyncio.run(start_and_stop())
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
