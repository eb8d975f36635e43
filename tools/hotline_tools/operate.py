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
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotline_core.events import BY_DETAIL_TYPE
from hotline_tools.local_client import call_local_or_exit

console = Console()
err = Console(stderr=True)

events_app = typer.Typer(help="Follow what happens on the event bus.", no_args_is_help=True)

EVENT_TYPES = tuple(BY_DETAIL_TYPE)
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED"}

StackOption = Annotated[str, typer.Option("--stack", help="the deployed CloudFormation stack")]
LocalOption = Annotated[
    str | None,
    typer.Option("--local", help="a running local runtime instead, e.g. http://127.0.0.1:3000"),
]


class OperateError(RuntimeError):
    """Something the operator must fix; the message says what."""


def aws(service: str) -> Any:
    """One boto3 client; tests run this under moto."""
    return boto3.client(service)  # type: ignore[call-overload]


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


def parse_instant(text: str) -> datetime:
    """ISO-8601 (a time without an offset is UTC), or a duration ago such as `30m`."""
    ago = DURATION.fullmatch(text.strip())
    if ago:
        return datetime.now(UTC) - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is neither ISO-8601 nor a duration like 10m") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    match = DURATION.fullmatch(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration like 30s, 10m, 2h or 1d")
    return timedelta(seconds=int(match["n"]) * UNIT_SECONDS[match["unit"]])


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return "-" if value in (None, "") else str(value)


# --- replay ------------------------------------------------------------------------------
def rules_for(bus: str, event_type: str) -> list[str]:
    """ARNs of the bus's rules whose pattern names `event_type` as a detail-type.

    StartReplay cannot filter events by pattern; it can only restrict which rules the replayed
    events go to (Destination.FilterArns). A rule that listens to several types still receives
    every replayed event of those types; rules without a detail-type (the log rule) are left
    out so a filtered replay does not log every other type again."""
    events = aws("events")
    arns: list[str] = []
    token: str | None = None
    while True:
        page = events.list_rules(EventBusName=bus, **({"NextToken": token} if token else {}))
        for rule in page.get("Rules", []):
            with contextlib.suppress(ValueError, TypeError):
                pattern = json.loads(rule.get("EventPattern") or "{}")
                if event_type in (pattern.get("detail-type") or []):
                    arns.append(rule["Arn"])
        token = page.get("NextToken")
        if not token:
            return arns


def start_replay(
    stack: str, start: datetime, end: datetime, event_type: str | None
) -> tuple[str, list[str]]:
    outputs = stack_outputs(stack, "EventBusName", "EventBusArn", "ArchiveArn")
    destination: dict[str, Any] = {"Arn": outputs["EventBusArn"]}
    rules: list[str] = []
    if event_type:
        rules = rules_for(outputs["EventBusName"], event_type)
        if not rules:
            raise OperateError(f"no rule on the bus listens to {event_type}: nothing to replay to")
        destination["FilterArns"] = rules
    name = f"hotline-{datetime.now(UTC):%Y%m%d-%H%M%S}" + (f"-{event_type}" if event_type else "")
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
        raise OperateError(f"EventBridge refused the replay: {exc}") from exc
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
    """describe_replay until a final state or `timeout` seconds; the last description."""
    events = aws("events")
    span = max((end - start).total_seconds(), 1.0)
    deadline = time.monotonic() + timeout
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"replay {name}", total=span, state="STARTING")
        while True:
            described = events.describe_replay(ReplayName=name)
            state = described["State"]
            last = described.get("EventLastReplayedTime")
            done = (last - start).total_seconds() if isinstance(last, datetime) else 0.0
            progress.update(task, completed=min(max(done, 0.0), span), state=state)
            if state in FINAL_STATES or time.monotonic() >= deadline:
                return dict(described)
            sleep(poll)


