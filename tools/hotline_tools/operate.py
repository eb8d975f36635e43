"""Operating a deployed hotline (or a running local one): `hotline replay` and
`hotline events tail`.

Both find the bus, the archive and the event log group from the stack's outputs, so an
operator only ever names the stack. Nothing printed here contains a phone number: events are
shown as detail-type, time and request id.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import boto3
import typer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic_core import PydanticCustomError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from hotline_core.events import BY_DETAIL_TYPE
from hotline_tools.local_client import call_local_or_exit

console = Console()
err = Console(stderr=True)

events_app = typer.Typer(help="Follow what happens on the event bus.", no_args_is_help=True)

EVENT_TYPES = tuple(BY_DETAIL_TYPE)
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED"}
# EventBridge's rule for ReplayName (StartReplay / DescribeReplay API reference).
REPLAY_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")

StackOption = Annotated[str, typer.Option("--stack", help="the deployed CloudFormation stack")]
LocalOption = Annotated[
    str | None,
    typer.Option("--local", help="a running local runtime instead, e.g. http://127.0.0.1:3000"),
]


class OperateError(RuntimeError):
    """Something the operator must fix; the message says what."""


# Every operator command's AWS clients: timeouts and retries in code, never left to the
# environment (AWS_MAX_ATTEMPTS, a profile's retry_mode), so a command behaves the same on
# every machine. The read timeout is above the dead-letter commands' SQS long poll.
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=20,
    retries={"max_attempts": 2, "mode": "standard"},  # 3 attempts in all
)


def aws(service: str) -> Any:
    """One boto3 client with CLIENT_CONFIG; tests run this under moto."""
    return boto3.client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]


def pause(seconds: float) -> None:
    """The wait between two polls of a followed stream; a test replaces it to stop the loop."""
    time.sleep(seconds)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` on one line (never wrapped, markup in it shown as is) for `raise`."""
    err.print(f"[red]{escape(message)}[/red]", soft_wrap=True)
    return typer.Exit(code)


