"""The hotline on one machine: the template provisioned in moto, the real handlers, a local
event router, a local scheduler and Lambda's asynchronous invocation on a movable clock, the
contact-flow interpreter, and the record of every SMS and event. The HTTP server and the tests
both drive this class.

It is as unkind as AWS (DESIGN.md, "AWS as it really behaves"), on its own clock:

- every asynchronous invocation (a bus event for a consumer, a Scheduler firing, a redrive)
  waits in a queue (`pending()`); a failed one is retried 60 s later, then 120 s after that
  failure, as the function's MaximumRetryAttempts allows, and an event older than its
  MaximumEventAgeInSeconds is not run again; then Lambda's record goes to OnFailure. Nothing
  is retried on the spot: only the clock reaching the moment runs it.
- Scheduler fires a one-time at() schedule at some moment inside its minute (or inside its
  flexible window), not at the second written; an at() already past when the schedule is
  created or updated never fires (AWS's documentation does not say it would).
- tests may hold bus deliveries back (`delay_deliveries`) and choose which due invocation runs
  next (`choose_next`), so consumers run in an order AWS could also choose.
- faults on demand: the next N calls the handlers make to a service fail as the service
  would answer (`arm_fault`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import math
import random
import re
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from hotline_core import clock as core_clock
from hotline_core.runtime import clients
from hotline_core.runtime.clients import forget_clients
from hotline_tools.local.flow import Contact, FlowResult, load_flow, run_flow
from hotline_tools.local.host import FunctionHost, eventbridge_event, http_api_event
from hotline_tools.local.line_local import (
    DEFAULT_CHANNEL_SECRET,
    SECRET_NAME,
    SECRET_PARAMETER,
    LineInputError,
    LocalLine,
)
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
# Lambda's asynchronous invocation: the wait before attempt 2 and before attempt 3 (Lambda
# allows at most 2 retries), and how long an event may wait when the function's
# EventInvokeConfig sets no MaximumEventAgeInSeconds (Lambda's default, 6 hours).
RETRY_DELAYS = (60, 120)
DEFAULT_MAX_EVENT_AGE = 6 * 3600
# Bounds against a loop of events: invocations run by one pump, clock steps in one advance.
MAX_RUNS_PER_PUMP = 1000
MAX_STEPS_PER_ADVANCE = 10_000
# What an armed fault answers when it names no error: each service's own "slow down". None
# for SMS: SNS answers Throttling, End User Messaging SMS ThrottlingException.
FAULT_DEFAULTS: dict[str, str | None] = {
    "sms": None,
    "scheduler": "ThrottlingException",
    "events": "ThrottlingException",
    "dynamodb": "ProvisionedThroughputExceededException",
    "line": "500",  # the HTTP status the fake Messaging API answers
}
MAX_FAULT_TIMES = 10_000
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,99}$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_HTTP_ERROR = re.compile(r"^[45][0-9][0-9]$")
# Anything in a free-text error message that could be a phone number (E.164 or written with
# spaces, dashes or brackets): never shown in a dead letter's summary.
_NUMBER_IN_TEXT = re.compile(r"\+?\d[\d\s\-().]{5,}\d")
# A URL no moto backend answers: a request that an armed fault answers is pointed here, so the
# emulator does not also carry it out.
_FAULT_URL = "https://hotline-local-fault.invalid/"


class BadRequest(ValueError):
    """A control-API request that cannot be carried out; the message says why."""


class NotFound(LookupError):
    """A control-API request names something that does not exist (a 404)."""


@dataclass(frozen=True)
class Invocation:
    """One asynchronous invocation of a function, waiting in Lambda's queue.

    `id` is unique and increasing (a retry is a new invocation with a new id); `function` the
    template's logical id; `event` the payload the handler gets (a dict, unless a rule's
    InputPath picks something else); `due_at` when the local clock lets it run; `attempt` is
    1-based; `source` says where it came from: "event" (a bus delivery), "schedule" (a
    Scheduler firing), "connect" (a contact flow's ASYNCHRONOUS invocation) or "redrive"
    (`LocalHotline.redrive`). A retry keeps its source."""

    id: int
    function: str
    event: Any
    due_at: datetime
    attempt: int
    source: str


@dataclass
class _Fault:
    service: str
    to: str | None
    remaining: int
    error: str | None

    def listed(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "to": self.to,
            "times": self.remaining,
            "error": self.error,
        }


@dataclass(frozen=True)
class _Timer:
    """A one-time schedule version as the local scheduler sees it: when it will fire, or why
    it never will."""

    fires_at: datetime | None
    never: str = ""
    enabled: bool = True


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

    def check(self, seconds: Any) -> timedelta:
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
        step = timedelta(seconds=seconds)
        with self._lock:
            if self._offset + step > MAX_CLOCK_OFFSET:
                raise BadRequest("the local clock may run at most 100 years ahead of real time")
        return step

    def move_to(self, offset: timedelta) -> None:
        """Set the offset, forward only (an earlier offset is ignored)."""
        with self._lock:
            self._offset = max(self._offset, offset)

    def advance(self, seconds: Any) -> datetime:
        step = self.check(seconds)
        self.move_to(self.offset + step)
        return self.now()


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)  # one Set-Cookie header each


class LocalHotline:
    """The whole hotline in this process. Hooks for tests (plain attributes, None by default):

    - `delay_deliveries(invocation) -> seconds`: each first delivery of a bus event to a
      consumer (source "event", attempt 1) is held that long on the clock before it is due,
      so a consumer of a later event may run before a consumer of an earlier one. Retries,
      schedules and redrives are not delayed.
    - `choose_next(due) -> index`: among the invocations due now (ordered by (due_at, id)),
      which runs next; by default the first.
    - `schedule_moment(name, earliest, latest) -> datetime`: when a one-time schedule
      ("group/name") fires, inside the window Scheduler may fire it in; by default a moment
      drawn from a random generator seeded with `seed`, in the order schedules are seen.
    """

    delay_deliveries: Callable[[Invocation], float] | None = None
    choose_next: Callable[[list[Invocation]], int] | None = None
    schedule_moment: Callable[[str, datetime, datetime], datetime] | None = None

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
        seed: int = 0,
        line_channel_secret: str = DEFAULT_CHANNEL_SECRET,
    ) -> None:
        self.root = root
        self.clock = LocalClock()
        try:
            self.line = LocalLine(line_channel_secret, clock=self.clock.now, fault=self._line_fault)
        except LineInputError as exc:
            raise ValueError(str(exc)) from exc
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
        if SECRET_PARAMETER in self.template.doc.get("Parameters", {}):
            # LINE is on locally: the secret the runtime creates in moto, with the channel
            # secret given and the fake Messaging API's access token.
            params.setdefault(SECRET_PARAMETER, SECRET_NAME)
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
        # Lambda's OnFailure records, as Lambda writes them (also sent to the function's
        # OnFailure queue); `_letters` holds, by the same index, the id and function of each.
        self.dead_letters: list[dict[str, Any]] = []
        self._letters: list[tuple[str, str, str | None]] = []  # (id, function, SQS message id)
        self.errors: list[str] = []
        self._handler_errors: list[tuple[str, str, str]] = []
        self._ticker: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        # Lambda's queue of asynchronous invocations, and when each one's event first entered
        # it (its age counts from there, across retries).
        self._pending: list[Invocation] = []
        self._queued_at: dict[int, datetime] = {}
        self._next_id = 1
        # Per schedule version (group, name, last modified): when it fires, or why it never
        # will locally; and the one-time schedules that have fired and were kept.
        self._schedule_times: dict[tuple[str, str, str], _Timer] = {}
        self._fired: set[tuple[str, str, str]] = set()
        # Not for secrets: a reproducible draw of each schedule's moment in its window.
        self._rng = random.Random(seed)  # noqa: S311
        self._faults: list[_Fault] = []
        self._faults_lock = threading.Lock()
        self._hooked_session: Any = None
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
            # The handlers never reach LINE from here, whether or not the template uses it.
            self.line.install()
            if self.line_on:
                self.line.create_secret(self.client("secretsmanager"))
            self._log_every_event()
            self.host = FunctionHost(self.stack)
            self._hook_handler_clients()
            bucket = self.stack.output("DirectoryBucketName")
            directory = self._directory or (self.root / DEFAULT_DIRECTORY).read_bytes()
            self.client("s3").put_object(Bucket=bucket, Key="phonenumber.json", Body=directory)
            for kind, rows in self._seeds.items():
                self.load_rows(kind, rows)
        except BaseException:
            # Nothing half-started stays behind: the mock would patch boto3 for the process.
            self.line.uninstall()
            core_clock.use(None)
            forget_clients()
            self._clients.clear()
            self._mock.stop()
            raise
        return self

    def run_in_background(self, tick_seconds: float = 0.5) -> None:
        """Run what falls due (schedules, Lambda's retries) in real time when nobody advances
        the clock."""

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
        self.line.uninstall()
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
        from_: str | None,
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
            result: FlowResult = run_flow(
                flow, contact, self._invoke_from_flow, invoke_async=self._queue_from_flow
            )
            self.pump()
        return {
            "contact_id": result.contact_id,
            "prompts": result.prompts,
            "spoken": [{"text": said.text, "voice": said.voice} for said in result.spoken],
            "attributes": result.attributes,
            "lambda_invocations": result.lambda_invocations,
            "async_invocations": result.async_invocations,
        }

    def _flow_function(self, arn: str) -> str:
        resolved = self.template.resolve({"Fn::Sub": arn}, self.stack.refs)
        fn = self.stack.function_by_arn(resolved)
        if fn is None:
            raise LookupError(f"the flow invokes {arn}, which the template does not define")
        return fn.spec.logical_id

    def _invoke_from_flow(self, arn: str, event: dict[str, Any]) -> Any:
        return self._invoke_recorded(self._flow_function(arn), event)

    def _queue_from_flow(self, arn: str, event: dict[str, Any]) -> None:
        """An ASYNCHRONOUS invocation from a flow: into Lambda's queue, and run at once, as
        Lambda picks it up while the flow goes on to its greeting (before the flow's next
        synchronous invocation), under the function's EventInvokeConfig like any other: a
        failure is retried only as MaximumRetryAttempts allows (0 for the warm-ups)."""
        invocation = self._queue(
            self._flow_function(arn), event, source="connect", due_at=self.clock.now()
        )
        self._run(invocation)

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
                    self._hook_handler_clients()
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
            pin_key = self._pin_key() if kind == "benefits" else None
            for row in valid:
                db.put_item(TableName=table, Item=dynamo_item(kind, row, pin_key))
        return len(valid)

    def _pin_key(self) -> bytes:
        """The stack's PIN key, from the secret the template generated (as the importer reads
        it on AWS)."""
        secret = self.stack.output("PinKeySecretArn")
        value = self.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
        return str(value).encode("utf-8")

    def sms(self, to: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            self._collect_sms()
            return [m for m in self._sms if to is None or m["to"] == to]

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            self._drain_event_log()
            return list(self._events)

    def advance(self, seconds: Any) -> dict[str, Any]:
        """Move the clock `seconds` forward, through every moment something falls due on the
        way, in time order: a retry due 60 s from now runs with the clock showing +60 s, then
        whatever that run makes due, and so on, as on AWS. Returns the clock and how many
        schedules fired."""
        with self._lock:
            step = self.clock.check(seconds)
            start, start_offset = self.clock.now(), self.clock.offset
            end = start + step
            fired = self.pump()  # first, what is due now (and the schedules made since)
            steps = 0
            while (moment := self._next_moment()) is not None and moment <= end:
                if steps == MAX_STEPS_PER_ADVANCE:
                    self._report(
                        f"advance stopped stepping after {MAX_STEPS_PER_ADVANCE} due moments; "
                        "the clock jumps to the end"
                    )
                    break
                self.clock.move_to(start_offset + (moment - start))
                fired += self.pump()
                steps += 1
            self.clock.move_to(start_offset + step)
            fired += self.pump()
            now = self.clock.now()
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

    # --- the local router, Lambda's async queue and the scheduler -------------------------
    def pending(self) -> list[Invocation]:
        """Every asynchronous invocation not yet run, due or not, ordered by (due_at, id)."""
        with self._lock:
            return sorted(self._pending, key=_order)

    def pump(self) -> int:
        """Deliver everything due at the clock's current moment: queued bus events and due
        schedules into Lambda's queue, then run due invocations (one at a time, the first or
        `choose_next`'s pick) until nothing due is left; bounded, so a loop of events cannot
        hang the runtime. Returns the number of schedules fired."""
        fired = runs = 0
        with self._lock:
            while True:
                self._deliver_queued()
                fired += self._fire_due_schedules()
                due = self._due()
                if not due:
                    break
                if runs == MAX_RUNS_PER_PUMP:
                    self._report(
                        f"pump stopped after {MAX_RUNS_PER_PUMP} invocations in a row (a loop "
                        "of events?); the rest stays pending"
                    )
                    break
                self._run(due[self._pick(due)])
                runs += 1
            self._collect_sms()
            self._drain_event_log()
        return fired

    def _due(self) -> list[Invocation]:
        now = self.clock.now()
        return sorted((i for i in self._pending if i.due_at <= now), key=_order)

    def _pick(self, due: list[Invocation]) -> int:
        if self.choose_next is None:
            return 0
        index = self.choose_next(list(due))
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(due):
            raise ValueError(f"choose_next returned {index!r}, not an index into {len(due)}")
        return index

    def _next_moment(self) -> datetime | None:
        """The earliest moment after now when an invocation or a schedule falls due."""
        now = self.clock.now()
        moments = [i.due_at for i in self._pending if i.due_at > now]
        moments += [
            t.fires_at
            for key, t in self._schedule_times.items()
            if t.fires_at is not None and t.enabled and key not in self._fired and t.fires_at > now
        ]
        return min(moments, default=None)

    def _queue(
        self,
        function: str,
        event: Any,
        *,
        source: str,
        due_at: datetime,
        attempt: int = 1,
        queued_at: datetime | None = None,
    ) -> Invocation:
        invocation = Invocation(self._next_id, function, event, due_at, attempt, source)
        self._next_id += 1
        if source == "event" and attempt == 1 and self.delay_deliveries is not None:
            held = self.delay_deliveries(invocation)
            if isinstance(held, bool) or not isinstance(held, int | float) or not held >= 0:
                raise ValueError(f"delay_deliveries returned {held!r}, not seconds >= 0")
            invocation = dataclasses.replace(invocation, due_at=due_at + timedelta(seconds=held))
        self._pending.append(invocation)
        self._queued_at[invocation.id] = queued_at or self.clock.now()
        return invocation

    def _deliver_queued(self) -> int:
        """Move what the rules delivered to the functions' target queues into Lambda's queue:
        EventBridge hands an event to Lambda, which accepts it at once and runs it later."""
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
                        now = self.clock.now()
                        self._queue(fn.spec.logical_id, event, source="event", due_at=now)
                        delivered += 1
        return delivered

    @property
    def handler_errors(self) -> tuple[tuple[str, str, str], ...]:
        """Every exception a handler raised, oldest first, as (function logical id, exception
        type, message): also the ones a retry later made good and the ones the contact flow
        turned into its error branch, so a test can assert that no handler raised at all."""
        return tuple(self._handler_errors)

    def _invoke_recorded(self, logical_id: str, event: Any) -> Any:
        """One invocation; an exception is recorded in `handler_errors`, then re-raised."""
        self._hook_handler_clients()
        try:
            return self.host.invoke(logical_id, event)
        except Exception as exc:
            self._handler_errors.append((logical_id, type(exc).__name__, str(exc)))
            raise

    def _run(self, invocation: Invocation) -> None:
        """Run one due invocation as Lambda's asynchronous invocation does: an event older
        than the function's MaximumEventAgeInSeconds is not run but goes to OnFailure; a
        failure is retried RETRY_DELAYS later while MaximumRetryAttempts allows, then goes to
        OnFailure (without one, Lambda discards it; each failure stays in `handler_errors`)."""
        self._pending.remove(invocation)
        queued_at = self._queued_at.pop(invocation.id)
        fn = self.stack.functions[invocation.function]
        now = self.clock.now()
        max_age = fn.max_event_age if fn.max_event_age is not None else DEFAULT_MAX_EVENT_AGE
        if now - queued_at > timedelta(seconds=max_age):
            self._dead_letter(invocation, "EventAgeExceeded", invocation.attempt - 1, None)
            return
        try:
            self._invoke_recorded(invocation.function, invocation.event)
        except Exception as exc:  # noqa: BLE001 - a failing consumer is data, not a crash
            if invocation.attempt <= min(fn.spec.max_retries, len(RETRY_DELAYS)):
                # Counted from the moment the attempt ran (a handler's own real-time retries
                # must not push the next attempt later on the local clock).
                wait = RETRY_DELAYS[invocation.attempt - 1]
                self._queue(
                    invocation.function,
                    invocation.event,
                    source=invocation.source,
                    due_at=now + timedelta(seconds=wait),
                    attempt=invocation.attempt + 1,
                    queued_at=queued_at,
                )
            else:
                self._dead_letter(invocation, "RetriesExhausted", invocation.attempt, exc)

    def _dead_letter(
        self, invocation: Invocation, condition: str, invoked: int, error: Exception | None
    ) -> None:
        """Lambda's record to the OnFailure destination, when the function has one."""
        fn = self.stack.functions[invocation.function]
        if fn.dead_letter_queue is None:
            return
        request_id = str(uuid.uuid4())
        response: dict[str, Any] = {"statusCode": 200}
        payload: dict[str, Any] | None = None
        if error is not None:
            response["functionError"] = "Unhandled"
            payload = {"errorType": type(error).__name__, "errorMessage": str(error)}
        record = {
            "version": "1.0",
            "timestamp": self.clock.now().isoformat(),
            "requestContext": {
                "requestId": request_id,
                "functionArn": fn.arn,
                "condition": condition,
                "approximateInvokeCount": invoked,
            },
            "requestPayload": invocation.event,
            "responseContext": response,
            **({"responsePayload": payload} if payload is not None else {}),
        }
        sent = self.client("sqs").send_message(
            QueueUrl=fn.dead_letter_queue, MessageBody=json.dumps(record, default=str)
        )
        self.dead_letters.append(record)
        self._letters.append((request_id, invocation.function, sent.get("MessageId")))

    # --- the directory ------------------------------------------------------------------
    def push_directory(self, raw: bytes) -> int:
        """`hotline directory push FILE --local`: validated as the Lambda validates it, then
        uploaded to the stack's directory bucket, as on AWS; warm functions take it up within
        a minute of the local clock. The number of people in it."""
        from hotline_core.directory import DirectoryError, parse_directory

        try:
            directory = parse_directory(raw)
        except DirectoryError as exc:
            raise BadRequest("; ".join(exc.problems)) from exc
        bucket = self.stack.output("DirectoryBucketName")
        with self._lock:
            self.client("s3").put_object(
                Bucket=bucket, Key="phonenumber.json", Body=raw, ContentType="application/json"
            )
            self._directory = raw
        return len(directory.people)

    # --- forgetting a person -------------------------------------------------------------
    def forget(self, phone: Any) -> dict[str, Any]:
        """`hotline directory forget PHONE --local`: what `hotline_tools.forget` removes on AWS,
        here; what was removed, and what cannot be."""
        from hotline_tools.forget import Places, forget, valid_phone

        if not isinstance(phone, str) or not valid_phone(phone):
            raise BadRequest('"phone" must be an E.164 phone number (like +819011112222)')

        def ref(logical_id: str) -> str:
            return str(self.template.resolve({"Ref": logical_id}, self.stack.refs))

        # The template's queues (its dead-letter queues), not the runtime's own delivery ones.
        own = {url for fn in self.stack.functions.values() for url in fn.target_queues}
        own.add(self._event_log_url)
        queues = tuple(
            url for url in self.client("sqs").list_queues().get("QueueUrls", []) if url not in own
        )
        places = Places(
            requests_table=ref("RequestsTable"),
            claims_table=ref("IdempotencyTable"),
            attempts_table=ref("PinAttemptsTable"),
            schedule_group=ref("AnswerScheduleGroup"),
            queues=queues,
            line_links_table=ref("LineLinksTable") if "LineLinksTable" in self.stack.refs else None,
        )
        with self._lock:
            done = forget(phone, places, self.client)
            # The runtime's own record of dead letters goes the same way as the queues'.
            self.dead_letters[:] = [r for r in self.dead_letters if phone not in json.dumps(r)]
        return {"forgotten": done.summary(), "cannot": done.notes}

    # --- LINE ----------------------------------------------------------------------------
    @property
    def line_on(self) -> bool:
        """The template takes a LINE secret and the runtime passed the one it creates."""
        return self.template.parameters.get(SECRET_PARAMETER) == SECRET_NAME

    def _line_links(self) -> Any:
        from hotline_core.adapters.line_links import LineLinks

        if not self.line_on or "LineLinksTable" not in self.stack.refs:
            raise BadRequest("LINE is off in this template (no LineSecretName, no LineLinksTable)")
        table = str(self.template.resolve({"Ref": "LineLinksTable"}, self.stack.refs))
        return LineLinks(self.client("dynamodb"), table, clock=self.clock.now)

    def _directory_phone(self, phone: Any) -> str:
        from hotline_core.directory import parse_directory

        if not isinstance(phone, str) or not _PHONE.match(phone):
            raise BadRequest('"phone" must be an E.164 phone number (like +819011112222)')
        raw = self._directory or (self.root / DEFAULT_DIRECTORY).read_bytes()
        if phone not in {person.phone for person in parse_directory(raw).people}:
            raise BadRequest("that phone is not in the directory")
        return phone

    def line_messages(self) -> list[dict[str, Any]]:
        """`GET /_local/line`: every message the handlers sent to LINE, oldest first."""
        return self.line.listed()

    def line_code(self, phone: Any) -> str:
        """`POST /_local/line/codes`: a one-time link code for a phone in the directory."""
        with self._lock:
            code: str = self._line_links().new_code(self._directory_phone(phone))
        return code

    def line_send(self, data: dict[str, Any]) -> dict[str, Any]:
        """`POST /_local/line/send`: a user's action, posted as LINE posts it to the webhook."""
        if not self.line_on:
            raise BadRequest("LINE is off in this template (no LineSecretName)")
        try:
            return self.line.send(data, self.http)
        except LineInputError as exc:
            raise BadRequest(str(exc)) from exc

    def line_links(self) -> list[dict[str, Any]]:
        """Every linked phone: `phone`, `user_id`, `linked_at`, oldest link first."""
        with self._lock:
            links: list[dict[str, Any]] = self._line_links().links()
        return sorted(links, key=lambda link: str(link.get("linked_at", "")))

    def line_unlink(self, phone: Any) -> bool:
        """Take a phone's LINE link away (both items); whether there was one."""
        if not isinstance(phone, str) or not _PHONE.match(phone):
            raise BadRequest('"phone" must be an E.164 phone number (like +819011112222)')
        with self._lock:
            return bool(self._line_links().unlink_phone(phone))

    # --- dead letters ------------------------------------------------------------------
    def dead_letter_entries(self) -> list[dict[str, Any]]:
        """Each dead letter, oldest first: Lambda's record with a summary added (`id`,
        `function`, `event_type`, `request_id`, `error`, `failed_at`), never a phone number in
        the summary."""
        with self._lock:
            return [
                {**record, **_summary(letter_id, function, record)}
                for record, (letter_id, function, _) in zip(
                    self.dead_letters, self._letters, strict=True
                )
            ]

    def redrive(self, letter_id: str | None = None) -> int:
        """Re-invoke one dead letter (`letter_id`) or all of them asynchronously, each once,
        with its original payload: it leaves the list and its OnFailure queue, and goes
        through Lambda's queue like any invocation (it may fail, be retried and land here
        again, as a new dead letter). An unknown id is NotFound. Returns how many."""
        with self._lock:
            chosen = [
                index
                for index, (found, _, _) in enumerate(self._letters)
                if letter_id is None or found == letter_id
            ]
            if letter_id is not None and not chosen:
                raise NotFound(f"no dead letter {letter_id!r}")
            now = self.clock.now()
            for index in reversed(chosen):
                record = self.dead_letters.pop(index)
                _, function, message_id = self._letters.pop(index)
                self._unqueue_letter(function, message_id)
                self._queue(function, record["requestPayload"], source="redrive", due_at=now)
            self.pump()
        return len(chosen)

    def _unqueue_letter(self, function: str, message_id: str | None) -> None:
        """Take a redriven record out of its OnFailure queue, whoever last received it (moto
        keeps a received message invisible for its visibility timeout, in real time)."""
        from moto.sqs.models import sqs_backends

        url = self.stack.functions[function].dead_letter_queue
        if url is None or message_id is None:
            return
        queue = sqs_backends[ACCOUNT][REGION].queues.get(url.rsplit("/", 1)[1])
        if queue is not None:
            queue._messages = [m for m in queue._messages if m.id != message_id]

    # --- faults ------------------------------------------------------------------------
    def arm_fault(
        self,
        service: Any,
        *,
        times: Any = 1,
        to: Any = None,
        error: Any = None,
    ) -> dict[str, Any]:
        """Make the next `times` matching AWS calls the handlers make fail with `error` (a
        botocore ClientError with that code, as the service would answer), then work again.
        Each HTTP attempt botocore sends counts, so a handler's own retries use them up.
        "sms" matches SNS Publish to a phone number and End User Messaging SendTextMessage
        (only those to `to`, when given); "scheduler" every Scheduler call; "events" PutEvents;
        "dynamodb" every DynamoDB call; "line" every call to the (fake) LINE Messaging API,
        answered with the HTTP status `error` (default 500). The runtime's own calls are never
        affected."""
        if not isinstance(service, str) or service not in FAULT_DEFAULTS:
            raise BadRequest(f'"service" must be one of {", ".join(FAULT_DEFAULTS)}')
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise BadRequest('"times" must be a positive whole number')
        if times > MAX_FAULT_TIMES:
            raise BadRequest(f'"times" may be at most {MAX_FAULT_TIMES}')
        if to is not None and service != "sms":
            raise BadRequest('"to" narrows only "sms" faults')
        if to is not None and (not isinstance(to, str) or not _PHONE.match(to)):
            raise BadRequest('"to" must be a phone number in E.164 form, like "+81…"')
        if service == "line":
            if isinstance(error, int) and not isinstance(error, bool):
                error = str(error)
            if error is not None and (not isinstance(error, str) or not _HTTP_ERROR.match(error)):
                raise BadRequest('"error" for "line" must be an HTTP error status, 400 to 599')
        elif error is not None and (not isinstance(error, str) or not _ERROR_CODE.match(error)):
            raise BadRequest('"error" must be an AWS error code, like "ThrottlingException"')
        fault = _Fault(service, to, times, error if error is not None else FAULT_DEFAULTS[service])
        with self._faults_lock:
            self._faults.append(fault)
            return fault.listed()

    def faults(self) -> list[dict[str, Any]]:
        """The faults still armed, oldest first, each with the calls it will still fail."""
        with self._faults_lock:
            return [fault.listed() for fault in self._faults]

    def clear_faults(self) -> list[dict[str, Any]]:
        """Disarm every fault (the provider recovered); what was still armed."""
        with self._faults_lock:
            cleared = [fault.listed() for fault in self._faults]
            self._faults.clear()
        return cleared

    def _line_fault(self) -> int | None:
        """The fake Messaging API asks on every call: the HTTP status of the first armed
        "line" fault (used up one call), or None."""
        with self._faults_lock:
            for fault in self._faults:
                if fault.service == "line":
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return int(fault.error or FAULT_DEFAULTS["line"] or "500")
        return None

    def _hook_handler_clients(self) -> None:
        """The handlers' clients come from one botocore session (hotline_core.runtime.clients);
        a session made since the last check (forget_clients) gets the fault hook, ahead of
        moto's, before any client is made from it."""
        session = clients._session()
        if session is self._hooked_session:
            return
        session.get_component("event_emitter").register_first(
            "before-send", self._fault_hook, unique_id="hotline-local-faults"
        )
        self._hooked_session = session

    def _fault_hook(self, request: Any, event_name: str = "", **_kw: Any) -> AWSResponse | None:
        """before-send, once per HTTP attempt: answer it with the error of the first armed
        fault it matches. Only calls made while a handler runs, on its thread, can match."""
        if not self._faults or not self.host.in_handler():
            return None
        _, service_id, operation = [*event_name.split(".", 2), "", ""][:3]
        with self._faults_lock:
            for fault in self._faults:
                if _matches(fault, service_id, operation, request):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    break
            else:
                return None
        code = fault.error or ("Throttling" if service_id == "sns" else "ThrottlingException")
        request.url = _FAULT_URL  # moto's own before-send handler must not carry it out
        return _error_response(service_id, code)

    # --- the scheduler -----------------------------------------------------------------
    def fire_times(self) -> dict[str, datetime]:
        """Every one-time schedule the local scheduler will still fire, by "group/name", with
        the moment it fires (see `schedule_moment`)."""
        with self._lock:
            self._scan_schedules()  # the schedules made since the last pump, timed; none fired
            return {
                f"{key[0]}/{key[1]}": t.fires_at
                for key, t in self._schedule_times.items()
                if t.fires_at is not None and t.enabled and key not in self._fired
            }

    def _fire_due_schedules(self) -> int:
        """Fire every enabled one-time (at()) schedule whose moment has come, oldest first:
        its target invoked asynchronously (Scheduler's call succeeds once Lambda queues the
        event; what the function does with it is Lambda's retries), then deleted as
        ActionAfterCompletion DELETE says, else kept, fired, as Scheduler does."""
        due = self._scan_schedules()
        scheduler = self.client("scheduler")
        for key in due:
            self._fire(scheduler, key)
        return len(due)

    def _scan_schedules(self) -> list[tuple[str, str, str]]:
        """Read the schedules Scheduler holds; each version is timed once, when first seen
        (see `_timer`). A rate() or cron() schedule, or an at() already past, never fires
        locally: it is reported once (in `errors` and the log). Returns those due now, oldest
        first."""
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
                if key in self._fired:
                    continue
                if key not in self._schedule_times:
                    found = scheduler.get_schedule(Name=name, GroupName=group)
                    self._schedule_times[key] = self._timer(f"{group}/{name}", found, now)
                    if self._schedule_times[key].never:
                        self._report(f"schedule {group}/{name}: {self._schedule_times[key].never}")
                timer = self._schedule_times[key]
                if timer.enabled and timer.fires_at is not None and timer.fires_at <= now:
                    due.append((timer.fires_at, key))
        # Forget the schedules deleted since (a cancelled timer): they cannot fire again.
        self._schedule_times = {k: v for k, v in self._schedule_times.items() if k in seen}
        self._fired &= seen
        return [key for _, key in sorted(due)]

    def _timer(self, name: str, schedule: dict[str, Any], seen: datetime) -> _Timer:
        """When a schedule version first seen at `seen` fires, as EventBridge Scheduler
        documents it: "with 60 second precision ... if you set your schedule to run at 1:00,
        it will invoke the target API between 1:00:00 and 1:00:59", so anywhere in the minute
        of its at() (the seconds written do not make it later, nor keep it from being up to
        59 s early); with a FLEXIBLE time window, anywhere from that minute's start to
        MaximumWindowInMinutes after the at() time. Never before it was seen. An at() already
        past when seen never fires (AWS's documentation does not say it fires at once: the
        unkind reading)."""
        enabled = schedule.get("State", "ENABLED") == "ENABLED"
        at = _schedule_time(schedule)
        if isinstance(at, str):
            return _Timer(None, at, enabled)
        if at < seen:
            return _Timer(
                None,
                f"{schedule.get('ScheduleExpression')} was already past when the schedule was "
                "created or updated; the local scheduler never fires it (AWS's documentation "
                "does not say Scheduler would)",
                enabled,
            )
        minute = at.replace(second=0, microsecond=0)
        latest = minute + timedelta(seconds=59)
        window = schedule.get("FlexibleTimeWindow") or {}
        if window.get("Mode") == "FLEXIBLE":
            latest = max(latest, at + timedelta(minutes=int(window["MaximumWindowInMinutes"])))
        earliest = max(minute, seen)
        if self.schedule_moment is not None:
            chosen = self.schedule_moment(name, earliest, latest)
            fires_at = min(max(chosen, earliest), latest)
        else:
            span = (latest - earliest).total_seconds()
            fires_at = earliest + timedelta(seconds=math.floor(self._rng.random() * (span + 1)))
            fires_at = min(fires_at, latest)
        return _Timer(fires_at, "", enabled)

    def _fire(self, scheduler: Any, key: tuple[str, str, str]) -> None:
        group, name, _ = key
        schedule = scheduler.get_schedule(Name=name, GroupName=group)
        target = schedule["Target"]
        fn = self.stack.function_by_arn(target["Arn"])
        if fn is None:
            self._report(f"schedule {group}/{name} targets {target['Arn']}, no template function")
        else:
            event = json.loads(target.get("Input", "{}"))
            self._queue(fn.spec.logical_id, event, source="schedule", due_at=self.clock.now())
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


def _order(invocation: Invocation) -> tuple[datetime, int]:
    return (invocation.due_at, invocation.id)


def _summary(letter_id: str, function: str, record: dict[str, Any]) -> dict[str, Any]:
    """What an operator needs to choose a dead letter to redrive, without a phone number: the
    event's detail-type (an EventBridge event) or, for another payload such as the answer
    timer's, the function's name without "Function"; the request id when the payload has one;
    the error type and message with anything like a number masked."""
    payload = record.get("requestPayload")
    event_type = function.removesuffix("Function") or function
    request_id = None
    if isinstance(payload, dict):
        if isinstance(payload.get("detail-type"), str):
            event_type = payload["detail-type"]
        detail = payload.get("detail")
        data = detail.get("data") if isinstance(detail, dict) else None
        for holder in (payload, detail, data):
            if isinstance(holder, dict) and isinstance(holder.get("request_id"), str):
                request_id = holder["request_id"]
                break
    if request_id is not None and _NUMBER_IN_TEXT.fullmatch(request_id):
        request_id = None  # a phone number is never shown, whatever a payload calls it
    failure = record.get("responsePayload") or {}
    error = str(failure.get("errorType") or record["requestContext"]["condition"])
    if failure.get("errorMessage"):
        error += ": " + _NUMBER_IN_TEXT.sub("<number>", str(failure["errorMessage"]))
    return {
        "id": letter_id,
        "function": function,
        "event_type": event_type,
        "request_id": request_id,
        "error": error,
        "failed_at": record["timestamp"],
    }


def _body_params(request: Any) -> dict[str, Any]:
    """A request's parameters from its serialised body: JSON, or a query-protocol form."""
    body = request.body or b""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    if text.startswith("{"):
        try:
            found = json.loads(text)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}
    return {key: values[0] for key, values in parse_qs(text).items()}