def print_replay(described: dict[str, Any], rules: Iterable[str]) -> None:
    table = Table(title="replay", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("name", escape(described.get("ReplayName", "-")))
    table.add_row("state", escape(described.get("State", "-")))
    if described.get("StateReason"):
        table.add_row("reason", escape(str(described["StateReason"])))
    table.add_row("events from", _iso(described.get("EventStartTime")))
    table.add_row("events to", _iso(described.get("EventEndTime")))
    table.add_row("last replayed", _iso(described.get("EventLastReplayedTime")))
    table.add_row("to rules", escape("\n".join(rules)) or "every rule on the bus")
    console.print(table)


def replay(
    start: Annotated[str, typer.Option("--from", help="ISO-8601 (UTC unless given) or e.g. 2h")],
    end: Annotated[str, typer.Option("--to", help="ISO-8601, or e.g. 0s for now")] = "0s",
    event_type: Annotated[
        str | None,
        typer.Option("--event-type", help="only to the rules that listen to this detail-type"),
    ] = None,
    stack: StackOption = "hotline",
    local: LocalOption = None,
    timeout: Annotated[float, typer.Option(help="seconds to follow the replay")] = 900,
    poll: Annotated[float, typer.Option(help="seconds between progress checks")] = 2.0,
) -> None:
    """Replay archived events through the bus. Replayed events carry `replay-name`: consumers
    text nobody unless the stack's AllowReplaySideEffects is true."""
    begin, finish = parse_instant(start), parse_instant(end)
    if finish < begin:
        err.print("[red]--from must not be after --to[/red]")
        raise typer.Exit(2)
    if event_type is not None and event_type not in EVENT_TYPES:
        err.print(f"[red]--event-type must be one of {', '.join(EVENT_TYPES)}[/red]")
        raise typer.Exit(2)
    if local:
        if event_type:
            err.print("[red]the local runtime replays every event type; drop --event-type[/red]")
            raise typer.Exit(2)
        body = {"from": begin.isoformat(), "to": finish.isoformat()}
        result = local_request(local, "POST", "/_local/replay", body)
        console.print(
            f"replay [bold]{escape(str(result.get('replay_name')))}[/bold]: "
            f"{result.get('replayed', 0)} event(s) from {_iso(begin)} to {_iso(finish)}"
        )
        return
    try:
        name, rules = start_replay(stack, begin, finish, event_type)
        described = follow_replay(name, begin, finish, timeout=timeout, poll=poll)
    except OperateError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    print_replay(described, rules)
    state = described.get("State")
    if state not in FINAL_STATES:
        err.print(
            f"[yellow]still {state} after {timeout:g}s; follow it with "
            f"`aws events describe-replay --replay-name {name}`[/yellow]"
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
        "" if event.get("replay-name") in (None, "null") else str(event["replay-name"]),
    )


def print_event(event: dict[str, Any]) -> None:
    at, kind, about, replay_name = summary(event)
    marker = f"  [magenta](replay {escape(replay_name)})[/magenta]" if replay_name else ""
    console.print(f"{escape(at)}  [bold]{escape(kind):<16}[/bold] {escape(about)}{marker}")


def cloudwatch_events(group: str, since: datetime, *, follow: bool, poll: float) -> Iterator[Any]:
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
        time.sleep(poll)


def local_events(url: str, since: datetime, *, follow: bool, poll: float) -> Iterator[Any]:
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
        time.sleep(poll)


@events_app.command("tail")
def tail(
    stack: StackOption = "hotline",
    since: Annotated[str, typer.Option(help="how far back to start, e.g. 30s, 10m, 2h")] = "10m",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new events")
    ] = False,
    local: LocalOption = None,
    poll: Annotated[float, typer.Option(help="seconds between polls with --follow")] = 2.0,
) -> None:
    """Print every event on the bus (time, detail-type, request id), oldest first."""
    start = datetime.now(UTC) - parse_duration(since)
    try:
        if local:
            stream = local_events(local, start, follow=follow, poll=poll)
        else:
            group = stack_outputs(stack, "EventLogGroupName")["EventLogGroupName"]
            stream = cloudwatch_events(group, start, follow=follow, poll=poll)
        count = 0
        for event in stream:
            print_event(event)
            count += 1
    except OperateError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    except (ClientError, BotoCoreError) as exc:
        err.print(f"[red]cannot read the event log: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        return
    if not count:
        err.print(f"no events in the last {since}")


# --- the local runtime -------------------------------------------------------------------
def local_request(base: str, method: str, path: str, body: Any = None) -> Any:
    return call_local_or_exit(base, method, path, body, timeout=60)
