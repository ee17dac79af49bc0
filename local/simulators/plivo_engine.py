"""The simulated Plivo account: calls queued at the CPS rate, each living out its script on the asyncio clock.

All state lives in one `PlivoSim` owned by the server's event loop; the HTTP layer (plivo.py) only reads it
and calls `create_call`, `cancel` and `hangup`. Callbacks go out as separate tasks so a script can drop, repeat,
delay or reorder them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from local.simulators.plivo_script import API_CANCEL, API_HANGUP, OUTCOMES, TIME_LIMIT, Ending, Script
from local.simulators.signing import signature_headers

LIVE_STATES = ("ringing", "in-progress")


def plivo_time(epoch: float | None, tz: bool = False) -> str | None:
    """Plivo's `YYYY-MM-DD HH:MM:SS` (UTC); the detail record adds the `+00:00` offset."""
    if epoch is None:
        return None
    text = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}+00:00" if tz else text


def number(value: str) -> str:
    """Plivo reports numbers in E.164 without the leading `+`."""
    return value.strip().lstrip("+")


@dataclass
class SimCall:
    request_uuid: str
    to: str
    from_: str
    urls: dict[str, tuple[str, str]]  # event -> (url, method); events: answer, ring, hangup
    ring_timeout: float
    time_limit: float | None
    script: Script
    base_url: str
    created_at: float = field(default_factory=time.time)
    created_mono: float = field(default_factory=time.monotonic)
    call_uuid: str | None = None
    state: str = "queued"  # queued, initiated, ringing, in-progress, then the final CallStatus
    ending: Ending | None = None
    initiation_time: float | None = None
    answer_time: float | None = None
    answer_mono: float | None = None
    end_time: float | None = None
    ended_mono: float | None = None
    duration: int = 0
    recording_id: str | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    hangup_delivered: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        return self.ending is not None

    def mark(self, state: str, at: float | None = None) -> None:
        self.state = state
        self.timeline.append({"state": state, "at": time.time() if at is None else at})


class ScriptBook:
    """Scripts by destination number; a list is used one entry per call, its last entry repeating."""

    def __init__(self, default: Script | None = None) -> None:
        self.default = default or Script()
        self.by_number: dict[str, list[Script]] = {}

    def set(self, to: str | None, scripts: list[Script]) -> None:
        if to is None:
            self.default = scripts[-1]
        else:
            self.by_number[number(to)] = list(scripts)

    def next_for(self, to: str) -> Script:
        scripts = self.by_number.get(number(to))
        if not scripts:
            return self.default
        return scripts.pop(0) if len(scripts) > 1 else scripts[0]

    def snapshot(self) -> dict[str, Any]:
        return {
            "default": self.default.model_dump(),
            "by_number": {k: [s.model_dump() for s in v] for k, v in self.by_number.items()},
        }


