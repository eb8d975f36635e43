"""The local runtime over HTTP: the phone simulator at `/`, the template's HTTP API routes (the
real `answer_link` handler) and the control API of DESIGN.md's "Local runtime contract".

The socket is bound first, so `/_local/health` answers 503 while the engine provisions the
template in moto and 200 once it is ready. stdlib only: one thread per request, the engine
serialises what must be serialised."""

from __future__ import annotations

import json
import re
import sys
import threading
import traceback
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hotline_core.directory import Directory, parse_directory
from hotline_tools.local.engine import (
    DEFAULT_DIRECTORY,
    DEFAULT_LINE,
    BadRequest,
    LocalHotline,
    NotFound,
)
from hotline_tools.local.template import ROOT

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024
DIGITS = re.compile(r"^[0-9*#]*$")
JSON_TYPE = "application/json; charset=utf-8"


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
    ) -> None:
        self.httpd = _Server((host, port), _Handler)
        self.httpd.app = self
        self.port: int = self.httpd.server_address[1]
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
            )
        except BaseException:
            self.httpd.server_close()  # a bad template or flow leaves no port taken
            raise
        self.ready = threading.Event()
        self.failure: str | None = None
        self._serving: threading.Thread | None = None
        self._engine_started = False

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

    def people(self) -> list[dict[str, str]]:
        return [{"name": p.name, "phone": p.phone, "lang": p.lang} for p in self.directory.people]

    def circles(self) -> list[dict[str, Any]]:
        """Each circle's hotline number (None for a plain-array directory: the default line)
        and its members' phones, in directory order."""
        return [
            {"number": c.number, "members": [p.phone for p in c.people]}
            for c in self.directory.circles
        ]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # a burst of simulated phones must not be refused at the door
    app: LocalServer


