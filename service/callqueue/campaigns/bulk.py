"""Bulk enqueue: up to MAX_ITEMS calls in one request (JSON, or CSV), validated per item, written in chunks.

Acceptance is per item by default: valid items are accepted and answered with their call id, invalid ones with
their errors, and nothing accepted is lost because a neighbour was invalid. The write itself is CHUNK items per
Lua script call (each chunk atomic); a Redis failure part-way leaves the earlier chunks written, and sending the
same request again with item keys completes it without duplicates (per-item idempotency). Admission
(MAX_QUEUED_CALLS) is per item too: items are admitted in order while there is room, the rest answered
`queue_full`.

With mode=all_or_nothing every item is validated first and nothing is written if any is invalid; then the whole
request is written by one script call, so it is admitted (or refused, QueueFull) as a whole and a Redis failure
leaves nothing half-written. One call of up to 10,000 items holds Redis for a fraction of a second (bench/).

Speed: one parse and one number classification per phone number (phones.py), calling hours computed once per
zone set (hours.py caches), and the next chunk validated while Redis writes the previous one.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from callqueue.call_config import call_config_problems
from callqueue.campaigns.models import RetryPolicy, check_time_zone
from callqueue.campaigns.planning import Plan, plan_call
from callqueue.campaigns.store import CampaignStore, CampaignView
from callqueue.ids import new_call_id
from callqueue.phones import InvalidPhone, parse_e164, time_zones
from callqueue.store.calls import CampaignCanceled, QueueFull

MAX_ITEMS = 10_000
CHUNK = 1_000
KEY_MAX = 200
FLOW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
ITEM_FIELDS = frozenset({"phone_number", "call_config", "key", "time_zone", "not_before", "retry"})
CSV_OWN_COLUMNS = frozenset({"phone_number", "key", "time_zone", "not_before"})
Mode = Literal["per_item", "all_or_nothing"]


class BulkRequestError(ValueError):
    """The request as a whole is unusable (not an item): the message says why and how to fix it."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.status = status


@dataclass
class Prepared:
    index: int
    call_id: str
    args: list[Any]


@dataclass
class Outcome:
    """What the request did, per item in request order."""

    items: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    replayed: int = 0
    rejected: int = 0
    full: int = 0  # of the rejected: refused for want of room (MAX_QUEUED_CALLS)
    waiting: int = 0  # calls waiting when an item was refused for want of room

    def as_json(self) -> dict[str, Any]:
        self.items.sort(key=lambda i: int(i["index"]))
        return {"accepted": self.accepted, "replayed": self.replayed, "rejected": self.rejected, "items": self.items}


def parse_json(raw: bytes) -> tuple[list[Any], dict[str, Any]]:
    """(items, default call_config) of a JSON body {"calls": [...], "call_config": {...}}."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BulkRequestError(f"body is not JSON ({exc}); send {{'calls': [...]}}", status=400) from None
    if not isinstance(body, dict) or not isinstance(body.get("calls"), list):
        raise BulkRequestError("body must be an object with a 'calls' array", [{"field": "calls", "rule": "required"}])
    unknown = set(body) - {"calls", "call_config"}
    if unknown:
        errors = [{"field": name, "rule": "extra fields not permitted"} for name in sorted(unknown)]
        raise BulkRequestError(f"unknown top-level field(s) {sorted(unknown)}: use calls and call_config", errors)
    defaults = body.get("call_config") or {}
    if not isinstance(defaults, dict):
        raise BulkRequestError("call_config must be an object", [{"field": "call_config", "rule": "object"}])
    return body["calls"], defaults


def parse_csv(raw: bytes, flow_name: str | None) -> tuple[list[Any], dict[str, Any]]:
    """Rows of a CSV with a header: phone_number (required), key, time_zone, not_before; every other column is a
    call_config field (text). flow_name comes from its column or the ?flow_name= query parameter."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BulkRequestError("CSV body must be UTF-8", status=400) from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "phone_number" not in reader.fieldnames:
        raise BulkRequestError(
            "CSV needs a header row with a phone_number column (and flow_name, or ?flow_name=)",
            [{"field": "phone_number", "rule": "column required"}],
        )
    items: list[Any] = []
    for row in reader:
        item: dict[str, Any] = {k: v for k, v in row.items() if k in CSV_OWN_COLUMNS and v not in (None, "")}
        config = {k: v for k, v in row.items() if k not in CSV_OWN_COLUMNS and k is not None and v not in (None, "")}
        item["call_config"] = config
        items.append(item)
    return items, ({"flow_name": flow_name} if flow_name else {})


