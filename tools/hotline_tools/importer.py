"""`hotline members import FILE` and `hotline benefits import FILE`: validate every row
first, then write all of them to the deployed tables or to a running local runtime.

All or nothing. A file of at most 100 rows is one DynamoDB transaction. A bigger file cannot
be one (TransactWriteItems takes 100 items), so the items it replaces are read first, the rows
go in transactions of 100, and should any of them fail, every key of the file is put back as
it was (the old item again, or no item) before the command exits non-zero saying so. Only a
failure of that restore too leaves part of the file in the table, and the command says that
instead (exit code 3). The import assumes nobody else writes these keys meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hotline_tools import operate
from hotline_tools.local_client import LocalRuntimeError, call_local
from hotline_tools.rows import SPECS, Kind, RowsInvalid, dynamo_item, parse_rows

TRANSACTION_LIMIT = 100  # items in one TransactWriteItems
READ_BATCH = 100  # keys in one BatchGetItem
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
    """Nothing was imported. `partial`: the table could not be put back as it was, so it may
    hold part of the file."""

    def __init__(self, message: str, *, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


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


def read_rows_or_exit(kind: Kind, file: Path, out: Console) -> tuple[bytes, list[dict[str, str]]]:
    """The file's bytes and its valid rows; else every problem on `out`, and exit 1 (the
    input is wrong: see the exit codes in `hotline --help`). Everything that comes from the
    file, its name included, is printed as text, never as rich markup."""
    shown = escape(str(file))
    try:
        data = file.read_bytes()
    except OSError as exc:
        reason = escape(exc.strerror or str(exc))
        out.print(f"[red]cannot read {shown}: {reason}; nothing was written[/red]", soft_wrap=True)
        raise typer.Exit(1) from exc
    try:
        return data, parse_rows(kind, data)
    except RowsInvalid as exc:
        count = len(exc.problems)
        out.print(f"[red]{shown}: {count} problem(s); nothing was written[/red]", soft_wrap=True)
        for problem in exc.problems:
            out.print(f"  {escape(problem)}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from exc


def run_import(kind: Kind, file: Path, *, stack: str, local: str | None) -> int:
    _, rows = read_rows_or_exit(kind, file, err)
    try:
        if local:
            written = post_to_local(local, kind, rows)
        else:
            table = table_name(stack, kind)
            pin_key = stack_pin_key(stack) if kind == "benefits" else None
            written = write_rows(_client("dynamodb"), table, kind, rows, pin_key=pin_key)
    except ImportFailed as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(3 if exc.partial else 1) from exc
    console.print(f"{written} {kind} imported into {escape(local or stack)}", soft_wrap=True)
    return written


def _client(service: str) -> Any:
    """A boto3 client, or ImportFailed: with no region configured even making one fails."""
    try:
        return operate.aws(service)
    except BotoCoreError as exc:
        raise ImportFailed(f"cannot use AWS ({exc}); nothing was written") from exc


def stack_pin_key(stack: str, cloudformation: Any = None, secrets: Any = None) -> bytes:
    """The stack's PIN key (its Secrets Manager secret, output PinKeySecretArn), which the
    benefits table's keys are hashed under; raises ImportFailed."""
    cfn = cloudformation or _client("cloudformation")
    try:
        outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
        arn = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "PinKeySecretArn")
        secret = (secrets or _client("secretsmanager")).get_secret_value(SecretId=arn)
    except StopIteration as exc:
        raise ImportFailed(
            f"stack {stack!r} has no output PinKeySecretArn: deploy this version of the "
            "template first; nothing was written"
        ) from exc
    except (ClientError, BotoCoreError) as exc:
        raise ImportFailed(f"cannot read the stack's PIN key: {exc}; nothing was written") from exc
    return str(secret["SecretString"]).encode("utf-8")


def table_name(stack: str, kind: Kind, cloudformation: Any = None) -> str:
    """The table from the stack's outputs (MembersTableName / BenefitsTableName)."""
    cfn = cloudformation or _client("cloudformation")
    output = SPECS[kind].table_output
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as exc:
        raise ImportFailed(f"cannot describe stack {stack!r}: {exc}; nothing was written") from exc
    for item in described.get("Outputs", []):
        if item["OutputKey"] == output:
            return str(item["OutputValue"])
    raise ImportFailed(
        f"stack {stack!r} has no output {output}: is it the hotline stack? nothing was written"
    )


