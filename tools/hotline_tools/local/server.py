"""The local runtime over HTTP: the phone simulator at `/`, the template's HTTP API routes (the
real `answer_link` handler) and the control API of DESIGN.md's "Local runtime contract".

werkzeug serves it: a threaded WSGI server (one thread per request; the engine serialises
what must be serialised) and a `Map` of the simulator and control routes. The template's own
routes are matched by the engine, as API Gateway matches them, from `template.yaml`. The socket
is bound first, so `/_local/health` answers 503 while the engine provisions the template in
moto and 200 once it is ready."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.exceptions import MethodNotAllowed, RequestEntityTooLarge
from werkzeug.exceptions import NotFound as NoRoute
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from hotline_core.directory import Directory, parse_directory
from hotline_tools.local.engine import (
    DEFAULT_DIRECTORY,
    DEFAULT_LINE,
    BadRequest,
    LocalHotline,
    NotFound,
)
from hotline_tools.local.line_fake import simulated_user_id
from hotline_tools.local.line_local import DEFAULT_CHANNEL_SECRET
from hotline_tools.local.template import ROOT

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024
DIGITS = re.compile(r"^[0-9*#]*$")
CONTENT_LENGTH = re.compile(r"[0-9]+", re.ASCII)  # what werkzeug reads a body by
JSON_TYPE = "application/json; charset=utf-8"
REQUEST_QUEUE = 256  # a burst of simulated phones must not be refused at the door
METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
SIMULATOR = frozenset({"/", "/index.html"})

# The simulator and the control API; any other path is the template's (the engine's) to match.
ROUTES = Map(
    [
        Rule("/", endpoint="simulator", methods=["GET"]),
        Rule("/index.html", endpoint="simulator", methods=["GET"]),
        Rule("/_local/health", endpoint="health", methods=["GET"]),
        Rule("/_local/calls", endpoint="calls", methods=["POST"]),
        Rule("/_local/sms", endpoint="sms", methods=["GET"]),
        Rule("/_local/events", endpoint="events", methods=["GET"]),
        Rule("/_local/clock/advance", endpoint="advance", methods=["POST"]),
        Rule("/_local/replay", endpoint="replay", methods=["POST"]),
        Rule("/_local/directory", endpoint="directory", methods=["GET"]),
        Rule("/_local/directory", endpoint="push_directory", methods=["PUT"]),
        Rule("/_local/forget", endpoint="forget", methods=["POST"]),
        Rule("/_local/dead-letters", endpoint="dead_letters", methods=["GET"]),
        Rule("/_local/dead-letters/redrive", endpoint="redrive", methods=["POST"]),
        Rule("/_local/faults", endpoint="faults", methods=["GET"]),
        Rule("/_local/faults", endpoint="arm_fault", methods=["POST"]),
        Rule("/_local/faults", endpoint="clear_faults", methods=["DELETE"]),
        Rule("/_local/members", endpoint="members", methods=["POST"]),
        Rule("/_local/benefits", endpoint="benefits", methods=["POST"]),
        Rule("/_local/line", endpoint="line", methods=["GET"]),
        Rule("/_local/line/codes", endpoint="line_code", methods=["POST"]),
        Rule("/_local/line/send", endpoint="line_send", methods=["POST"]),
        Rule("/_local/line/links", endpoint="line_links", methods=["GET"]),
        Rule("/_local/line/unlink", endpoint="line_unlink", methods=["POST"]),
    ],
    # A path is matched as sent: "/_local//sms" is no route, not a redirect to one.
    merge_slashes=False,
)


class LocalServer:
    """Binds 127.0.0.1:PORT at construction (port 0 picks a free one); `start` serves and
    provisions; `stop` shuts both down."""

    def __init__(
        self,
        *,
        port: int = 3000,
        host: str = "127.0.0.1",
        directory: bytes | None = None,
        answer_window: int | None = None,
        members: bytes | None = None,
        benefits: bytes | None = None,
        root: Path = ROOT,
        line_channel_secret: str = DEFAULT_CHANNEL_SECRET,
    ) -> None:
        self.httpd = _serve(host, port, self._wsgi)
        self.port: int = self.httpd.port
        self.url = f"http://{host}:{self.port}"
        try:
            self.directory_bytes = directory or (root / DEFAULT_DIRECTORY).read_bytes()
            self.directory: Directory = parse_directory(self.directory_bytes)
            # The link in an SMS points at this server, so the engine needs the bound port.
            self.engine = LocalHotline(
                root=root,
                directory=self.directory_bytes,
                answer_window=answer_window,
                base_url=self.url,
                members=members,
                benefits=benefits,
                line_channel_secret=line_channel_secret,
            )
        except BaseException:
            self.httpd.server_close()  # a bad template or flow leaves no port taken
            raise
        self.ready = threading.Event()
        self.failure: str | None = None
        self._serving: threading.Thread | None = None
        self._engine_started = False
        self._actions: dict[str, Callable[[Request, bytes], Any]] = {
            "calls": lambda _, body: _call(self.engine, _object(body)),
            "sms": lambda request, _: self.engine.sms(_first(request.args.getlist("to"))),
            "events": lambda *_: self.engine.events(),
            # The clock checks the seconds.
            "advance": lambda _, body: self.engine.advance(_object(body).get("seconds")),
            "replay": lambda _, body: _replay(self.engine, _object(body)),
            "directory": lambda *_: {
                "people": self.people(),
                "lines": self.engine.lines,
                "circles": self.circles(),
            },
            "push_directory": lambda _, body: self._push_directory(body),
            "forget": lambda _, body: _forget(self.engine, _object(body)),
            "dead_letters": lambda *_: self.engine.dead_letter_entries(),
            "redrive": lambda _, body: _redrive(self.engine, _object(body)),
            "faults": lambda *_: self.engine.faults(),
            "arm_fault": lambda _, body: _fault(self.engine, _object(body)),
            "clear_faults": lambda *_: self.engine.clear_faults(),
            "members": lambda _, body: _rows(self.engine, "members", _object(body)),
            "benefits": lambda _, body: _rows(self.engine, "benefits", _object(body)),
            "line": lambda *_: self.engine.line_messages(),
            "line_code": lambda _, body: {"code": self.engine.line_code(_phone(_object(body)))},
            "line_send": lambda _, body: self.engine.line_send(_object(body)),
            "line_links": lambda *_: self._line_links(),
            "line_unlink": lambda _, body: {
                "unlinked": self.engine.line_unlink(_phone(_object(body)))
            },
        }

    def serve_in_background(self) -> None:
        self._serving = threading.Thread(
            target=self.httpd.serve_forever, name="hotline-local-http", daemon=True
        )
        self._serving.start()

    def provision(self) -> None:
        """Provision the template and start the real-time ticker; health turns 200."""
        try:
            self.engine.start()
            self._engine_started = True
            self.engine.run_in_background()
        except Exception:
            self.failure = traceback.format_exc()
            raise
        self.ready.set()

    def start(self) -> LocalServer:
        self.serve_in_background()
        self.provision()
        return self

    def stop(self) -> None:
        self.ready.clear()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._serving:
            self._serving.join(timeout=5)
        if self._engine_started:
            self.engine.stop()
            self._engine_started = False

    def _push_directory(self, body: bytes) -> dict[str, Any]:
        """`hotline directory push FILE --local`: the body is the directory file itself."""
        people = self.engine.push_directory(body)
        self.directory_bytes = body
        self.directory = parse_directory(body)  # the simulator's phones follow
        return {"people": people}

    def people(self) -> list[dict[str, str]]:
        """Each person, with the LINE user id their simulated phone uses (`line_user_id`)."""
        return [
            {
                "name": p.name,
                "phone": p.phone,
                "lang": p.lang,
                "line_user_id": simulated_user_id(p.phone),
            }
            for p in self.directory.people
        ]

    def _line_links(self) -> list[dict[str, Any]]:
        """`GET /_local/line/links`: every linked phone with its name from the directory."""
        names = {p.phone: p.name for p in self.directory.people}
        return [{**link, "name": names.get(link["phone"])} for link in self.engine.line_links()]

    def circles(self) -> list[dict[str, Any]]:
        """Each circle's hotline number (None for a plain-array directory: the default line)
        and its members' phones, in directory order."""
        return [
            {"number": c.number, "members": [p.phone for p in c.people]}
            for c in self.directory.circles
        ]

    # --- HTTP ----------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self._dispatch(_Request(environ))(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        method = request.method
        target = request.environ["hotline.target"]
        path = urlsplit(target).path
        if method not in METHODS:
            return _json(501, {"error": f"{method} is not supported"})
        try:
            body = _body(request)
            if path == "/_local/health" or path in SIMULATOR or path.startswith("/_local/"):
                return self._local(request, method, path, body)
            if not self.ready.is_set():
                return _json(503, {"error": "the local hotline is still starting"})
            return self._route(method, target, request, body)
        except _BadBody as exc:
            return _json(exc.status, {"error": str(exc)})
        except BadRequest as exc:
            return _json(400, {"error": str(exc)})
        except NotFound as exc:
            return _json(404, {"error": str(exc.args[0] if exc.args else exc)})
        except Exception as exc:  # noqa: BLE001 - report it to the client and the console
            traceback.print_exc(file=sys.stderr)
            return _json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _local(self, request: Request, method: str, path: str, body: bytes) -> Response:
        """The simulator, health (both answer while provisioning) and the control API."""
        try:
            endpoint, _ = ROUTES.bind("127.0.0.1").match(path, method)
        except NoRoute:
            endpoint = None
        except MethodNotAllowed:
            endpoint = "not allowed"
        if endpoint == "health":
            return self._health()
        if endpoint == "not allowed" and path == "/_local/health":
            return _json(405, {"error": f"{method} not allowed on {path}"})
        if endpoint == "simulator":
            html = (STATIC / "index.html").read_bytes()
            return _response(200, html, "text/html; charset=utf-8")
        if not self.ready.is_set():
            return _json(503, {"error": "the local hotline is still starting"})
        if endpoint is None or path in SIMULATOR:
            return _json(404, {"error": f"no control route {path}"})
        if endpoint == "not allowed":
            return _json(405, {"error": f"{method} not allowed on {path}"})
        return _json(200, self._actions[endpoint](request, body))

    def _health(self) -> Response:
        if self.failure:
            return _json(500, {"status": "failed", "error": self.failure.strip().splitlines()[-1]})
        if self.ready.is_set():
            return _json(200, {"status": "ok"})
        return _json(503, {"status": "starting"})

    def _route(self, method: str, target: str, request: Request, body: bytes) -> Response:
        # Every header line, a repeated name too: the HTTP API event joins them.
        headers = request.environ["hotline.header_lines"]
        result = self.engine.http(method, target, body=body, headers=headers)
        if result is None:
            return _json(404, {"error": f"no route for {method} {urlsplit(target).path}"})
        headers = [*result.headers.items(), *(("Set-Cookie", c) for c in result.cookies)]
        return _response(result.status, result.body, "application/octet-stream", headers)