def _config_json(config: dict[str, Any]) -> str:
    """The config as stored and sent ('' when it is not JSON the agent could be sent: non-finite, too deep)."""
    if call_config_problems(config):
        return ""
    return json.dumps(config, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _flow_error(config: dict[str, Any]) -> str | None:
    flow = config.get("flow_name")
    if flow is None:
        return "required (in the item, the request's call_config, or ?flow_name= for CSV)"
    if not isinstance(flow, str) or not 1 <= len(flow) <= 128 or not FLOW_NAME.match(flow):
        return f"must be 1-128 characters matching {FLOW_NAME.pattern}"
    return None


def _not_before_ms(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time with its offset, e.g. 2026-12-01T09:00:00-05:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 time with its offset, e.g. 2026-12-01T09:00:00-05:00") from None
    if parsed.tzinfo is None:
        raise ValueError("needs a UTC offset (or Z), e.g. 2026-12-01T09:00:00-05:00")
    return int(parsed.timestamp() * 1000)


class Preparer:
    """Validates and plans items against one reading of the campaign's settings."""

    def __init__(self, view: CampaignView, defaults: dict[str, Any], now_ms: int) -> None:
        self.view = view
        self.hours = view.hours
        self.defaults = defaults
        self.now_ms = now_ms
        self.zone_ok: set[str] = set()
        self._defaults_checked: tuple[str, str | None] | None = None
        self._plans: dict[tuple[tuple[str, ...], int | None], Plan] = {}

    def _plan(self, zones: tuple[str, ...], not_before: int | None) -> Plan:
        """One plan per zone set (and not_before) per request: every call with the same ones gets the same."""
        key = (zones, not_before)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_call(self.hours, zones, self.now_ms, not_before)
        return plan

    def _default_config(self) -> tuple[str, str | None]:
        if self._defaults_checked is None:
            self._defaults_checked = (_config_json(self.defaults), _flow_error(self.defaults))
        return self._defaults_checked

    def prepare(self, index: int, item: Any) -> tuple[Prepared | None, list[dict[str, str]]]:
        where = f"calls[{index}]"
        if not isinstance(item, dict):
            return None, [{"field": where, "rule": "must be an object with phone_number and call_config"}]
        errors: list[dict[str, str]] = []

        def bad(name: str, rule: str) -> None:
            errors.append({"field": f"{where}.{name}", "rule": rule})

        if not item.keys() <= ITEM_FIELDS:
            for name in sorted(set(item) - ITEM_FIELDS):
                bad(name, "extra fields not permitted")
        phone = item.get("phone_number")
        number: Any = None
        kind = 0
        e164 = ""
        if phone is None:
            bad("phone_number", "required")
        else:
            try:
                e164, number, kind = parse_e164(phone)
            except InvalidPhone as exc:
                bad("phone_number", str(exc))
        own_config = item.get("call_config")
        if own_config is None:  # the request's call_config as it is: checked and serialised once per request
            config_json, flow_error = self._default_config()
        else:
            if not isinstance(own_config, dict):
                bad("call_config", "must be an object")
                own_config = {}
            config = {**self.defaults, **own_config}
            config_json, flow_error = _config_json(config), _flow_error(config)
        if flow_error:
            bad("call_config.flow_name", flow_error)
        if not config_json:  # not JSON the agent could be sent: say where (checked once for the request's defaults)
            for where_in, rule in call_config_problems({**self.defaults, **(own_config or {})}):
                bad("call_config." + ".".join(str(part) for part in where_in), rule)
        key = item.get("key")
        if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= KEY_MAX):
            bad("key", f"must be a string of 1 to {KEY_MAX} characters")
        zone = item.get("time_zone")
        if zone is not None:
            try:
                if zone not in self.zone_ok:
                    check_time_zone(zone)
                    self.zone_ok.add(zone)
            except (ValueError, TypeError) as exc:
                bad("time_zone", str(exc))
        extra: dict[str, Any] = {}
        not_before = None
        if item.get("not_before") is not None:
            try:
                not_before = _not_before_ms(item["not_before"])
                extra["not_before"] = not_before
            except ValueError as exc:
                bad("not_before", str(exc))
        if item.get("retry") is not None:
            try:
                extra["retry"] = RetryPolicy.model_validate(item["retry"]).model_dump_json()
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(x) for x in err["loc"])
                    bad(f"retry.{loc}" if loc else "retry", str(err["msg"]).removeprefix("Value error, "))
        if errors:
            return None, errors
        zones: tuple[str, ...] = ()
        source = ""
        if self.hours is not None:
            if zone:
                zones, source = (zone,), "call"
            else:
                zones, source = time_zones(number, kind), "number"
                if not zones and self.view.settings.time_zone:
                    zones, source = (self.view.settings.time_zone,), "campaign"
            if not zones:
                bad("time_zone", f"cannot tell the time zone of {e164} from the number; give time_zone")
                return None, errors
        plan = self._plan(zones, not_before)
        if plan.action == "end":
            bad("time_zone", str(plan.detail["reason"]))
            return None, errors
        call_id = new_call_id()
        status = "queued" if plan.action == "queue" else "scheduled"
        at = "" if plan.at_ms is None else plan.at_ms
        # The same digest as a single call's fingerprint (store/calls.py call_fingerprint), only with keyed items.
        fingerprint = (
            hashlib.sha256(f"{e164}|{self.view.campaign_id}|{config_json}".encode()).hexdigest() if key else ""
        )
        args = [
            call_id,
            key or "",
            fingerprint,
            e164,
            config_json,
            status,
            at,
            plan.waiting_for or "",
            ",".join(zones),
            source,
            json.dumps(extra) if extra else "",
        ]
        if zone and self.hours is None:  # kept for later: the campaign may get calling hours
            args[8], args[9] = zone, "call"
        return Prepared(index, call_id, args), []