def _matches(fault: _Fault, service_id: str, operation: str, request: Any) -> bool:
    """Whether one HTTP attempt (botocore's before-send, for service_id.operation) is a call
    the fault names."""
    if fault.service == "sms":
        if (service_id, operation) == ("sns", "Publish"):
            to = _body_params(request).get("PhoneNumber")
        elif (service_id, operation) == ("pinpoint-sms-voice-v2", "SendTextMessage"):
            to = _body_params(request).get("DestinationPhoneNumber")
        else:
            return False
        return to is not None and (fault.to is None or to == fault.to)
    if fault.service == "events":
        return (service_id, operation) == ("eventbridge", "PutEvents")
    return service_id == fault.service  # scheduler, dynamodb: every call


class _Raw:
    """The raw body botocore reads an answer from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._body


def _error_response(service_id: str, code: str) -> AWSResponse:
    """The error answer the service would send, in its protocol (SNS: query, XML; the
    others: JSON), so botocore parses it into a ClientError with `code` and its own retry
    rules see it as they would see the real one."""
    request_id = str(uuid.uuid4())
    message = f"{code} (a fault armed in the local runtime)"
    if code in ("InternalFailure", "InternalServerError", "InternalServerException"):
        status = 500
    elif code in ("ServiceUnavailable", "ServiceUnavailableException"):
        status = 503
    elif service_id == "scheduler" and code == "ThrottlingException":
        status = 429
    else:
        status = 400
    if service_id == "sns":
        body = (
            '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error>'
            f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-ErrorType": code,
            "x-amzn-RequestId": request_id,
        }
    return AWSResponse(_FAULT_URL, status, headers, _Raw(body))  # type: ignore[arg-type]


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
