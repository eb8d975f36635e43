"""Members and benefits files (JSON array or CSV, same columns), parsed and validated as a
whole: every problem in every row is reported with its row number before anything is written.
Shared by `hotline members|benefits import` and `hotline local --members/--benefits`."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from hotline_core.phone import is_e164, mask_phone
from hotline_core.pins import is_pin_shaped, keyed_pin_hash

Kind = Literal["members", "benefits"]
KINDS: tuple[Kind, ...] = ("members", "benefits")

MEMBER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# An SMS is plain text: a URL that could smuggle markup, quotes or spaces is refused.
URL_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")


@dataclass(frozen=True)
class Spec:
    key: str  # the file's key column: unique per file
    value: str
    table_output: str  # the CloudFormation output naming the table
    table_key: str = ""  # the table's partition key, when it is not the key column itself

    @property
    def partition_key(self) -> str:
        return self.table_key or self.key


SPECS: dict[str, Spec] = {
    "members": Spec(key="phone", value="member_id", table_output="MembersTableName"),
    # A PIN is stored only as its keyed hash (`pins.keyed_pin_hash`, the stack's PIN key).
    "benefits": Spec(
        key="pin", value="campaign_url", table_output="BenefitsTableName", table_key="pin_hash"
    ),
}


class RowsInvalid(ValueError):
    """The file cannot be imported; `problems` lists every reason, row by row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _check_value(column: str, value: str) -> str | None:
    if column == "phone" and not is_e164(value):
        return f"phone {mask_phone(value)} is not an E.164 number (+ and 7-15 digits)"
    if column == "member_id" and not MEMBER_ID.fullmatch(value):
        return "member_id must be 1-64 letters, digits or . _ : -"
    if column == "pin" and not is_pin_shaped(value):
        return "pin must be 4 to 8 digits"  # the value is never echoed: it is a secret
    if column == "campaign_url":
        parts = urlsplit(value) if URL_CHARS.fullmatch(value) else None
        if parts is None or parts.scheme != "https" or not parts.hostname:
            return "campaign_url must be an https:// URL without spaces, quotes or markup"
    return None


def _records(data: bytes) -> list[Any]:
    """The raw records: JSON when the file starts with `[` or `{` (it must be an array), else
    CSV with a header row."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RowsInvalid([f"file is not UTF-8: {exc.reason} at byte {exc.start}"]) from exc
    if text.lstrip().startswith(("[", "{")):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RowsInvalid([f"not valid JSON: {exc.msg} (line {exc.lineno})"]) from exc
        if not isinstance(loaded, list):
            raise RowsInvalid(
                ["the JSON file holds one object: it must be an array of objects, [{...}, ...]"]
            )
        return loaded
    return list(csv.DictReader(io.StringIO(text), restkey="(extra values)"))


def parse_rows(kind: Kind, data: bytes) -> list[dict[str, str]]:
    """Every row of a members or benefits file, validated; raises RowsInvalid listing every
    problem. Row 1 is the first record (the CSV header is not a row)."""
    return validate_records(kind, _records(data))


def validate_records(kind: str, records: Any) -> list[dict[str, str]]:
    """`parse_rows` for records already decoded (a JSON body of the local runtime)."""
    if kind not in SPECS:
        raise RowsInvalid([f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}"])
    if not isinstance(records, list):
        raise RowsInvalid(["rows must be a list of objects"])
    spec = SPECS[kind]
    columns = (spec.key, spec.value)
    problems: list[str] = []
    rows: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    if not records:
        problems.append("no rows")
    for number, record in enumerate(records, start=1):
        where = f"row {number}"
        if not isinstance(record, dict):
            problems.append(f"{where}: expected an object with {' and '.join(columns)}")
            continue
        unexpected = sorted(str(k) for k in record if k not in columns)
        if unexpected:
            problems.append(f"{where}: unexpected column(s) {', '.join(unexpected)}")
        row: dict[str, str] = {}
        for column in columns:
            raw = record.get(column)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                problems.append(f"{where}: {column} is missing")
                continue
            if not isinstance(raw, str):
                problems.append(f"{where}: {column} must be a string")
                continue
            value = raw.strip()
            problem = _check_value(column, value)
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            row[column] = value
        key = row.get(spec.key)
        if key is not None:
            if key in seen:
                problems.append(f"{where}: duplicate {spec.key}, first seen in row {seen[key]}")
            else:
                seen[key] = number
        if len(row) == len(columns):
            rows.append(row)
    if problems:
        raise RowsInvalid(problems)
    return rows


def dynamo_item(
    kind: str, row: dict[str, str], pin_key: bytes | None = None
) -> dict[str, dict[str, str]]:
    """The row as the table keeps it: a benefit's PIN only as its keyed hash (`pin_key`, the
    stack's PIN key, is then required)."""
    spec = SPECS[kind]
    key = row[spec.key]
    if spec.table_key == "pin_hash":
        if pin_key is None:
            raise ValueError("benefits are stored under the stack's PIN key: none was given")
        key = keyed_pin_hash(pin_key, key)
    return {spec.partition_key: {"S": key}, spec.value: {"S": row[spec.value]}}