def stack_outputs(stack: str, *wanted: str) -> dict[str, str]:
    """The stack's outputs; raises OperateError naming any that are missing."""
    try:
        described = aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as exc:
        raise OperateError(f"cannot describe stack {stack!r}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [name for name in wanted if name not in outputs]
    if missing:
        raise OperateError(
            f"stack {stack!r} has no output {', '.join(missing)}: is it the hotline stack, "
            "deployed from this version of template.yaml?"
        )
    return outputs


# --- time --------------------------------------------------------------------------------
DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def bad_value(message: str) -> ValueError:
    """A ValueError whose text an option's parser error shows as is: Typer validates through
    pydantic, which would prefix a plain ValueError's message with "Value error, "."""
    return PydanticCustomError("bad_value", "{message}", {"message": message})


def parse_instant(text: str | datetime) -> datetime:
    """ISO-8601 (a time without an offset is UTC), or a duration ago such as `30m`.

    Raises ValueError; as an option's parser, click names the option in the message."""
    if isinstance(text, datetime):
        return text
    if DURATION.fullmatch(text.strip()):
        return datetime.now(UTC) - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_value(
            f"{text!r} is neither an ISO-8601 time (2026-05-01T09:00) nor a duration ago "
            "(30s, 10m, 2h, 1d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_duration(text: str | timedelta) -> timedelta:
    if isinstance(text, timedelta):
        return text
    match = DURATION.fullmatch(text.strip())
    if not match:
        raise bad_value(f"{text!r} is not a duration like 30s, 10m, 2h or 1d")
    return timedelta(seconds=int(match["n"]) * UNIT_SECONDS[match["unit"]])


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return "-" if value in (None, "") else str(value)


# --- replay ------------------------------------------------------------------------------
def replay_name(at: datetime, event_type: str | None = None) -> str:
    """A new replay's name: readable (when, what) and unique even for two replays started in
    the same second, which EventBridge would refuse as ResourceAlreadyExists."""
    name = f"hotline-{at.astimezone(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    return name + (f"-{event_type}" if event_type else "")


def _rules(bus: str) -> Iterator[dict[str, Any]]:
    events = aws("events")
    token: str | None = None
    while True:
        try:
            page = events.list_rules(EventBusName=bus, **({"NextToken": token} if token else {}))
        except (ClientError, BotoCoreError) as exc:
            raise OperateError(f"cannot list the rules of bus {bus!r}: {exc}") from exc
        yield from page.get("Rules", [])
        token = page.get("NextToken")
        if not token:
            return


def _targets(bus: str, rule: str) -> Iterator[dict[str, Any]]:
    events = aws("events")
    token: str | None = None
    while True:
        try:
            page = events.list_targets_by_rule(
                Rule=rule, EventBusName=bus, **({"NextToken": token} if token else {})
            )
        except (ClientError, BotoCoreError) as exc:
            raise OperateError(f"cannot list the targets of rule {rule!r}: {exc}") from exc
        yield from page.get("Targets", [])
        token = page.get("NextToken")
        if not token:
            return


def _writes_to_group(target_arn: str, group: str) -> bool:
    # arn:aws:logs:<region>:<account>:log-group:<name>, sometimes with a trailing :*
    _, found, name = target_arn.partition(":log-group:")
    return bool(found) and name.removesuffix(":*") == group


def rules_for(bus: str, event_type: str, log_group: str) -> tuple[list[str], list[str]]:
    """ARNs of the bus's rules whose pattern names `event_type` as a detail-type, and of the
    rules that write to the event log group `log_group`.

    StartReplay cannot filter events by pattern; it can only restrict which rules the replayed
    events go to (Destination.FilterArns). A rule that listens to several types still receives
    every replayed event of those types. The event log rule is always included, so a replay
    always shows in `hotline events tail`; it matches every event, so the log shows every type
    of the window replayed (each marked with the replay's name), while only the listening
    rules act on them."""
    consumers: list[str] = []
    loggers: list[str] = []
    for rule in _rules(bus):
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            pattern = json.loads(rule.get("EventPattern") or "{}")
            if event_type in (pattern.get("detail-type") or []):
                consumers.append(rule["Arn"])
                continue
        if any(_writes_to_group(t.get("Arn", ""), log_group) for t in _targets(bus, rule["Name"])):
            loggers.append(rule["Arn"])
    return consumers, loggers


def start_replay(
    stack: str, start: datetime, end: datetime, event_type: str | None
) -> tuple[str, list[str]]:
    wanted = ["EventBusName", "EventBusArn", "ArchiveArn"]
    outputs = stack_outputs(stack, *wanted, *(["EventLogGroupName"] if event_type else []))
    destination: dict[str, Any] = {"Arn": outputs["EventBusArn"]}
    rules: list[str] = []
    if event_type:
        group = outputs["EventLogGroupName"]
        consumers, loggers = rules_for(outputs["EventBusName"], event_type, group)
        if not consumers:
            raise OperateError(f"no rule on the bus listens to {event_type}: nothing to replay to")
        if not loggers:
            raise OperateError(
                f"no rule on the bus writes to the event log {group}: the replay would not be "
                "logged; redeploy the stack from this version of template.yaml"
            )
        rules = consumers + loggers
        destination["FilterArns"] = rules
    name = replay_name(datetime.now(UTC), event_type)
    try:
        aws("events").start_replay(
            ReplayName=name,
            Description=f"hotline replay {start.isoformat()} .. {end.isoformat()}",
            EventSourceArn=outputs["ArchiveArn"],
            EventStartTime=start,
            EventEndTime=end,
            Destination=destination,
        )
    except (ClientError, BotoCoreError) as exc:
        raise OperateError(f"cannot start the replay: {exc}") from exc
    return name, rules


def follow_replay(
    name: str,
    start: datetime,
    end: datetime,
    *,
    timeout: float,
    poll: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """describe_replay until a final state or `timeout` seconds; the last description.

    The bar is the share of the window replayed so far (EventLastReplayedTime): EventBridge
    reports no count of events."""
    events = aws("events")
    span = max((end - start).total_seconds(), 1.0)
    deadline = time.monotonic() + timeout
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[state]}", markup=False),
        TextColumn("{task.fields[last]}", markup=False),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"replay {name}", total=span, state="STARTING", last="")
        while True:
            try:
                described = events.describe_replay(ReplayName=name)
            except (ClientError, BotoCoreError) as exc:
                raise OperateError(
                    f"cannot follow replay {name}: {exc}; it may still be running "
                    f"(aws events describe-replay --replay-name {name})"
                ) from exc
            state = str(described.get("State", "?"))
            last = described.get("EventLastReplayedTime")
            done = (last - start).total_seconds() if isinstance(last, datetime) else 0.0
            progress.update(
                task,
                completed=min(max(done, 0.0), span),
                state=state,
                last=f"events up to {_iso(last)}" if isinstance(last, datetime) else "",
                refresh=True,  # every poll is news: show it now, not at the next tick
            )
            if state in FINAL_STATES or time.monotonic() >= deadline:
                return dict(described)
            sleep(poll)


def print_replay(described: dict[str, Any], rules: Iterable[str]) -> None:
    table = Table(title="replay", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("name", escape(str(described.get("ReplayName", "-"))))
    table.add_row("state", escape(str(described.get("State", "-"))))
    if described.get("StateReason"):
        table.add_row("reason", escape(str(described["StateReason"])))
    table.add_row("events from", _iso(described.get("EventStartTime")))
    table.add_row("events to", _iso(described.get("EventEndTime")))
    table.add_row("last replayed", _iso(described.get("EventLastReplayedTime")))
    table.add_row("to rules", escape("\n".join(rules)) or "every rule on the bus")
    console.print(table)


def replay(
    start: Annotated[
        datetime,
        typer.Option(
            "--from",
            parser=parse_instant,
            metavar="TIME",
            help="ISO-8601 (UTC unless an offset is given), or a duration ago such as 2h",
        ),
    ],
    end: Annotated[
        datetime | None,
        typer.Option(
            "--to",
            parser=parse_instant,
            metavar="TIME",
            show_default="now",
            help="like --from, and later than it",
        ),
    ] = None,
    event_type: Annotated[
        str | None,
        typer.Option(
            "--event-type",
            metavar="TYPE",
            help=(
                "replay only to the rules that listen to this detail-type, and to the event "
                f"log: {', '.join(EVENT_TYPES)}"
            ),
        ),
    ] = None,
    stack: StackOption = "hotline",
    local: LocalOption = None,
    timeout: Annotated[float, typer.Option(help="seconds to follow the replay")] = 900,
    poll: Annotated[float, typer.Option(help="seconds between progress checks")] = 2.0,
) -> None:
    """Replay archived events through the bus. Replayed events carry `replay-name`: consumers
    text nobody unless the stack's AllowReplaySideEffects is true."""
    begin, finish = start, end or datetime.now(UTC)
    if finish <= begin:
        # EventBridge requires EventStartTime before EventEndTime: an empty window is refused.
        raise fail(f"--from ({_iso(begin)}) must be before --to ({_iso(finish)})", 2)
    if event_type is not None and event_type not in EVENT_TYPES:
        raise fail(f"--event-type must be one of {', '.join(EVENT_TYPES)}", 2)
    if local:
        if event_type:
            raise fail("the local runtime replays every event type; drop --event-type", 2)
        body = {"from": begin.isoformat(), "to": finish.isoformat()}
        result = local_request(local, "POST", "/_local/replay", body)
        console.print(
            f"replay [bold]{escape(str(result.get('replay_name')))}[/bold]: "
            f"{result.get('replayed', 0)} event(s) from {_iso(begin)} to {_iso(finish)}"
        )
        return
    try:
        name, rules = start_replay(stack, begin, finish, event_type)
        described = follow_replay(name, begin, finish, timeout=timeout, poll=poll, sleep=pause)
    except OperateError as exc:
        raise fail(str(exc)) from exc
    except (ClientError, BotoCoreError) as exc:  # an AWS call not named above: still one line
        raise fail(f"AWS refused a call: {exc}") from exc
    print_replay(described, rules)
    state = described.get("State")
    if state not in FINAL_STATES:
        err.print(
            f"[yellow]still {escape(str(state))} after {timeout:g}s; follow it with "
            f"`aws events describe-replay --replay-name {name}`[/yellow]",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if state != "COMPLETED":
        raise typer.Exit(1)


# --- events tail -------------------------------------------------------------------------
def summary(event: dict[str, Any]) -> tuple[str, str, str, str]:
    """time, detail-type, request (or member) id, replay name: never a phone number.

    `event` is an EventBridge event (local runtime) or the event log's record, which already
    holds only these fields (see EventLogRule in template.yaml)."""
    detail = event.get("detail")
    data = detail.get("data") if isinstance(detail, dict) else event
    data = data if isinstance(data, dict) else {}
    # A path missing from an event may reach the log as "" or null, depending on EventBridge.
    ids = (data.get("request_id"), data.get("member_id"))
    about = next((str(i) for i in ids if i not in (None, "", "null")), "-")
    return (
        str(event.get("time", "-")),
        str(event.get("detail-type", "-")),
        str(about),
        "" if event.get("replay-name") in (None, "", "null") else str(event["replay-name"]),
    )


def print_event(event: dict[str, Any]) -> None:
    at, kind, about, replay_name = summary(event)
    marker = f"  [magenta](replay {escape(replay_name)})[/magenta]" if replay_name else ""
    console.print(f"{escape(at)}  [bold]{escape(kind):<16}[/bold] {escape(about)}{marker}")


def cloudwatch_events(
    group: str,
    since: datetime,
    *,
    follow: bool,
    poll: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Any]:
    logs = aws("logs")
    start_ms = int(since.timestamp() * 1000)
    seen: set[str] = set()
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
        while True:
            page = logs.filter_log_events(**kwargs)
            for item in page.get("events", []):
                if item["eventId"] in seen:
                    continue
                seen.add(item["eventId"])
                # Restart from the newest seen: the same millisecond is deduplicated by id.
                start_ms = max(start_ms, int(item["timestamp"]))
                with contextlib.suppress(ValueError):
                    yield json.loads(item["message"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        if not follow:
            return
        sleep(poll)


def local_events(
    url: str,
    since: datetime,
    *,
    follow: bool,
    poll: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Any]:
    shown = 0
    while True:
        every = local_request(url, "GET", "/_local/events") or []
        for event in every[shown:]:
            with contextlib.suppress(ValueError):
                if parse_instant(str(event.get("time"))) < since:
                    continue
            yield event
        shown = len(every)
        if not follow:
            return
        sleep(poll)


@events_app.command("tail")
def tail(
    stack: StackOption = "hotline",
    since: Annotated[
        timedelta,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            show_default="10m",
            help="how far back to start, e.g. 30s, 10m, 2h",
        ),
    ] = timedelta(minutes=10),
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new events (Ctrl-C stops)")
    ] = False,
    local: LocalOption = None,
    poll: Annotated[float, typer.Option(help="seconds between polls with --follow")] = 2.0,
) -> None:
    """Print every event on the bus (time, detail-type, request id), oldest first."""
    start = datetime.now(UTC) - since
    count = 0
    try:
        if local:
            stream = local_events(local, start, follow=follow, poll=poll, sleep=pause)
        else:
            group = stack_outputs(stack, "EventLogGroupName")["EventLogGroupName"]
            stream = cloudwatch_events(group, start, follow=follow, poll=poll, sleep=pause)
        for event in stream:
            print_event(event)
            count += 1
    except OperateError as exc:
        raise fail(str(exc)) from exc
    except (ClientError, BotoCoreError) as exc:
        raise fail(f"cannot read the event log: {exc}") from exc
    except KeyboardInterrupt:
        return
    if not count:
        err.print(f"no events in the last {_ago(since)}")


def _ago(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


# --- the local runtime -------------------------------------------------------------------
def local_request(base: str, method: str, path: str, body: Any = None) -> Any:
    return call_local_or_exit(base, method, path, body, timeout=60)
