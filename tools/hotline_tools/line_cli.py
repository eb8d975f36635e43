"""`hotline line link|unlink|list`: who gets the hotline's messages by LINE.

A person links their own LINE account: `hotline line link NAME|PHONE` prints a one-time code
(valid 10 minutes); they add the hotline's LINE Official Account as a friend and send it the
code; the webhook links that LINE user to the phone. `unlink` takes a link away (unfollowing
the account does the same), `list` shows who is linked: names and masked phones, a LINE user id
never in full.

On AWS (`--stack`) the commands work on the stack's LineLinksTable (found among the stack's
resources) through `hotline_core.adapters.line_links.LineLinks`, and resolve a NAME through the
directory in the stack's bucket; on a running local runtime (`--local URL`) through its control
API (`POST /_local/line/codes`, `GET /_local/line/links`, `POST /_local/line/unlink`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hotline_core.phone import mask_phone
from hotline_tools import operate
from hotline_tools.forget import valid_phone
from hotline_tools.operate import LocalOption, OperateError, StackOption, fail, local_request

console = Console()

line_app = typer.Typer(
    help="Who gets the hotline's messages by LINE: link codes, links, unlinking.",
    no_args_is_help=True,
)

DIRECTORY_KEY = "phonenumber.json"
CODE_MINUTES = 10  # LineLinks' CODE_LIFETIME, said to the operator
WhoArg = Annotated[
    str, typer.Argument(metavar="NAME|PHONE", help="a name in the directory, or a phone (+81…)")
]


def mask_user_id(user_id: str) -> str:
    """A LINE user id as the CLI shows it: enough to tell two apart, never the whole id."""
    return f"{user_id[:5]}…{user_id[-4:]}" if len(user_id) > 12 else "…"


class Who:
    """A person the command names: their phone, and their name and language when known."""

    def __init__(self, phone: str, name: str | None = None, lang: str | None = None) -> None:
        self.phone, self.name, self.lang = phone, name, lang

    def shown(self) -> str:
        masked = mask_phone(self.phone)
        return f"{self.name} ({masked})" if self.name else masked


def resolve(who: str, people: Iterable[dict[str, Any]], *, must_be_listed: bool) -> Who:
    """NAME or PHONE against the directory's people (`name`, `phone`, `lang`). A name must
    belong to exactly one phone; a phone must be in the directory when `must_be_listed`."""
    everyone = list(people)
    if who.startswith("+"):
        if not valid_phone(who):
            raise fail(f"{who!r} is not an E.164 phone number (like +819011112222)", 2)
        for person in everyone:
            if person["phone"] == who:
                return Who(who, person.get("name"), person.get("lang"))
        if must_be_listed:
            raise fail(f"{mask_phone(who)} is not in the directory: add them first")
        return Who(who)
    phones = {person["phone"]: person for person in everyone if person.get("name") == who}
    if not phones:
        raise fail(f"nobody in the directory is called {who!r}")
    if len(phones) > 1:
        raise fail(f"several phones belong to {who!r}: give the phone instead")
    person = next(iter(phones.values()))
    return Who(person["phone"], who, person.get("lang"))


# --- where the links live ---------------------------------------------------------------------


class _Stack:
    """The stack's LineLinksTable and directory, found from its resources and outputs."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        cloudformation = operate.aws("cloudformation")
        found: dict[str, str] = {}
        try:
            pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
            for page in pages:
                for resource in page["StackResourceSummaries"]:
                    found[resource["LogicalResourceId"]] = resource.get("PhysicalResourceId", "")
            described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        except (ClientError, BotoCoreError) as exc:
            raise OperateError(f"cannot read stack {stack!r}: {exc}") from exc
        if not found.get("LineLinksTable"):
            raise OperateError(
                f"stack {stack!r} has no LineLinksTable: deploy this version of template.yaml"
            )
        self.table = found["LineLinksTable"]
        parameters = {
            p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])
        }
        self.line_on = bool(parameters.get("LineSecretName"))
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        self.bucket = outputs.get("DirectoryBucketName")

    def links(self) -> Any:
        from hotline_core.adapters.line_links import LineLinks

        return LineLinks(operate.aws("dynamodb"), self.table, clock=lambda: datetime.now(UTC))

    def people(self) -> list[dict[str, Any]]:
        from hotline_core.directory import DirectoryError, parse_directory

        if not self.bucket:
            raise OperateError(f"stack {self.stack!r} has no output DirectoryBucketName")
        try:
            raw = operate.aws("s3").get_object(Bucket=self.bucket, Key=DIRECTORY_KEY)["Body"]
            directory = parse_directory(raw.read())
        except (ClientError, BotoCoreError) as exc:
            raise OperateError(f"cannot read the directory s3://{self.bucket}: {exc}") from exc
        except DirectoryError as exc:
            raise OperateError(f"the directory in s3://{self.bucket} is not valid") from exc
        return [{"name": p.name, "phone": p.phone, "lang": p.lang} for p in directory.people]