class _BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "hotline-local"

    # --- plumbing ------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the simulator polls every second: access logs would drown the handlers' logs

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        try:
            body = self._body()
            if url.path == "/_local/health":
                if method == "GET":
                    self._health(app)
                else:
                    self._json(405, {"error": f"{method} not allowed on {url.path}"})
            elif url.path.startswith("/_local/") or url.path in ("/", "/index.html"):
                if url.path in ("/", "/index.html") and method == "GET":
                    self._send(
                        200, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8"
                    )
                elif not app.ready.is_set():
                    self._json(503, {"error": "the local hotline is still starting"})
                else:
                    self._control(app, method, url.path, url.query, body)
            elif not app.ready.is_set():
                self._json(503, {"error": "the local hotline is still starting"})
            else:
                self._route(app, method, body)
        except _BadBody as exc:
            self._json(exc.status, {"error": str(exc)})
        except BadRequest as exc:
            self._json(400, {"error": str(exc)})
        except NotFound as exc:
            self._json(404, {"error": str(exc.args[0] if exc.args else exc)})
        except Exception as exc:  # noqa: BLE001 - report it to the client and the console
            traceback.print_exc(file=sys.stderr)
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError as exc:
            raise _BadBody(400, "Content-Length is not a number") from exc
        if size > MAX_BODY:
            self.close_connection = True
            raise _BadBody(413, f"request body larger than {MAX_BODY} bytes")
        return self.rfile.read(size)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        pairs = list(headers.items() if isinstance(headers, dict) else headers or [])
        if "content-type" not in {name.lower() for name, _ in pairs}:
            self.send_header("Content-Type", content_type)
        for name, value in pairs:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
        self._send(status, body, JSON_TYPE, {"Cache-Control": "no-store"})

    # --- routes --------------------------------------------------------------------------
    def _health(self, app: LocalServer) -> None:
        if app.failure:
            self._json(500, {"status": "failed", "error": app.failure.strip().splitlines()[-1]})
        elif app.ready.is_set():
            self._json(200, {"status": "ok"})
        else:
            self._json(503, {"status": "starting"})

    def _route(self, app: LocalServer, method: str, body: bytes) -> None:
        # Every header line, a repeated name too: the HTTP API event joins them.
        result = app.engine.http(method, self.path, body=body, headers=self.headers.items())
        if result is None:
            self._json(404, {"error": f"no route for {method} {urlsplit(self.path).path}"})
            return
        headers = [*result.headers.items(), *(("Set-Cookie", c) for c in result.cookies)]
        self._send(result.status, result.body, "application/octet-stream", headers)

    def _control(self, app: LocalServer, method: str, path: str, query: str, body: bytes) -> None:
        engine = app.engine
        routes: dict[tuple[str, str], Any] = {
            ("POST", "/_local/calls"): lambda: self._call(engine, _object(body)),
            ("GET", "/_local/sms"): lambda: engine.sms(_query_one(query, "to")),
            ("GET", "/_local/events"): engine.events,
            ("POST", "/_local/clock/advance"): lambda: self._advance(engine, _object(body)),
            ("POST", "/_local/replay"): lambda: self._replay(engine, _object(body)),
            ("GET", "/_local/directory"): lambda: {
                "people": app.people(),
                "lines": engine.lines,
                "circles": app.circles(),
            },
            ("GET", "/_local/dead-letters"): engine.dead_letter_entries,
            ("POST", "/_local/dead-letters/redrive"): lambda: self._redrive(engine, _object(body)),
            ("GET", "/_local/faults"): engine.faults,
            ("POST", "/_local/faults"): lambda: self._fault(engine, _object(body)),
            ("DELETE", "/_local/faults"): engine.clear_faults,
            ("POST", "/_local/members"): lambda: self._rows(engine, "members", _object(body)),
            ("POST", "/_local/benefits"): lambda: self._rows(engine, "benefits", _object(body)),
        }
        action = routes.get((method, path))
        if action is None:
            known = {p for _, p in routes}
            if path in known:
                self._json(405, {"error": f"{method} not allowed on {path}"})
            else:
                self._json(404, {"error": f"no control route {path}"})
            return
        self._json(200, action())

    @staticmethod
    def _rows(engine: LocalHotline, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        rows = data.get("rows")
        if not isinstance(rows, list):
            raise BadRequest('"rows" must be a list of objects')
        return {"written": engine.load_rows(kind, rows)}

    @staticmethod
    def _call(engine: LocalHotline, data: dict[str, Any]) -> dict[str, Any]:
        caller, to, digits = data.get("from"), data.get("to"), data.get("digits", "")
        if not isinstance(caller, str) or not caller.strip():
            raise BadRequest('"from" must be the calling number as a string, like "+81…"')
        if to is not None and not isinstance(to, str):
            raise BadRequest('"to" must be a string (the dialled number) when given')
        if digits is None:
            digits = ""
        if not isinstance(digits, str) or not DIGITS.match(digits):
            raise BadRequest('"digits" must be a string of 0-9, * and #')
        # The engine checks "line" (the template's contact flows) as for any caller.
        line = data.get("line", DEFAULT_LINE)
        return engine.call(caller.strip(), line=line, to=to, digits=digits)

    @staticmethod
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

    @staticmethod
    def _redrive(engine: LocalHotline, data: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(data) - {"id"})
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
        letter_id = data.get("id")
        if "id" in data and (not isinstance(letter_id, str) or not letter_id):
            raise BadRequest('"id" must be a dead letter\'s id (a string); {} redrives them all')
        return {"redriven": engine.redrive(letter_id)}

    @staticmethod
    def _advance(engine: LocalHotline, data: dict[str, Any]) -> dict[str, Any]:
        return engine.advance(data.get("seconds"))  # the clock checks it

    @staticmethod
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


def _query_one(query: str, name: str) -> str | None:
    values = parse_qs(query).get(name)
    if not values:
        return None
    # An unencoded "+81…" arrives as " 81…" (a form-encoded "+" is a space): mean the "+".
    value = values[0]
    return "+" + value[1:] if value.startswith(" ") else value
