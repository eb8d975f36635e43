"""`hotline directory forget PHONE`: remove what the stack keeps about one person and can
remove: their requests (as caller or receiver) with their links, pointers and pair items, the
answer timers still pending for them, the once-only claims of those requests, their PIN
counters on both lines, their LINE link (both of its items, and the linked LINE user's count
of wrong codes) and any link code still waiting for them, and dead letters that carry their
number.

What it cannot remove is said, not hidden (README, "Where personal data lives"): events in the
bus archive and the event log (neither deletes single events: their retention bounds them),
Lambda logs (phones are masked there), Connect's contact records, and the SMS provider's
delivery records. Take the person out of the directory too (`hotline directory push`), or the
next call puts them back.

The same function works on AWS (`--stack`) and on a running local hotline (`--local`, through
its control API), given a client factory."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hotline_core.phone import E164_PATTERN, mask_phone
from hotline_tools import operate
from hotline_tools.operate import LocalOption, OperateError, StackOption, fail, local_request

console = Console()

# The once-only claims a request's consumers make (core: invite, timer, outcome, late, mutual).
CLAIM_KINDS = ("invite", "timer", "outcome", "late", "mutual")
# A PIN counter per line: the benefits line keys it by phone, the hotline line by this prefix.
PIN_COUNTER_KEYS = ("{phone}", "hotline#{phone}")
MAX_QUEUE_READS = 100  # receive_message calls per queue: a bound, not an expectation


@dataclass(frozen=True)
class Places:
    """Where the stack keeps what `forget` removes (physical names)."""

    requests_table: str
    claims_table: str
    attempts_table: str
    schedule_group: str | None = None
    queues: tuple[str, ...] = ()  # queue URLs
    line_links_table: str | None = None  # LineLinksTable, where the template has it


@dataclass
class Forgotten:
    requests: int = 0
    items: int = 0
    claims: int = 0
    timers: int = 0
    pin_counters: int = 0
    line_links: int = 0
    dead_letters: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "items": self.items,
            "claims": self.claims,
            "timers": self.timers,
            "pin_counters": self.pin_counters,
            "line_links": self.line_links,
            "dead_letters": self.dead_letters,
        }


def valid_phone(phone: str) -> bool:
    return re.fullmatch(E164_PATTERN, phone) is not None


def _scan(db: Any, table: str) -> Iterator[dict[str, Any]]:
    for page in db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        yield from page.get("Items", [])


def _party_phone(item: dict[str, Any], role: str) -> str:
    return str(item.get(role, {}).get("M", {}).get("phone", {}).get("S", ""))


def _pair_of(key: str, phone: str) -> bool:
    """A pair item (`OPEN#<caller>#<receiver>`) with this person on either side."""
    parts = key.split("#")
    return len(parts) == 3 and parts[0] == "OPEN" and phone in parts[1:]


def forget(phone: str, places: Places, client: Callable[[str], Any]) -> Forgotten:
    """Remove what `places` hold about `phone`; what was removed, and what could not be."""
    if not valid_phone(phone):
        raise ValueError(f"{phone!r} is not an E.164 phone number (like +819011112222)")
    db = client("dynamodb")
    done = Forgotten()
    # Requests: a family's table is small, so one consistent scan finds every item that is
    # about this person (a request as caller or receiver, its pair item either way).
    items = list(_scan(db, places.requests_table))
    request_ids = {
        item["request_id"]["S"]
        for item in items
        if item["pk"]["S"].startswith("LINK#")
        and phone in (_party_phone(item, "caller"), _party_phone(item, "receiver"))
    }
    doomed = [
        item["pk"]["S"]
        for item in items
        if item.get("request_id", {}).get("S") in request_ids or _pair_of(item["pk"]["S"], phone)
    ]
    for key in doomed:
        db.delete_item(TableName=places.requests_table, Key={"pk": {"S": key}})
    done.requests, done.items = len(request_ids), len(doomed)
    for request_id in sorted(request_ids):
        for kind in CLAIM_KINDS:
            gone = db.delete_item(
                TableName=places.claims_table,
                Key={"id": {"S": f"{kind}#{request_id}"}},
                ReturnValues="ALL_OLD",
            )
            done.claims += int("Attributes" in gone)
    if places.schedule_group:
        done.timers = _delete_timers(client("scheduler"), places.schedule_group, request_ids)
    for pattern in PIN_COUNTER_KEYS:
        gone = db.delete_item(
            TableName=places.attempts_table,
            Key={"phone": {"S": pattern.format(phone=phone)}},
            ReturnValues="ALL_OLD",
        )
        done.pin_counters += int("Attributes" in gone)
    if places.line_links_table:
        done.line_links = _forget_line_link(db, places.line_links_table, phone)
    if places.queues:
        done.dead_letters = _delete_dead_letters(client("sqs"), places.queues, phone)
    done.notes = [
        "events in the bus archive and the event log still carry this number until their "
        "retention ends (neither can delete a single event)",
        "Connect's contact records and the SMS provider's delivery records are outside the stack",
        f"remove {mask_phone(phone)} from the directory too, or the next call recognises them",
    ]
    return done


def _forget_line_link(db: Any, table: str, phone: str) -> int:
    """The phone's LINE link, both ways (`phone#…` and `user#…`, through LineLinks, as
    `hotline line unlink` does), and the link codes still waiting for it: how many links."""
    from datetime import UTC, datetime

    from hotline_core.adapters.line_links import LineLinks

    store = LineLinks(db, table, clock=lambda: datetime.now(UTC))
    user_id = store.user_for(phone)
    linked = store.unlink_phone(phone)
    for item in _scan(db, table):
        key = item["pk"]["S"]
        mine = key.startswith("code#") and item.get("phone", {}).get("S") == phone
        # The linked LINE user's count of wrong codes goes with the link.
        if mine or (user_id is not None and key == f"tries#{user_id}"):
            db.delete_item(TableName=table, Key={"pk": {"S": key}})
    return int(linked)


def _delete_timers(scheduler: Any, group: str, request_ids: set[str]) -> int:
    from hotline_core.adapters.timer import schedule_name

    deleted = 0
    for request_id in sorted(request_ids):
        try:
            scheduler.delete_schedule(Name=schedule_name(request_id), GroupName=group)
        except scheduler.exceptions.ResourceNotFoundException:
            continue
        deleted += 1
    return deleted


def _delete_dead_letters(sqs: Any, queues: tuple[str, ...], phone: str) -> int:
    """Delete every dead letter whose body carries the phone; leave the others visible."""
    deleted = 0
    for url in queues:
        seen: list[str] = []
        for _ in range(MAX_QUEUE_READS):
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            )
            messages = got.get("Messages", [])
            if not messages:
                break
            for message in messages:
                if phone in message.get("Body", ""):
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    deleted += 1
                else:
                    seen.append(message["ReceiptHandle"])
        for handle in seen:  # shown again at once: they are someone else's
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return deleted


def stack_places(stack: str, cloudformation: Any) -> Places:
    """The physical names behind the template's logical ids, from the stack's resources."""
    found: dict[str, str] = {}
    queues: list[str] = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            found[resource["LogicalResourceId"]] = resource.get("PhysicalResourceId", "")
            if resource["ResourceType"] == "AWS::SQS::Queue":
                queues.append(resource.get("PhysicalResourceId", ""))
    missing = [
        name
        for name in ("RequestsTable", "IdempotencyTable", "PinAttemptsTable")
        if not found.get(name)
    ]
    if missing:
        raise LookupError(f"stack {stack!r} has no {', '.join(missing)}: is it the hotline stack?")
    return Places(
        requests_table=found["RequestsTable"],
        claims_table=found["IdempotencyTable"],
        attempts_table=found["PinAttemptsTable"],
        schedule_group=found.get("AnswerScheduleGroup") or None,
        queues=tuple(q for q in queues if q),
        line_links_table=found.get("LineLinksTable") or None,
    )


# --- the command ----------------------------------------------------------------------------
def command(
    phone: Annotated[str, typer.Argument(help="the person's phone, E.164 (+81…)")],
    stack: StackOption = "hotline",
    local: LocalOption = None,
) -> None:
    """Remove what the stack keeps about one person and can remove; say what it cannot."""
    if not valid_phone(phone):
        raise fail(f"{phone!r} is not an E.164 phone number (like +819011112222)", 2)
    try:
        if local:
            done = local_request(local, "POST", "/_local/forget", {"phone": phone})
            summary, notes = done["forgotten"], done["cannot"]
        else:
            places = stack_places(stack, operate.aws("cloudformation"))
            forgotten = forget(phone, places, operate.aws)
            summary, notes = forgotten.summary(), forgotten.notes
    except (OperateError, LookupError) as exc:
        raise fail(str(exc)) from exc
    except (BotoCoreError, ClientError) as exc:
        raise fail(f"AWS refused: {exc}") from exc
    table = Table(title=f"forgotten: {mask_phone(phone)}")
    table.add_column("what")
    table.add_column("removed", justify="right")
    for what, count in summary.items():
        table.add_row(what.replace("_", " "), str(count))
    console.print(table)
    for note in notes:
        console.print(f"[yellow]not removed:[/yellow] {escape(note)}", soft_wrap=True)
