"""`hotline members import FILE` and `hotline benefits import FILE`: validate every row
first, then write all of them to the deployed tables or to a running local runtime.

All or nothing, honestly: a file of at most 100 rows is one DynamoDB transaction (really all
or nothing). A bigger file cannot be one transaction (TransactWriteItems takes 100 items), so
it goes by BatchWriteItem with UnprocessedItems retried; should a batch still fail, the command
says exactly how many rows were written. Every row is a whole-item put keyed by phone / PIN,
so importing the same file again after fixing the cause is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hotline_tools.local_client import LocalRuntimeError, call_local
from hotline_tools.rows import SPECS, Kind, RowsInvalid, dynamo_item, parse_rows

TRANSACTION_LIMIT = 100
BATCH_SIZE = 25
BATCH_ATTEMPTS = 8

console = Console()
err = Console(stderr=True)

members_app = typer.Typer(help="Members of the second line (phone -> member id).")
benefits_app = typer.Typer(help="Benefits of the second line (PIN -> campaign URL).")

FileArg = Annotated[Path, typer.Argument(help="JSON array or CSV with a header row", exists=False)]
StackOption = Annotated[
    str, typer.Option("--stack", help="the deployed CloudFormation stack to import into")
]
LocalOption = Annotated[
    str | None,
    typer.Option("--local", help="a running local runtime instead, e.g. http://127.0.0.1:3000"),
]


class ImportFailed(RuntimeError):
    """Writing stopped part way; `written` rows are in the table."""

    def __init__(self, message: str, written: int) -> None:
        super().__init__(message)
        self.written = written


@members_app.command("import")
def import_members(
    file: FileArg, stack: StackOption = "hotline", local: LocalOption = None
) -> None:
    """Import members: columns phone (E.164) and member_id."""
    run_import("members", file, stack=stack, local=local)


@benefits_app.command("import")
def import_benefits(
    file: FileArg, stack: StackOption = "hotline", local: LocalOption = None
) -> None:
    """Import benefits: columns pin (4-8 digits) and campaign_url (https)."""
    run_import("benefits", file, stack=stack, local=local)


def run_import(kind: Kind, file: Path, *, stack: str, local: str | None) -> int:
    try:
        data = file.read_bytes()
    except OSError as exc:
        err.print(f"[red]cannot read {file}: {exc.strerror}[/red]")
        raise typer.Exit(2) from exc
    try:
        rows = parse_rows(kind, data)
    except RowsInvalid as exc:
        err.print(f"[red]{file}: {len(exc.problems)} problem(s); nothing was written[/red]")
        for problem in exc.problems:
            err.print(f"  {problem}")
        raise typer.Exit(1) from exc
    try:
        if local:
            written = post_to_local(local, kind, rows)
        else:
            table = table_name(stack, kind)
            written = write_rows(boto3.client("dynamodb"), table, kind, rows)
    except ImportFailed as exc:
        err.print(f"[red]{exc}[/red]")
        err.print(f"[red]{exc.written} of {len(rows)} rows were written[/red]")
        raise typer.Exit(1) from exc
    console.print(f"{written} {kind} imported into {local or stack}")
    return written


def table_name(stack: str, kind: Kind, cloudformation: Any = None) -> str:
    """The table from the stack's outputs (MembersTableName / BenefitsTableName)."""
    cfn = cloudformation or boto3.client("cloudformation")
    output = SPECS[kind].table_output
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as exc:
        raise ImportFailed(f"cannot describe stack {stack!r}: {exc}", 0) from exc
    for item in described.get("Outputs", []):
        if item["OutputKey"] == output:
            return str(item["OutputValue"])
    raise ImportFailed(f"stack {stack!r} has no output {output}: is it the hotline stack?", 0)


def write_rows(
    dynamodb: Any,
    table: str,
    kind: Kind,
    rows: list[dict[str, str]],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    items = [dynamo_item(kind, row) for row in rows]
    with _progress() as progress:
        task = progress.add_task(f"{kind} -> {table}", total=len(items))
        if len(items) <= TRANSACTION_LIMIT:
            try:
                dynamodb.transact_write_items(
                    TransactItems=[{"Put": {"TableName": table, "Item": i}} for i in items]
                )
            except (ClientError, BotoCoreError) as exc:
                raise ImportFailed(f"the transaction was refused: {exc}", 0) from exc
            progress.update(task, advance=len(items))
            return len(items)
        written = 0
        for start in range(0, len(items), BATCH_SIZE):
            pending = [{"PutRequest": {"Item": i}} for i in items[start : start + BATCH_SIZE]]
            for attempt in range(BATCH_ATTEMPTS):
                try:
                    answer = dynamodb.batch_write_item(RequestItems={table: pending})
                except (ClientError, BotoCoreError) as exc:
                    raise ImportFailed(f"batch write failed: {exc}", written) from exc
                left = answer.get("UnprocessedItems", {}).get(table, [])
                done = len(pending) - len(left)
                written += done
                progress.update(task, advance=done)
                pending = left
                if not pending:
                    break
                sleep(min(0.05 * 2**attempt, 2.0))  # throttled: back off, then retry the rest
            if pending:
                raise ImportFailed(
                    f"{len(pending)} rows stayed unprocessed after {BATCH_ATTEMPTS} attempts",
                    written,
                )
    return written


def post_to_local(base_url: str, kind: Kind, rows: list[dict[str, str]]) -> int:
    """POST /_local/<kind> {"rows": [...]} -> {"written": N}; the runtime validates again."""
    with _progress() as progress:
        task = progress.add_task(f"{kind} -> {base_url}", total=len(rows))
        try:
            answer = call_local(base_url, "POST", f"/_local/{kind}", {"rows": rows})
        except LocalRuntimeError as exc:
            reason = (
                f"the local runtime refused the rows ({exc.status}): {exc}"
                if exc.status
                else f"cannot reach the local runtime at {base_url}: {exc}"
            )
            raise ImportFailed(reason, 0) from exc
        written = int(answer.get("written", 0))
        progress.update(task, advance=written)
    return written


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    )
