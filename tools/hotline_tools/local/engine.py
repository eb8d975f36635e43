"""The hotline on one machine: the template provisioned in moto, the real handlers, a local
event router (consumer queues drained into handlers, with Lambda's retries and OnFailure
dead-letter queue), a local scheduler on a movable clock, the contact-flow interpreter, and
the record of every SMS and event. The HTTP server and the tests both drive this class."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from hotline_core import clock as core_clock
from hotline_core.lambda_support import forget_clients
from hotline_tools.local.flow import Contact, FlowResult, load_flow, run_flow
from hotline_tools.local.host import FunctionHost, eventbridge_event, http_api_event
from hotline_tools.local.provision import WHOLE_EVENT, Stack, provision
from hotline_tools.local.template import ACCOUNT, REGION, ROOT, HttpRoute, Template
from hotline_tools.rows import SPECS, RowsInvalid, dynamo_item, parse_rows, validate_records

logger = logging.getLogger(__name__)

DEFAULT_LINE = "hotline"  # the contract's default for POST /_local/calls
DEFAULT_DIRECTORY = "tests/events/phonenumber.json"  # relative to the project root
# The lines are the template's contact flows (contact_flow/<line>.json). These are the numbers
# the shipped ones have always answered on locally; any other flow gets the next free one.
KNOWN_LINE_NUMBERS = {"hotline": "+815012340001", "benefits": "+815012340002"}
LINE_NUMBER_PREFIX = "+8150123400"
# How far one POST /_local/clock/advance may move the clock, and the clock in all: far enough
# for any answer window, TTL or lockout, and never past what datetime can hold.
MAX_ADVANCE_SECONDS = 10 * 366 * 24 * 3600
MAX_CLOCK_OFFSET = timedelta(days=100 * 366)
EVENT_LOG_RULE = "hotline-local-event-log"
EVERY_EVENT = {"source": [{"prefix": ""}]}


class BadRequest(ValueError):
    """A control-API request that cannot be carried out; the message says why."""


class LocalClock:
    """Real time plus an offset that `advance` grows."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        """How far `advance` has moved the clock ahead of real time."""
        with self._lock:
            return self._offset

    def advance(self, seconds: Any) -> datetime:
        """The one check of how far the clock may move (the control API passes the request's
        value straight through): a number from 0 to 10 years, the clock forward only."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise BadRequest('"seconds" must be a number >= 0')
        # Python's json reads NaN and Infinity (NaN fails every comparison, so the range check
        # refuses it too), and a huge number would overflow the clock.
        if not 0 <= seconds <= MAX_ADVANCE_SECONDS:
            raise BadRequest(
                f'"seconds" must be a finite number from 0 to {MAX_ADVANCE_SECONDS} (10 years): '
                "the clock only moves forward"
            )
        with self._lock:
            offset = self._offset + timedelta(seconds=seconds)
            if offset > MAX_CLOCK_OFFSET:
                raise BadRequest("the local clock may run at most 100 years ahead of real time")
            self._offset = offset
        return self.now()


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)  # one Set-Cookie header each


