"""`hotline directory check FILE` and `hotline directory push FILE`: the directory of people
is validated exactly as the Lambda validates it, before anything is uploaded.
`hotline directory set-pin FILE NAME_OR_PHONE` stores a salted hash of a caller's PIN."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hotline_core.directory import Directory, DirectoryError, parse_directory
from hotline_core.phone import mask_phone
from hotline_core.pins import hash_pin, is_pin_shaped
from hotline_tools.operate import (
    LocalOption,
    OperateError,
    StackOption,
    aws,
    local_request,
    stack_outputs,
)

DIRECTORY_KEY = "phonenumber.json"

console = Console()
err = Console(stderr=True)

directory_app = typer.Typer(help="The directory of people (phonenumber.json).")

FileArg = Annotated[Path, typer.Argument(help="phonenumber.json to check")]


def load(file: Path) -> tuple[bytes, Directory]:
    """The file's bytes and the parsed directory; on any problem, say what and exit 1."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        err.print(
            f"[red]cannot read {escape(str(file))}: {escape(exc.strerror or '')}[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc
    try:
        return raw, parse_directory(raw)
    except DirectoryError as exc:
        # Every problem on its own line, each naming its circle and entry: one fix-up pass.
        count = len(exc.problems)
        err.print(
            f"[red]{escape(str(file))}: {count} problem{'s' if count > 1 else ''}[/red]",
            soft_wrap=True,
        )
        for problem in exc.problems:
            err.print(f"  {escape(problem)}", soft_wrap=True)
        raise typer.Exit(1) from exc


def print_people(directory: Directory) -> None:
    table = Table(title=f"{len(directory.people)} people")
    table.add_column("name")
    table.add_column("phone", no_wrap=True)
    table.add_column("lang")
    for person in directory.people:
        table.add_row(escape(person.name), mask_phone(person.phone), person.lang)
    console.print(table)


@directory_app.command("check")
def check(file: FileArg) -> None:
    """Validate a directory; print who is in it (phones masked), or exactly what is wrong."""
    _, directory = load(file)
    print_people(directory)
    console.print("[green]ok[/green]")


@directory_app.command("push")
def push(
    file: FileArg,
    stack: StackOption = "hotline",
    local: LocalOption = None,
) -> None:
    """Validate, then upload to the stack's directory bucket as phonenumber.json (or to a
    running local hotline's, with --local)."""
    raw, directory = load(file)
    if local:
        local_request(local, "PUT", "/_local/directory", json.loads(raw))
        print_people(directory)
        console.print(
            f"[green]uploaded[/green] to {escape(local)}: warm functions take it up within a "
            "minute of the local clock"
        )
        return
    try:
        bucket = stack_outputs(stack, "DirectoryBucketName")["DirectoryBucketName"]
        aws("s3").put_object(
            Bucket=bucket, Key=DIRECTORY_KEY, Body=raw, ContentType="application/json"
        )
    except OperateError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    except (ClientError, BotoCoreError) as exc:
        err.print(f"[red]upload failed, nothing changed: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    print_people(directory)
    console.print(
        f"[green]uploaded[/green] s3://{escape(bucket)}/{DIRECTORY_KEY}. New Lambda containers "
        "use it at once, warm ones within a minute (they keep a copy for a minute, then ask "
        "S3 whether it changed)"
    )


# --- set-pin (issue 5: caller ID can be spoofed) ---------------------------------------------


class PinTargetError(ValueError):
    """NAME_OR_PHONE names nobody, or names several different phones."""


def set_pin_hash(raw: bytes, who: str, pin_hash: str | None) -> tuple[bytes, int]:
    """The directory with `pin_hash` set (None: removed) on every entry of the phone `who`
    names (a phone, or a name that belongs to exactly one phone; every circle it is in),
    everything else kept; and how many entries changed."""
    data = json.loads(raw)
    groups = [c.get("members", []) for c in data["circles"]] if isinstance(data, dict) else [data]
    entries = [e for group in groups for e in group if isinstance(e, dict)]
    phones = {e.get("phone") for e in entries if who in (e.get("phone"), e.get("name"))}
    if not phones:
        raise PinTargetError("nobody in the directory has that name or phone")
    if len(phones) > 1:
        raise PinTargetError("that name belongs to several phones: give the phone instead")
    changed = 0
    for entry in entries:
        if entry.get("phone") in phones:
            if pin_hash is None:
                entry.pop("pin_hash", None)
            else:
                entry["pin_hash"] = pin_hash
            changed += 1
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    parse_directory(text)  # what is written must load exactly as the Lambda loads it
    return text.encode("utf-8"), changed


@directory_app.command("set-pin")
def set_pin(
    file: Annotated[Path, typer.Argument(help="phonenumber.json to change in place")],
    who: Annotated[str, typer.Argument(metavar="NAME_OR_PHONE", help="whose PIN")],
    remove: Annotated[bool, typer.Option("--remove", help="remove the PIN instead")] = False,
) -> None:
    """Ask for a hotline PIN twice (hidden), store only its salted hash in the entry; the
    hotline then asks that caller for it before anything is texted. The PIN is never printed."""
    raw, _ = load(file)
    pin_hash = None
    if not remove:
        pin = typer.prompt("PIN (4-8 digits)", hide_input=True, confirmation_prompt=True)
        if not is_pin_shaped(pin):
            err.print("[red]a PIN is 4 to 8 digits; nothing changed[/red]")
            raise typer.Exit(1)
        pin_hash = hash_pin(pin)
    try:
        updated, changed = set_pin_hash(raw, who, pin_hash)
    except (PinTargetError, DirectoryError) as exc:
        err.print(f"[red]{escape(str(exc))}; nothing changed[/red]")
        raise typer.Exit(1) from exc
    # Written next to the file, then renamed over it: an interruption leaves the old file.
    temporary = file.with_name(f".{file.name}.tmp")
    temporary.write_bytes(updated)
    temporary.replace(file)
    done = "removed from" if remove else "set on"
    console.print(f"[green]PIN {done} {changed} entr{'y' if changed == 1 else 'ies'}[/green]")