class PlivoSim:
    """One Plivo account's calls, scripts and counters."""

    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        *,
        cps: float = 2.0,
        time_scale: float = 1.0,
        default_script: Script | None = None,
    ) -> None:
        self.auth_id = auth_id
        self.auth_token = auth_token
        self.cps = cps
        self.time_scale = time_scale
        self.default_script = default_script
        self.scripts = ScriptBook(default_script)
        self.calls: dict[str, SimCall] = {}
        self.by_call_uuid: dict[str, SimCall] = {}
        self._next_slot = 0.0
        self._last_dial = float("-inf")  # wall time of the latest dial, as reported: CPS spaces actual dials
        self._dial_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.http: httpx.AsyncClient | None = None

    # ----- lifecycle of the sim itself
    async def start(self) -> None:
        self.http = httpx.AsyncClient(timeout=5.0)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.http is not None:
            await self.http.aclose()

    def reset(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self.calls.clear()
        self.by_call_uuid.clear()
        self.scripts = ScriptBook(self.default_script)
        self._next_slot = 0.0
        self._last_dial = float("-inf")
        self._dial_lock = asyncio.Lock()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sleep(self, script_seconds: float) -> None:
        await asyncio.sleep(max(0.0, script_seconds) * self.time_scale)

    # ----- lookups
    def visible(self, call: SimCall) -> bool:
        return time.monotonic() >= call.created_mono + call.script.invisible_for * self.time_scale

    def cdr_ready(self, call: SimCall) -> bool:
        return call.ended_mono is not None and (
            time.monotonic() >= call.ended_mono + call.script.cdr_delay * self.time_scale
        )

    def find(self, some_uuid: str) -> SimCall | None:
        return self.calls.get(some_uuid) or self.by_call_uuid.get(some_uuid)

    # ----- API actions
    def create_call(
        self,
        *,
        to: str,
        from_: str,
        urls: dict[str, tuple[str, str]],
        ring_timeout: float,
        time_limit: float | None,
        base_url: str,
    ) -> SimCall:
        call = SimCall(
            request_uuid=str(uuid.uuid4()),
            to=number(to),
            from_=number(from_),
            urls=urls,
            ring_timeout=ring_timeout,
            time_limit=time_limit,
            script=self.scripts.next_for(to),
            base_url=base_url,
        )
        call.mark("queued")
        earliest = call.created_mono + call.script.queue_for * self.time_scale
        dial_at = max(earliest, self._next_slot)
        self._next_slot = dial_at + self.time_scale / self.cps
        self.calls[call.request_uuid] = call
        call.task = self._spawn(self._run(call, dial_at))
        return call

    def cancel_queued(self, call: SimCall) -> None:
        self._finish(call, API_CANCEL)

    def hangup(self, call: SimCall) -> None:
        self._finish(call, API_HANGUP if call.state == "in-progress" else API_CANCEL)

    # ----- the script
    async def _run(self, call: SimCall, dial_at: float) -> None:
        await asyncio.sleep(max(0.0, dial_at - time.monotonic()))
        # A late wake-up (loaded machine) must not bring the next dial closer than 1/CPS to this one. Spaced on the
        # clock the dial is reported in (initiation_time, timeline), read once, so the reported gap is never short.
        async with self._dial_lock:
            while (wait := self._last_dial + self.time_scale / self.cps - time.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)  # a wait on the clock itself: asyncio may wake a hair early
            self._last_dial = time.time()
            self._dial(call, self._last_dial)
        script = call.script
        await self._sleep(script.ring_after)
        planned = OUTCOMES[script.outcome]
        if not planned.rings:
            self._finish(call, planned)
            return
        call.mark("ringing")
        self._callback(call, "ring")
        answers = script.outcome == "completed" and script.answer_after <= call.ring_timeout
        await self._sleep(min(script.answer_after, call.ring_timeout))
        if not answers:
            self._finish(call, planned if script.outcome != "completed" else OUTCOMES["no_answer"])
            return
        call.answer_time, call.answer_mono = time.time(), time.monotonic()
        call.mark("in-progress")
        self._spawn(self._fetch_answer_url(call))
        talk = script.talk_for if call.time_limit is None else min(script.talk_for, call.time_limit)
        await self._sleep(talk)
        self._finish(call, planned if talk == script.talk_for else TIME_LIMIT, talked=talk)

    def _dial(self, call: SimCall, at: float) -> None:
        call.call_uuid = str(uuid.uuid4())
        self.by_call_uuid[call.call_uuid] = call
        call.initiation_time = at
        call.mark("initiated", at)

    def _finish(self, call: SimCall, ending: Ending, talked: float | None = None) -> None:
        """End the call. `talked`: script seconds of a talk that ran its course, reported as is (a loaded machine's
        late wake-up is not part of the call); a call ended early (cancel, hang-up) reports the time it talked."""
        if call.ended:
            return
        if call.task is not None and call.task is not asyncio.current_task():
            call.task.cancel()
        if call.call_uuid is None:  # canceled while queued: the hang-up callback still names a call
            call.call_uuid = str(uuid.uuid4())
            self.by_call_uuid[call.call_uuid] = call
        call.ending = ending
        call.end_time, call.ended_mono = time.time(), time.monotonic()
        if call.answer_mono is not None:
            measured = (call.ended_mono - call.answer_mono) / self.time_scale
            call.duration = round(talked if talked is not None else measured)
            if call.script.recording:
                call.recording_id = str(uuid.uuid4())
        call.mark(ending.call_status)
        self._callback(call, "hangup")

    # ----- callbacks
    def params(self, call: SimCall, event: str) -> dict[str, str]:
        status = {"ring": "ringing", "answer": "in-progress"}.get(event)
        params = {
            "CallUUID": call.call_uuid or "",
            "RequestUUID": call.request_uuid,
            "ALegUUID": call.call_uuid or "",
            "ALegRequestUUID": call.request_uuid,
            "From": call.from_,
            "To": call.to,
            "Direction": "outbound",
            "CallStatus": status or (call.ending.call_status if call.ending else call.state),
            "Event": {"ring": "Ring", "answer": "StartApp", "hangup": "Hangup"}[event],
        }
        if event == "hangup" and call.ending is not None:
            params.update(
                {
                    "HangupCause": call.ending.hangup_cause,
                    "HangupCauseName": call.ending.hangup_cause_name,
                    "HangupCauseCode": str(call.ending.hangup_cause_code),
                    "HangupSource": call.ending.hangup_source,
                    "Duration": str(call.duration),
                    "BillDuration": str(call.duration),
                    "StartTime": plivo_time(call.initiation_time) or "",
                    "AnswerTime": plivo_time(call.answer_time) or "",
                    "EndTime": plivo_time(call.end_time) or "",
                }
            )
        return params

    def _callback(self, call: SimCall, event: Literal["ring", "hangup"]) -> None:
        target = call.urls.get(event)
        mode = call.script.callback_mode(event)
        if target is None or mode == "drop":
            call.callbacks.append(
                {
                    "event": event,
                    "mode": mode,
                    "sent": False,
                    "reason": "no url" if target is None else "dropped by script",
                }
            )
            if event == "hangup":
                call.hangup_delivered.set()
            return
        params = self.params(call, event)
        delay = float(mode.split(":", 1)[1]) if mode.startswith("late:") else 0.0
        copies = 2 if mode == "duplicate" else 1
        wait_for_hangup = event == "ring" and call.script.out_of_order
        self._spawn(self._deliver(call, event, target, params, delay, copies, wait_for_hangup))

    async def _deliver(
        self,
        call: SimCall,
        event: str,
        target: tuple[str, str],
        params: dict[str, str],
        delay: float,
        copies: int,
        wait_for_hangup: bool,
    ) -> None:
        try:
            if wait_for_hangup:
                await call.hangup_delivered.wait()
            await self._sleep(delay)
            for copy in range(copies):
                await self._send(call, event, target, params, mode=f"copy {copy + 1}/{copies}")
        finally:
            if event == "hangup":
                call.hangup_delivered.set()

    async def _fetch_answer_url(self, call: SimCall) -> None:
        target = call.urls.get("answer")
        if target is not None:
            await self._send(call, "answer", target, self.params(call, "answer"), mode="fetch")

    async def _send(
        self, call: SimCall, event: str, target: tuple[str, str], params: dict[str, str], mode: str
    ) -> None:
        url, method = target
        record: dict[str, Any] = {
            "event": event,
            "mode": mode,
            "url": url,
            "method": method,
            "params": params,
            "sent": True,
            "at": time.time(),
            "status_code": None,
            "error": None,
        }
        call.callbacks.append(record)
        headers = signature_headers(self.auth_token, method, url, params)
        assert self.http is not None
        try:
            if method.upper() == "GET":
                response = await self.http.get(url, params=params, headers=headers)
            else:
                response = await self.http.post(url, data=params, headers=headers)
            record["status_code"] = response.status_code
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"

    # ----- views
    def recording(self, call: SimCall) -> dict[str, Any] | None:
        if call.recording_id is None:
            return None
        return {
            "api_id": str(uuid.uuid4()),
            "recording_id": call.recording_id,
            "call_uuid": call.call_uuid,
            "recording_url": f"{call.base_url}/_sim/recordings/{call.recording_id}.mp3",
            "recording_format": "mp3",
            "recording_type": "call",
            "add_time": plivo_time(call.end_time, tz=True),
            "recording_duration_ms": str(call.duration * 1000),
            "resource_uri": f"/v1/Account/{self.auth_id}/Recording/{call.recording_id}/",
        }

    def cdr(self, call: SimCall) -> dict[str, Any]:
        ending = call.ending
        assert ending is not None
        return {
            "api_id": str(uuid.uuid4()),
            "call_uuid": call.call_uuid,
            "parent_call_uuid": None,
            "answer_time": plivo_time(call.answer_time, tz=True),
            "end_time": plivo_time(call.end_time, tz=True),
            "initiation_time": plivo_time(call.initiation_time, tz=True),
            "call_duration": call.duration,
            "bill_duration": call.duration,
            "billed_duration": call.duration,
            "hangup_cause_name": ending.hangup_cause_name,
            "hangup_cause_code": ending.hangup_cause_code,
            "hangup_source": ending.hangup_source,
            "to_number": call.to,
            "from_number": call.from_,
            "call_direction": "outbound",
            "call_status": ending.call_status,
            "total_amount": "0.00000",
            "resource_uri": f"/v1/Account/{self.auth_id}/Call/{call.call_uuid}/",
        }

    def describe(self, call: SimCall) -> dict[str, Any]:
        """Everything about one call, for `/_sim/calls` (test introspection; not a Plivo shape)."""
        ending = call.ending
        recording = self.recording(call)
        return {
            "request_uuid": call.request_uuid,
            "call_uuid": call.call_uuid,
            "to": call.to,
            "from": call.from_,
            "status": call.state,
            "created_at": call.created_at,
            "initiation_time": call.initiation_time,
            "answer_time": call.answer_time,
            "end_time": call.end_time,
            "duration": call.duration if ending else None,
            "hangup_cause": ending.hangup_cause if ending else None,
            "hangup_cause_name": ending.hangup_cause_name if ending else None,
            "hangup_cause_code": ending.hangup_cause_code if ending else None,
            "hangup_source": ending.hangup_source if ending else None,
            "recording_url": recording["recording_url"] if recording else None,
            "visible": self.visible(call),
            "cdr_ready": self.cdr_ready(call),
            "urls": {event: {"url": url, "method": method} for event, (url, method) in call.urls.items()},
            "script": call.script.model_dump(),
            "timeline": call.timeline,
            "callbacks": call.callbacks,
        }