class _Request(Request):
    # A chunked body is read up to one byte past the limit, so one over it is told apart.
    max_content_length = MAX_BODY + 1


class _Handler(WSGIRequestHandler):
    server_version = "hotline-local"  # type: ignore[assignment]

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        # The request as it arrived: WSGI's environ joins a repeated header with commas
        # (Cookie lines too, which API Gateway splits on ";"), drops names with "_" and
        # decodes the path; the HTTP API event is built from the lines and the raw target.
        environ["hotline.header_lines"] = self.headers.items()
        environ["hotline.target"] = self.path
        return environ

    def log(self, type: str, message: str, *args: Any) -> None:
        pass  # the simulator polls every second: access logs would drown the handlers' logs


def _serve(host: str, port: int, app: Any) -> BaseWSGIServer:
    """A threaded werkzeug server on a socket bound here: werkzeug's own bind prints and exits
    the process when the port is taken, where the CLI wants the OSError to say so itself (and
    a backlog deeper than werkzeug's 128)."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(REQUEST_QUEUE)
        bound = listening.getsockname()[1]
        return make_server(
            host, bound, app, threaded=True, request_handler=_Handler, fd=listening.fileno()
        )
    finally:
        listening.close()  # the server serves on its own duplicate of the socket


def _body(request: Request) -> bytes:
    length = request.headers.get("Content-Length")
    if length and not CONTENT_LENGTH.fullmatch(length.strip(" \t")):
        raise _BadBody(400, "Content-Length is not a number")
    too_large = _BadBody(413, f"request body larger than {MAX_BODY} bytes")
    if length and int(length) > MAX_BODY:
        raise too_large  # before reading any of it
    try:
        data = request.get_data()
    except RequestEntityTooLarge as exc:
        raise too_large from exc
    if len(data) > MAX_BODY:  # a chunked body, read one byte past the limit
        raise too_large
    return data


class _BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _response(
    status: int, body: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """`content_type` unless the headers carry their own; the length is always the body's."""
    pairs = [(name, value) for name, value in headers if name.lower() != "content-length"]
    typed = any(name.lower() == "content-type" for name, _ in pairs)
    return Response(body, status, pairs, content_type=None if typed else content_type)