class LocalHotline:
    def __init__(
        self,
        *,
        root: Path = ROOT,
        directory: bytes | None = None,
        answer_window: int | None = None,
        base_url: str = "http://127.0.0.1:3000",
        lines: dict[str, str] | None = None,
        parameters: dict[str, str] | None = None,
        members: bytes | None = None,
        benefits: bytes | None = None,
    ) -> None:
        self.root = root
        self.clock = LocalClock()
        self._directory = directory
        # Parsed now, so a bad file fails before anything is provisioned.
        self._seeds = {
            kind: parse_rows(kind, data)
            for kind, data in (("members", members), ("benefits", benefits))
            if data is not None
        }
        params = dict(parameters or {})
        params.setdefault("PublicBaseUrl", base_url)
        if answer_window is not None:
            params["AnswerWindowSeconds"] = str(answer_window)
        self.template = Template(root / "template.yaml", parameters=params)
        # Each line is a contact flow the template ships; `lines` only renumbers them. Every
        # flow is checked whole now (a broken action on a branch no test reaches must not wait
        # for a caller), and loaded again on each call, so an edited flow takes effect.
        self.flows = self.template.flow_files()
        for path in self.flows.values():
            load_flow(path)
        self.lines = line_numbers(self.flows)
        unknown = set(lines or {}) - set(self.flows)
        if unknown:
            raise ValueError(f"no contact flow for line(s) {', '.join(sorted(unknown))}")
        self.lines.update(lines or {})
        renumbered = DEFAULT_LINE in (lines or {})
        if directory is not None and DEFAULT_LINE in self.lines and not renumbered:
            # With several hotlines, a call that names no number dials the first circle's.
            first = _first_circle_number(directory)
            self.lines[DEFAULT_LINE] = first or self.lines[DEFAULT_LINE]
        self._lock = threading.RLock()
        self._mock = mock_aws()
        self._sms: list[dict[str, str]] = []
        self._sms_seen = 0
        self._events: list[dict[str, Any]] = []
        self.dead_letters: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._handler_errors: list[tuple[str, str, str]] = []
        self._ticker: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        # Per schedule version (group, name, last modified): when its at() falls due, or why
        # it never will locally; and the one-time schedules that have fired and were kept.
        self._schedule_times: dict[tuple[str, str, str], datetime | str] = {}
        self._fired: set[tuple[str, str, str]] = set()
        self._replays = 0
        self._stop = threading.Event()
        self.stack: Stack
        self.host: FunctionHost

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> LocalHotline:
        self._mock.start()
        forget_clients()  # clients must be created inside the mock
        core_clock.use(self.clock.now)
        try:
            self.stack = provision(self.template, self.client)
            self._log_every_event()
            self.host = FunctionHost(self.stack)
            bucket = self.stack.output("DirectoryBucketName")
            directory = self._directory or (self.root / DEFAULT_DIRECTORY).read_bytes()
            self.client("s3").put_object(Bucket=bucket, Key="phonenumber.json", Body=directory)
            for kind, rows in self._seeds.items():
                self.load_rows(kind, rows)
        except BaseException:
            # Nothing half-started stays behind: the mock would patch boto3 for the process.
            core_clock.use(None)
            forget_clients()
            self._clients.clear()
            self._mock.stop()
            raise
        return self

    def run_in_background(self, tick_seconds: float = 0.5) -> None:
        """Fire schedules in real time when nobody advances the clock."""

        def tick() -> None:
            while not self._stop.wait(tick_seconds):
                try:
                    self.pump()
                except Exception:  # noqa: BLE001 - keep the ticker alive; the error is kept
                    self.errors.append(traceback.format_exc())

        self._ticker = threading.Thread(target=tick, name="hotline-local-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker:
            self._ticker.join(timeout=5)
        core_clock.use(None)
        forget_clients()
        self._mock.stop()

    def client(self, service: str) -> Any:
        # One client per service: creating a boto3 client costs tens of milliseconds, and the
        # router asks for them on every pump.
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        return self._clients[service]

    def _log_every_event(self) -> None:
        """/_local/events is every event the bus accepted (the runtime contract), whatever
        the template's own event-log rule keeps: a catch-all rule of the runtime's own."""
        bus = self.stack.output("EventBusName")
        sqs, events = self.client("sqs"), self.client("events")
        self._event_log_url = sqs.create_queue(QueueName=EVENT_LOG_RULE)["QueueUrl"]
        events.put_rule(Name=EVENT_LOG_RULE, EventBusName=bus, EventPattern=json.dumps(EVERY_EVENT))
        events.put_targets(
            Rule=EVENT_LOG_RULE,
            EventBusName=bus,
            Targets=[
                {
                    "Id": "log",
                    "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{EVENT_LOG_RULE}",
                }
            ],
        )

    # --- the control API ---------------------------------------------------------------
    def line_names(self) -> list[str]:
        """The lines a call may ring: one per contact flow the template ships."""
        return sorted(self.flows)

    def call(
        self,
        from_: str,
        *,
        line: str = DEFAULT_LINE,
        to: str | None = None,
        digits: str = "",
    ) -> dict[str, Any]:
        if not isinstance(line, str) or line not in self.flows:
            raise BadRequest(f'"line" must be one of {", ".join(self.line_names())}')
        flow = load_flow(self.flows[line])
        contact = Contact(
            contact_id=str(uuid.uuid4()),
            customer_number=from_,
            system_number=to or self.lines[line],
            digits=digits,
        )
        with self._lock:
            result: FlowResult = run_flow(flow, contact, self._invoke_from_flow)
            self.pump()
        return {
            "contact_id": result.contact_id,
            "prompts": result.prompts,
            "attributes": result.attributes,
            "lambda_invocations": result.lambda_invocations,
        }

    def _invoke_from_flow(self, arn: str, event: dict[str, Any]) -> Any:
        resolved = self.template.resolve({"Fn::Sub": arn}, self.stack.refs)
        fn = self.stack.function_by_arn(resolved)
        if fn is None:
            raise LookupError(f"the flow invokes {arn}, which the template does not define")
        return self._invoke_recorded(fn.spec.logical_id, event)

    def routes(self) -> list[tuple[str, HttpRoute]]:
        return [
            (fn.spec.logical_id, route)
            for fn in self.stack.functions.values()
            for route in fn.spec.routes
        ]

    def http(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> HttpResponse | None:
        """Serve a template HTTP API route; None when no route matches the path. `headers`
        may repeat a name (as (name, value) pairs), as a request's may."""
        path_only, _, query = path.partition("?")
        matched = [
            (logical_id, route, m)
            for logical_id, route in self.routes()
            if (m := route.pattern().match(path_only))
        ]
        if not matched:
            return None
        for logical_id, route, m in matched:
            if route.method in (method, "ANY"):
                event = http_api_event(
                    method,
                    path_only,
                    route_key=f"{route.method} {route.path}",
                    path_parameters=m.groupdict(),
                    body=body,
                    headers=headers,
                    query=query,
                )
                with self._lock:
                    result = self.host.invoke(logical_id, event)
                    self.pump()
                return _http_result(result)
        return HttpResponse(405, {"Content-Type": "text/plain"}, b"method not allowed")

    def load_rows(self, kind: str, rows: list[dict[str, Any]]) -> int:
        """Members or benefits into the provisioned tables, validated as `hotline members|
        benefits import` validates them: every row is checked before any is written."""
        try:
            valid = validate_records(kind, rows)
        except RowsInvalid as exc:
            raise BadRequest("; ".join(exc.problems)) from exc
        table = self.stack.output(SPECS[kind].table_output)
        db = self.client("dynamodb")
        with self._lock:
            for row in valid:
                db.put_item(TableName=table, Item=dynamo_item(kind, row))
        return len(valid)

    def sms(self, to: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            self._collect_sms()
            return [m for m in self._sms if to is None or m["to"] == to]

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            self._drain_event_log()
            return list(self._events)

    def advance(self, seconds: Any) -> dict[str, Any]:
        with self._lock:
            now = self.clock.advance(seconds)
            fired = self.pump()
        return {"now": now.isoformat(), "fired": fired}

    def replay(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Re-send archived events from [start, end] through the bus's rules, each marked with
        `replay-name`, as an EventBridge replay does."""
        if end < start:
            raise BadRequest("'from' must not be after 'to'")
        from moto.events.models import events_backends

        with self._lock:
            backend = events_backends[ACCOUNT][REGION]
            archive = backend.archives[self.stack.output("ArchiveName")]
            bus = backend.event_buses[self.stack.output("EventBusName")]
            self._replays += 1
            name = f"local-replay-{self._replays}-{uuid.uuid4().hex[:6]}"
            chosen = [e for e in archive.events if start <= _event_time(e) <= end]
            for event in chosen:
                replayed = dict(event, id=str(uuid.uuid4()), **{"replay-name": name})
                for rule in list(bus.rules.values()):
                    if rule.event_pattern.matches_event(replayed):
                        rule.send_to_targets(replayed, transform_input=False)
            self.pump()
        return {"replay_name": name, "replayed": len(chosen)}

    # --- the local router and scheduler ------------------------------------------------
    def pump(self) -> int:
        """Deliver every queued event and fire every due schedule until nothing is left.
        Returns the number of schedules fired."""
        fired = 0
        with self._lock:
            for _ in range(1000):  # bounded: a loop of events must not hang the runtime
                delivered = self._deliver_once()
                due = self._fire_due_schedules()
                fired += due
                if not delivered and not due:
                    break
            self._collect_sms()
            self._drain_event_log()
        return fired

    def _deliver_once(self) -> int:
        sqs = self.client("sqs")
        delivered = 0
        for fn in self.stack.functions.values():
            for url in fn.target_queues:
                while True:
                    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                    messages = got.get("Messages", [])
                    if not messages:
                        break
                    shaping = fn.target_inputs.get(url, WHOLE_EVENT)
                    for message in messages:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                        event = shaping.shape(eventbridge_event(message["Body"]))
                        self._invoke_async(fn.spec.logical_id, event)
                        delivered += 1
        return delivered

    @property
    def handler_errors(self) -> tuple[tuple[str, str, str], ...]:
        """Every exception a handler raised, oldest first, as (function logical id, exception
        type, message): also the ones a retry later made good and the ones the contact flow
        turned into its error branch, so a test can assert that no handler raised at all."""
        return tuple(self._handler_errors)

    def _invoke_recorded(self, logical_id: str, event: dict[str, Any]) -> Any:
        """One invocation; an exception is recorded in `handler_errors`, then re-raised."""
        try:
            return self.host.invoke(logical_id, event)
        except Exception as exc:
            self._handler_errors.append((logical_id, type(exc).__name__, str(exc)))
            raise

    def _invoke_async(self, logical_id: str, event: Any) -> None:
        """Lambda's asynchronous invocation: retries, then the OnFailure destination; without
        one, Lambda discards the event (each failure stays in `handler_errors`)."""
        fn = self.stack.functions[logical_id]
        attempts = fn.spec.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                self._invoke_recorded(logical_id, event)
                return
            except Exception as exc:  # noqa: BLE001 - a failing consumer is data, not a crash
                error = exc
                if attempt < attempts:
                    continue
        if fn.dead_letter_queue is None:
            return
        record = {
            "version": "1.0",
            "timestamp": self.clock.now().isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": fn.arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)},
        }
        self.dead_letters.append(record)
        self.client("sqs").send_message(
            QueueUrl=fn.dead_letter_queue, MessageBody=json.dumps(record, default=str)
        )

    def _fire_due_schedules(self) -> int:
        """Fire every enabled one-time (at()) schedule that is due and has not fired, oldest
        first; delete it after as ActionAfterCompletion DELETE says, else keep it, fired, as
        Scheduler does. A rate() or cron() schedule never fires locally: it is reported once
        (in `errors` and the log), not fired at a guessed time."""
        scheduler = self.client("scheduler")
        now = self.clock.now()
        due: list[tuple[datetime, tuple[str, str, str]]] = []
        seen: set[tuple[str, str, str]] = set()
        for page in scheduler.get_paginator("list_schedules").paginate():
            for summary in page["Schedules"]:
                group, name = summary.get("GroupName", "default"), summary["Name"]
                # A schedule changes only by UpdateSchedule: read each version once.
                key = (group, name, str(summary.get("LastModificationDate")))
                seen.add(key)
                if key in self._fired or summary.get("State", "ENABLED") != "ENABLED":
                    continue
                if key not in self._schedule_times:
                    found = scheduler.get_schedule(Name=name, GroupName=group)
                    self._schedule_times[key] = _schedule_time(found)
                    if isinstance(self._schedule_times[key], str):
                        self._report(f"schedule {group}/{name}: {self._schedule_times[key]}")
                at = self._schedule_times[key]
                if isinstance(at, datetime) and at <= now:
                    due.append((at, key))
        # Forget the schedules deleted since (a cancelled timer): they cannot fire again.
        self._schedule_times = {k: v for k, v in self._schedule_times.items() if k in seen}
        self._fired &= seen
        for _, key in sorted(due):
            self._fire(scheduler, key)
        return len(due)

    def _fire(self, scheduler: Any, key: tuple[str, str, str]) -> None:
        group, name, _ = key
        schedule = scheduler.get_schedule(Name=name, GroupName=group)
        target = schedule["Target"]
        fn = self.stack.function_by_arn(target["Arn"])
        if fn is None:
            self._report(f"schedule {group}/{name} targets {target['Arn']}, no template function")
        else:
            self._invoke_async(fn.spec.logical_id, json.loads(target.get("Input", "{}")))
        if schedule.get("ActionAfterCompletion") == "DELETE":
            scheduler.delete_schedule(Name=name, GroupName=group)
            self._schedule_times.pop(key, None)
        else:
            self._fired.add(key)

    def _report(self, problem: str) -> None:
        """Something the runtime cannot do as AWS would, found while running."""
        self.errors.append(problem)
        logger.warning("hotline local: %s", problem)

    def _collect_sms(self) -> None:
        from moto.sns.models import sns_backends

        sent = list(sns_backends[ACCOUNT][REGION].sms_messages.values())
        stamp = self.clock.now().isoformat()
        for to, body in sent[self._sms_seen :]:
            self._sms.append({"to": to, "body": body, "sent_at": stamp})
        self._sms_seen = len(sent)

    def _drain_event_log(self) -> None:
        sqs = self.client("sqs")
        while True:
            got = sqs.receive_message(QueueUrl=self._event_log_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return
            for message in messages:
                sqs.delete_message(
                    QueueUrl=self._event_log_url, ReceiptHandle=message["ReceiptHandle"]
                )
                self._events.append(eventbridge_event(message["Body"]))


def line_numbers(flows: dict[str, Path]) -> dict[str, str]:
    """A local number for each line the template has a flow for: the known one if it has
    one, else the next unused +81501234000N; ordered by number (hotline first)."""
    numbers = {line: KNOWN_LINE_NUMBERS[line] for line in flows if line in KNOWN_LINE_NUMBERS}
    taken = set(KNOWN_LINE_NUMBERS.values())
    candidates = (f"{LINE_NUMBER_PREFIX}{n:02d}" for n in range(1, 100))
    for line in sorted(set(flows) - set(numbers)):
        numbers[line] = next(c for c in candidates if c not in taken)
    return dict(sorted(numbers.items(), key=lambda item: item[1]))


def _first_circle_number(directory: bytes) -> str | None:
    from hotline_core.directory import DirectoryError, parse_directory

    try:
        circles = parse_directory(directory).circles
    except DirectoryError:
        return None  # reported when the Lambda loads it, as on AWS
    return circles[0].number


_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")


def _schedule_time(schedule: dict[str, Any]) -> datetime | str:
    """When a one-time schedule falls due, or why the local scheduler will never fire it."""
    expression = schedule.get("ScheduleExpression", "")
    match = _AT.match(expression)
    if not match:
        return (
            f"{expression} is not emulated by the local scheduler (it fires one-time at() "
            "schedules only); this schedule will not fire"
        )
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(schedule.get("ScheduleExpressionTimezone") or "UTC")
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=zone)


def _event_time(event: dict[str, Any]) -> datetime:
    value = event["time"]
    if isinstance(value, int | float):  # moto's archive keeps put_events' unix time
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _http_result(result: dict[str, Any]) -> HttpResponse:
    body = result.get("body", "") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    # Payload format 2.0: each entry of `cookies` becomes its own Set-Cookie header.
    cookies = [str(cookie) for cookie in result.get("cookies") or []]
    return HttpResponse(int(result.get("statusCode", 200)), headers, raw, cookies)