def write_rows(
    dynamodb: Any,
    table: str,
    kind: Kind,
    rows: list[dict[str, str]],
    *,
    sleep: Callable[[float], None] | None = None,
    pin_key: bytes | None = None,
) -> int:
    """Write every row or none (see the module docstring); raises ImportFailed. Benefits need
    the stack's `pin_key`: their PINs are written only as keyed hashes."""
    sleep = sleep or time.sleep  # looked up now, so a test can make the back-off instant
    items = [dynamo_item(kind, row, pin_key) for row in rows]
    key = SPECS[kind].partition_key
    with _progress() as progress:
        task = progress.add_task(f"{kind} -> {table}", total=len(items))
        if len(items) <= TRANSACTION_LIMIT:
            try:
                _transact(dynamodb, [{"Put": {"TableName": table, "Item": i}} for i in items])
            except (ClientError, BotoCoreError) as exc:
                raise ImportFailed(
                    f"the transaction was refused: {exc}; nothing was written"
                ) from exc
            progress.update(task, advance=len(items))
            return len(items)
        keys = [{key: item[key]} for item in items]
        try:
            before = _read(dynamodb, table, key, keys, sleep)
        except (ClientError, BotoCoreError, ImportFailed) as exc:
            raise ImportFailed(
                f"cannot read the items the file replaces: {exc}; nothing was written"
            ) from exc
        try:
            for start in range(0, len(items), TRANSACTION_LIMIT):
                chunk = items[start : start + TRANSACTION_LIMIT]
                _transact(dynamodb, [{"Put": {"TableName": table, "Item": i}} for i in chunk])
                progress.update(task, advance=len(chunk))
        except (ClientError, BotoCoreError, KeyboardInterrupt) as exc:  # Ctrl-C: restore too
            reason = f"writing stopped part way ({exc or 'interrupted'})"
            undo = progress.add_task(f"restoring {table}", total=len(keys))
            try:
                _restore(
                    dynamodb,
                    table,
                    key,
                    keys,
                    before,
                    sleep,
                    lambda n: progress.update(undo, advance=n),
                )
            except (ClientError, BotoCoreError) as failed:
                raise ImportFailed(
                    f"{reason}, and restoring the table failed too ({failed}): {table} may hold "
                    "part of the file; fix the cause and import the file again",
                    partial=True,
                ) from failed
            raise ImportFailed(
                f"{reason}; the table was restored to what it was before the import, "
                "nothing was imported"
            ) from exc
    return len(items)


def _transact(dynamodb: Any, operations: list[dict[str, Any]]) -> None:
    dynamodb.transact_write_items(TransactItems=operations)


def _read(
    dynamodb: Any,
    table: str,
    key: str,
    keys: list[dict[str, Any]],
    sleep: Callable[[float], None],
) -> dict[str, dict[str, Any]]:
    """The current item for each key that has one, by key value (consistent reads)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), READ_BATCH):
        pending: list[dict[str, Any]] = keys[start : start + READ_BATCH]
        for attempt in range(BATCH_ATTEMPTS):
            answer = dynamodb.batch_get_item(
                RequestItems={table: {"Keys": pending, "ConsistentRead": True}}
            )
            for item in answer.get("Responses", {}).get(table, []):
                found[item[key]["S"]] = item
            pending = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not pending:
                break
            sleep(min(0.05 * 2**attempt, 2.0))  # throttled: back off, then read the rest
        if pending:
            raise ImportFailed(f"{len(pending)} keys stayed unread after {BATCH_ATTEMPTS} attempts")
    return found


def _restore(
    dynamodb: Any,
    table: str,
    key: str,
    keys: list[dict[str, Any]],
    before: dict[str, dict[str, Any]],
    sleep: Callable[[float], None],
    advance: Callable[[int], None],
) -> None:
    """Put back every key of the file as it was: its old item, or no item. Every key, not just
    those known to be written, so an answer lost on the way cannot leave one behind."""
    operations = [
        {"Put": {"TableName": table, "Item": before[k[key]["S"]]}}
        if k[key]["S"] in before
        else {"Delete": {"TableName": table, "Key": k}}
        for k in keys
    ]
    for start in range(0, len(operations), TRANSACTION_LIMIT):
        chunk = operations[start : start + TRANSACTION_LIMIT]
        for attempt in range(BATCH_ATTEMPTS):
            try:
                _transact(dynamodb, chunk)
                break
            except (ClientError, BotoCoreError):
                if attempt == BATCH_ATTEMPTS - 1:
                    raise
                sleep(min(0.05 * 2**attempt, 2.0))  # the restore must not give up on a throttle
        advance(len(chunk))


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
            raise ImportFailed(f"{reason}; nothing was written") from exc
        written = int(answer.get("written", 0))
        progress.update(task, advance=written)
    return written


def _progress() -> Progress:
    # The description names a table or a URL the operator gave: text, not markup.
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
    )
