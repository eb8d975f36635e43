"""`hotline`: run the hotline on this machine and talk to it.

hotline local [--port 3000] [--directory FILE] [--answer-window SECONDS]
              [--line-channel-secret S]
hotline call FROM [--digits D] [--line hotline|benefits] [--to NUMBER] [--url URL]
hotline sms [--to N] [--url URL]

Every `hotline` command exits with one of EXIT_CODES (shown by `hotline --help`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hotline_tools.local_client import call_local_or_exit

# One meaning per exit code across every command, so a script can tell "fix the command
# line" from "fix the file or the deployment".
EXIT_CODES = (
    "Exit codes: 0 done; 1 the input (a file, a row) is wrong, or the target (AWS, the local "
    "runtime) failed or refused it; 2 the command line is wrong (an unknown option, a bad "
    "value, --from not before --to); 3 an import stopped part way and the table could not be "
    "put back as it was."
)
app = typer.Typer(
    help="Hotline: 'May I call you now?' on one machine, and tools around it.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:3000"

UrlOption = Annotated[str, typer.Option("--url", help="the running local hotline")]


@app.command()
def local(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 picks a free one)")] = 3000,
    directory: Annotated[
        Path | None,
        typer.Option(help="phonenumber.json to use instead of tests/events/phonenumber.json"),
    ] = None,
    answer_window: Annotated[
        int | None,
        typer.Option(help="seconds the receiver has to answer (template default otherwise)"),
    ] = None,
    members: Annotated[
        Path | None, typer.Option(help="members of the benefits line (JSON or CSV)")
    ] = None,
    benefits: Annotated[
        Path | None, typer.Option(help="PINs and campaign URLs of the benefits line")
    ] = None,
    line_channel_secret: Annotated[
        str,
        typer.Option(
            help="the LINE channel secret webhooks are signed with (LINE is on locally; "
            "the Messaging API is a fake that checks every request against LINE's OpenAPI)"
        ),
    ] = "local-channel-secret",  # noqa: S107 - the documented local default, no secret
) -> None:
    """Run the whole hotline here: no AWS account, no Docker. Ctrl-C stops it."""
    from hotline_tools.directory_cli import load
    from hotline_tools.local.line_local import LineInputError, check_channel_secret

    try:
        check_channel_secret(line_channel_secret)
    except LineInputError as exc:
        err.print(f"[red]--line-channel-secret: {escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(2) from exc

    # A bad file is the input being wrong (exit 1), checked exactly as `directory check` does.
    raw = load(directory)[0] if directory is not None else None
    seeds = {
        kind: _read_rows(kind, path)
        for kind, path in (("members", members), ("benefits", benefits))
        if path
    }
    _offline_aws()
    from hotline_tools.local.flow import FlowError
    from hotline_tools.local.server import LocalServer
    from hotline_tools.local.template import ParameterError, TemplateError

    try:
        # --answer-window is the template's AnswerWindowSeconds: the template's constraints
        # (MinValue, MaxValue) are the one check of it.
        server = LocalServer(
            port=port,
            directory=raw,
            answer_window=answer_window,
            members=seeds.get("members"),
            benefits=seeds.get("benefits"),
            line_channel_secret=line_channel_secret,
        )
    except OSError as exc:
        if exc.filename:  # a file the runtime reads (the template, the default directory)
            err.print(f"[red]cannot read {escape(str(exc.filename))}: {exc.strerror}[/red]")
        else:
            err.print(f"[red]cannot listen on 127.0.0.1:{port}: {exc.strerror}[/red]")
        raise typer.Exit(1) from exc
    except (TemplateError, FlowError) as exc:
        err.print(f"[red]cannot start: {escape(str(exc))}[/red]", soft_wrap=True)
        # A value from the command line (--answer-window) is 2; the template or a flow is 1.
        raise typer.Exit(2 if isinstance(exc, ParameterError) else 1) from exc

    stopping = threading.Event()

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        server.serve_in_background()
        err.print(f"starting the local hotline on {server.url} …")
        server.provision()
        _print_ready(server)
        while not stopping.wait(3600):
            pass
    except KeyboardInterrupt:
        err.print("stopping …")
    except (TemplateError, FlowError) as exc:  # wiring the template has and moto cannot take
        err.print(f"[red]cannot start: {escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(1) from exc
    finally:
        server.stop()


def _offline_aws() -> None:
    """The local runtime never talks to AWS: fake credentials, the template's region."""
    from hotline_tools.local.template import REGION

    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
    )


