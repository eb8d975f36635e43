"""`hotline directory check FILE` and `hotline directory push FILE`: the directory of people
is validated exactly as the Lambda validates it, before anything is uploaded.
`hotline directory set-pin FILE NAME_OR_PHONE` stores a salted hash of a caller's PIN."""

from __future__ import annotations

import json
import re
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
from hotline_tools.segments import LANG_NAMES, is_default_link, long_invitations

DIRECTORY_KEY = "phonenumber.json"

console = Console()
err = Console(stderr=True)

directory_app = typer.Typer(help="The directory of people (phonenumber.json).")

FileArg = Annotated[Path, typer.Argument(help="phonenumber.json to check")]
BASE_URL = re.compile(r"^https?://[^/]+$")  # as the template's PublicBaseUrl allows


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


def _base_url(value: str | None) -> str | None:
    if value is not None and not BASE_URL.match(value):
        raise typer.BadParameter("a base like https://h.example.jp (no path)")
    return value


def warn_of_long_invitations(directory: Directory, base_url: str | None) -> None:
    """A warning per name that makes an invitation longer than the README promises: the
    file is still valid, but every call from that person costs a segment more."""
    link = "the default execute-api link"
    if base_url is not None:
        link = f"{'the execute-api link' if is_default_link(base_url) else 'a short domain'} "
        link += f"({base_url})"
    for long in long_invitations(directory, base_url):
        why = f"The first {long.fits} of its characters would fit."
        if long.made_ucs2:
            why = "A character outside GSM-7 makes the whole text UCS-2, 70 to a segment."
        err.print(
            f"[yellow]warning: {escape(long.name)}'s name makes the {LANG_NAMES[long.lang]} "
            f"invitation {long.segments} SMS segments; the README promises {long.promise} "
            f"with {escape(link)}. {why}[/yellow]",
            soft_wrap=True,
        )


@directory_app.command("check")
def check(
    file: FileArg,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            callback=_base_url,
            help="the SMS link's base the stack uses (PublicBaseUrl, or https://"
            "<CustomDomainName>), to count the invitations' segments with; default: the "
            "execute-api link",
        ),
    ] = None,
) -> None:
    """Validate a directory; print who is in it (phones masked), or exactly what is wrong.
    Warn of a name that makes an invitation longer than the README's segment promise."""
    _, directory = load(file)
    print_people(directory)
    warn_of_long_invitations(directory, base_url)
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