async def enqueue_bulk(
    campaigns: CampaignStore,
    view: CampaignView,
    items: list[Any],
    defaults: dict[str, Any],
    mode: Mode,
    *,
    now_ms: int,
    retention_s: int,
    campaign_retention_s: int,
    max_queued: int,
    traceparent: str | None = None,
) -> Outcome:
    """Validate, plan and write `items`; every call of the request carries its trace (`traceparent`). Each call is
    kept `retention_s` once final (CALL_RETENTION), the campaign `campaign_retention_s` (CAMPAIGN_RETENTION).
    QueueFull: all_or_nothing and its new calls do not all fit under `max_queued`; nothing was written."""
    if not items:
        raise BulkRequestError("calls is empty: send 1 to 10,000 calls", [{"field": "calls", "rule": "min 1 item"}])
    if len(items) > MAX_ITEMS:
        raise BulkRequestError(
            f"{len(items)} calls in one request; send at most {MAX_ITEMS:,} per request",
            [{"field": "calls", "rule": f"at most {MAX_ITEMS} items"}],
            status=413,
        )
    preparer = Preparer(view, defaults, now_ms)
    outcome = Outcome()
    if mode == "all_or_nothing":
        prepared, rejected = _prepare_all(preparer, items, 0, len(items))
        if rejected:
            errors = [e for r in rejected for e in r["errors"]]
            raise BulkRequestError(f"{len(rejected)} of {len(items)} calls are invalid; nothing was queued", errors)
    seq_base = await campaigns.take_sequence(len(items))
    writes: list[tuple[list[Prepared], asyncio.Task[list[str]]]] = []
    written = 0
    whole = mode == "all_or_nothing"
    for start in range(0, len(items), len(items) if whole else CHUNK):
        if whole:
            chunk = prepared
        else:
            chunk, rejected = _prepare_all(preparer, items, start, min(start + CHUNK, len(items)))
            outcome.items.extend(rejected)
            outcome.rejected += len(rejected)
        if not chunk:
            continue
        flat = [value for p in chunk for value in p.args]
        task = asyncio.create_task(
            campaigns.enqueue_chunk(
                view.campaign_id,
                view.wver,
                seq_base + written,
                flat,
                len(chunk),
                retention_s=retention_s,
                campaign_retention_s=campaign_retention_s,
                max_queued=max_queued,
                all_or_nothing=whole,
                traceparent=traceparent,
            )
        )
        written += len(chunk)
        writes.append((chunk, task))
        await asyncio.sleep(0)  # let the write go out while the next chunk is validated
    results = await asyncio.gather(*(task for _, task in writes), return_exceptions=True)
    failure: BaseException | None = None
    for (chunk, _), result in zip(writes, results, strict=True):
        if isinstance(result, BaseException):
            failure = failure or result
            continue
        if result == ["campaign_canceled"]:
            failure = failure or CampaignCanceled(view.campaign_id)
            continue
        if whole and result[:1] == ["full"]:  # per item, a refusal reads 'full:{waiting}')
            failure = failure or QueueFull(int(result[1]))
            continue
        for p, verdict in zip(chunk, result, strict=True):
            kind, _, rest = verdict.partition(":")
            if kind == "created":
                call_id, _, status = rest.partition(":")
                outcome.items.append({"index": p.index, "call_id": call_id, "status": status, "replayed": False})
                outcome.accepted += 1
            elif kind == "replay":
                outcome.items.append({"index": p.index, "call_id": rest, "replayed": True})
                outcome.replayed += 1
            elif kind == "full":
                outcome.waiting = max(outcome.waiting, int(rest))
                rule = "queue full: MAX_QUEUED_CALLS calls wait to be dialled; send this item again later"
                outcome.items.append(
                    {"index": p.index, "error": "queue_full", "errors": [{"field": f"calls[{p.index}]", "rule": rule}]}
                )
                outcome.rejected += 1
                outcome.full += 1
            else:
                rule = f"was already used for a different call ({rest}) in this campaign; use a new key"
                outcome.items.append({"index": p.index, "errors": [{"field": f"calls[{p.index}].key", "rule": rule}]})
                outcome.rejected += 1
    if failure is not None:
        raise failure
    return outcome


def _prepare_all(preparer: Preparer, items: list[Any], start: int, end: int) -> tuple[list[Prepared], list[Any]]:
    prepared: list[Prepared] = []
    rejected: list[dict[str, Any]] = []
    for index in range(start, end):
        item, errors = preparer.prepare(index, items[index])
        if item is not None:
            prepared.append(item)
        else:
            rejected.append({"index": index, "errors": errors})
    return prepared, rejected