def _print_ready(server: Any) -> None:
    table = Table(title="people in the directory")
    table.add_column("name")
    table.add_column("phone")
    table.add_column("lang")
    for person in server.people():
        table.add_row(*(escape(person[k]) for k in ("name", "phone", "lang")))
    console.print(table)
    lines = ", ".join(f"{name} {number}" for name, number in server.engine.lines.items())
    console.print(f"lines: {lines}")
    console.print(f"[bold green]ready[/bold green]: open {server.url}/  (Ctrl-C stops)")


@app.command()
def call(
    caller: Annotated[str, typer.Argument(metavar="FROM", help="the calling number, +81…")],
    digits: Annotated[str, typer.Option(help="keys pressed as the flow asks, e.g. 1234#")] = "",
    line: Annotated[
        str, typer.Option(help="the line: a contact flow's name (hotline, benefits)")
    ] = "hotline",
    url: UrlOption = DEFAULT_URL,
    to: Annotated[str, typer.Option(help="the dialled number, for several hotlines")] = "",
) -> None:
    """Call a line of the running local hotline and print what it says."""
    body: dict[str, Any] = {"from": caller, "line": line}
    if digits:
        body["digits"] = digits
    if to:
        body["to"] = to
    result = _request(url, "POST", "/_local/calls", body)
    console.print(f"[dim]contact {escape(str(result.get('contact_id', '?')))}[/dim]")
    prompts = result.get("prompts") or []
    if not prompts:
        console.print("[yellow](the line said nothing)[/yellow]")
    for prompt in prompts:
        # One line per prompt, never cut at the console's width: the terminal wraps it.
        console.print(f"🔊 {escape(prompt)}", soft_wrap=True, highlight=False)
    attributes = result.get("attributes") or {}
    if attributes:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(attributes.items()))
        console.print(f"[dim]attributes: {escape(shown)}[/dim]", soft_wrap=True)


@app.command()
def sms(
    to: Annotated[str | None, typer.Option(help="only messages to this number")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """List the SMS the running local hotline has sent, oldest first."""
    path = "/_local/sms" + (f"?to={quote(to)}" if to else "")
    messages = _request(url, "GET", path)
    if not messages:
        console.print("no SMS yet" + (f" to {escape(to)}" if to else ""))
        return
    for message in messages:
        # A heading, then the body whole: a link in it stays on one line, ready to open.
        to_, sent_at = escape(str(message["to"])), escape(str(message["sent_at"]))
        console.print(f"[bold]→ {to_}[/bold]  [dim]{sent_at}[/dim]", soft_wrap=True)
        body = str(message["body"]).replace("\n", "\n  ")
        console.print(f"  {escape(body)}", soft_wrap=True, highlight=False)


def _request(base: str, method: str, path: str, body: Any = None) -> Any:
    return call_local_or_exit(base, method, path, body)


def _read_rows(kind: Kind, path: Path) -> bytes:
    """The file's bytes once every row is valid; else every problem, and exit 1, exactly as
    `hotline members|benefits import` reports the same file."""
    data, _ = read_rows_or_exit(kind, path, err)
    return data


# The second line's data tools (members, benefits) live with their importer.
from hotline_tools.importer import benefits_app, members_app, read_rows_or_exit  # noqa: E402
from hotline_tools.rows import Kind  # noqa: E402

app.add_typer(members_app, name="members")
app.add_typer(benefits_app, name="benefits")

# Operating a deployment (or a running local runtime): replay, event log, directory.
from hotline_tools.directory_cli import directory_app  # noqa: E402
from hotline_tools.operate import events_app, replay  # noqa: E402

app.command()(replay)
app.add_typer(events_app, name="events")
app.add_typer(directory_app, name="directory")

from hotline_tools import forget  # noqa: E402

directory_app.command("forget")(forget.command)

from hotline_tools.dead_letters import dead_letters_app  # noqa: E402

app.add_typer(dead_letters_app, name="dead-letters")

from hotline_tools.doctor import doctor  # noqa: E402

app.command()(doctor)

from hotline_tools.line_cli import line_app  # noqa: E402

app.add_typer(line_app, name="line")


def main() -> None:  # pragma: no cover - `python -m hotline_tools.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