def _local_people(base: str) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = local_request(base, "GET", "/_local/directory")["people"]
    return people


@contextmanager
def _aws_errors(action: str) -> Iterator[None]:
    """What AWS or the stack refuses, as one line and exit 1."""
    try:
        yield
    except OperateError as exc:
        raise fail(str(exc)) from exc
    except (ClientError, BotoCoreError) as exc:
        raise fail(f"{action}: AWS refused: {exc}") from exc


# --- the commands --------------------------------------------------------------------------


@line_app.command("link")
def link(who: WhoArg, stack: StackOption = "hotline", local: LocalOption = None) -> None:
    """Print a one-time code (valid 10 minutes) that links this person's LINE account when
    they send it to the hotline's LINE Official Account."""
    with _aws_errors("no code made"):
        if local:
            person = resolve(who, _local_people(local), must_be_listed=True)
            code = local_request(local, "POST", "/_local/line/codes", {"phone": person.phone})[
                "code"
            ]
        else:
            place = _Stack(stack)
            if not place.line_on:
                raise OperateError(
                    f"LINE is off on stack {stack!r} (its LineSecretName is empty): a code "
                    "could not be sent; README, 'LINE', says how to turn it on"
                )
            person = resolve(who, place.people(), must_be_listed=True)
            code = place.links().new_code(person.phone)
    console.print(f"LINE link code for {escape(person.shown())}: [bold]{code}[/bold]")
    console.print(f"valid for {CODE_MINUTES} minutes, once.")
    console.print(
        f"{escape(person.name or 'They')} must add the hotline's LINE Official Account as a "
        "friend, then send it this code as a message; LINE replies when it is linked.",
        soft_wrap=True,
    )
    if person.lang == "ja":
        console.print(
            "ホットラインのLINE公式アカウントを友だち追加して、このコードをメッセージで"
            f"送ってください（{CODE_MINUTES}分間有効、1回限り）。",
            soft_wrap=True,
        )


@line_app.command("unlink")
def unlink(who: WhoArg, stack: StackOption = "hotline", local: LocalOption = None) -> None:
    """Take this person's LINE link away: from now on they get SMS."""
    with _aws_errors("nothing unlinked"):
        if local:
            person = resolve(who, _local_people(local), must_be_listed=False)
            answer = local_request(local, "POST", "/_local/line/unlink", {"phone": person.phone})
            unlinked = bool(answer["unlinked"])
        else:
            place = _Stack(stack)
            # A phone no longer in the directory may still be linked: no directory needed.
            people = [] if who.startswith("+") else place.people()
            person = resolve(who, people, must_be_listed=False)
            unlinked = bool(place.links().unlink_phone(person.phone))
    if unlinked:
        console.print(f"[green]unlinked[/green] {escape(person.shown())}: SMS from now on")
    else:
        console.print(f"{escape(person.shown())} was not linked: nothing changed")


@line_app.command("list")
def list_links(stack: StackOption = "hotline", local: LocalOption = None) -> None:
    """Who is linked: names and masked phones (LINE user ids shortened), oldest link first."""
    with _aws_errors("cannot list"):
        if local:
            links: list[dict[str, Any]] = local_request(local, "GET", "/_local/line/links")
            names = {p["phone"]: p["name"] for p in _local_people(local)}
        else:
            place = _Stack(stack)
            links = place.links().links()
            try:
                names = {p["phone"]: p["name"] for p in place.people()}
            except OperateError:
                names = {}  # the links still show, with masked phones only
    if not links:
        console.print("nobody is linked to LINE yet")
        return
    table = Table(title=f"{len(links)} linked to LINE")
    table.add_column("name")
    table.add_column("phone", no_wrap=True)
    table.add_column("LINE user", no_wrap=True)
    table.add_column("linked at", no_wrap=True)
    for item in links:
        table.add_row(
            escape(str(names.get(item["phone"]) or "(not in the directory)")),
            mask_phone(item["phone"]),
            mask_user_id(str(item["user_id"])),
            escape(str(item.get("linked_at", ""))[:19].replace("T", " ")),
        )
    console.print(table)