def _json(status: int, data: Any) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
    return _response(status, body, JSON_TYPE, [("Cache-Control", "no-store")])


def _rows(engine: LocalHotline, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise BadRequest('"rows" must be a list of objects')
    return {"written": engine.load_rows(kind, rows)}


def _call(engine: LocalHotline, data: dict[str, Any]) -> dict[str, Any]:
    if "from" not in data:
        raise BadRequest('"from" is required: the calling number, like "+81…", or null')
    caller, to, digits = data["from"], data.get("to"), data.get("digits", "")
    # null is a call with no caller ID at all; "anonymous" one whose number is withheld.
    if caller is not None and (not isinstance(caller, str) or not caller.strip()):
        raise BadRequest(
            '"from" must be the calling number as a string, like "+81…", "anonymous" or null'
        )
    if to is not None and not isinstance(to, str):
        raise BadRequest('"to" must be a string (the dialled number) when given')
    if digits is None:
        digits = ""
    if not isinstance(digits, str) or not DIGITS.match(digits):
        raise BadRequest('"digits" must be a string of 0-9, * and #')
    # The engine checks "line" (the template's contact flows) as for any caller.
    line = data.get("line", DEFAULT_LINE)
    return engine.call(
        caller.strip() if caller is not None else None, line=line, to=to, digits=digits
    )


def _phone(data: dict[str, Any]) -> Any:
    unknown = sorted(set(data) - {"phone"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    if "phone" not in data:
        raise BadRequest('"phone" is required (E.164, like "+819011112222")')
    return data["phone"]  # the engine checks it


def _fault(engine: LocalHotline, data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - {"service", "to", "times", "error"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    if "service" not in data:
        raise BadRequest('"service" is required')
    if "times" not in data:
        raise BadRequest('"times" is required (how many calls fail)')
    # The engine checks each value, as for a test arming one in-process.
    return engine.arm_fault(
        data["service"], times=data["times"], to=data.get("to"), error=data.get("error")
    )


def _forget(engine: LocalHotline, data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - {"phone"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    return engine.forget(data.get("phone"))


def _redrive(engine: LocalHotline, data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - {"id"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    letter_id = data.get("id")
    if "id" in data and (not isinstance(letter_id, str) or not letter_id):
        raise BadRequest('"id" must be a dead letter\'s id (a string); {} redrives them all')
    return {"redriven": engine.redrive(letter_id)}


def _replay(engine: LocalHotline, data: dict[str, Any]) -> dict[str, Any]:
    return engine.replay(_instant(data, "from"), _instant(data, "to"))


def _object(body: bytes) -> dict[str, Any]:
    if not body:
        raise BadRequest("the request body must be a JSON object")
    try:
        data = json.loads(body)
    except ValueError as exc:  # bad JSON, bad UTF-8, or an integer too long to convert
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def _instant(data: dict[str, Any], key: str) -> datetime:
    value = data.get(key)
    if not isinstance(value, str):
        raise BadRequest(f'"{key}" must be an ISO-8601 time string')
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f'"{key}" is not an ISO-8601 time: {value!r}') from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first(values: list[str]) -> str | None:
    """The first non-empty value of a query parameter."""
    value = next((v for v in values if v), None)
    # An unencoded "+81…" arrives as " 81…" (a form-encoded "+" is a space): mean the "+".
    return "+" + value[1:] if value and value.startswith(" ") else value
