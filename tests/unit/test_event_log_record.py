"""The event log's record, as template.yaml's EventLogRule writes it to CloudWatch Logs, is
what `hotline events tail` reads: rendered here from the template's own InputTransformer."""

from __future__ import annotations

import json
import re

from hotline_tools.local.template import load_template
from hotline_tools.operate import summary
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
TRANSFORMER = TEMPLATE["Resources"]["EventLogRule"]["Properties"]["Targets"][0]["InputTransformer"]
EVENT = json.loads((ROOT / "tests/events/eventbridge-call-requested.json").read_text("utf-8"))


def path_value(event, path):
    node = event
    for part in path.removeprefix("$.").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


INGESTED = "2026-12-02T09:30:01Z"


def render(transformer, event, ingested=INGESTED):
    """EventBridge's substitution: a variable inside a JSON string goes in as its raw text, one
    outside a string as JSON; a path the event lacks is null. `ingested` is when the bus took
    the event (the predefined variable `aws.events.event.ingestion-time`, ISO 8601)."""
    values = {k: path_value(event, p) for k, p in transformer["InputPathsMap"].items()}
    values["aws.events.event.ingestion-time"] = ingested

    def fill(match):
        quoted, name = match.group(1), match.group(2)
        value = values[name]
        if quoted:
            return quoted + ("null" if value is None else str(value))
        return json.dumps(value)

    return re.sub(r'(\\"|")?<([\w.-]+)>', fill, transformer["InputTemplate"])


def test_the_event_log_record_is_a_cloudwatch_logs_entry_the_tail_command_reads():
    record = json.loads(render(TRANSFORMER, EVENT))
    assert set(record) == {"timestamp", "message"}  # what a CloudWatch Logs target takes
    assert record["timestamp"] == INGESTED  # when the bus took it, not the event's own time
    message = json.loads(record["message"])

    at, kind, about, replay = summary(message)

    assert (at, kind, replay) == (EVENT["time"], "CallRequested", "")
    assert about == EVENT["detail"]["data"]["request_id"]


def test_the_event_log_record_holds_no_phone_number_and_no_link():
    text = render(TRANSFORMER, EVENT)
    data = EVENT["detail"]["data"]
    for secret in (data["caller"]["phone"], data["receiver"]["phone"], data["link"]):
        assert secret not in text
    assert not re.search(r"\+\d{8,}", text)


def test_a_replayed_event_is_marked_and_logged_when_replayed_not_when_it_first_happened():
    replayed = {**EVENT, "replay-name": "debug-0930"}  # a replay keeps the event's `time`
    record = json.loads(render(TRANSFORMER, replayed, ingested="2027-01-20T00:00:00Z"))
    message = json.loads(record["message"])
    assert summary(message)[3] == "debug-0930"
    assert message["time"] == EVENT["time"]  # what happened when, for the reader
    # CloudWatch Logs refuses entries older than 14 days: the entry is stamped with the replay.
    assert record["timestamp"] == "2027-01-20T00:00:00Z"
