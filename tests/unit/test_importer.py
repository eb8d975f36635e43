"""`hotline members|benefits import`: JSON and CSV parsing, every bad row reported with its
number, nothing written on any error; writes go through a fake DynamoDB client (no AWS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hotline_tools import importer
from hotline_tools.rows import RowsInvalid, parse_rows

MEMBERS_JSON = json.dumps(
    [
        {"phone": "+819011112222", "member_id": "M001"},
        {"phone": "+14155550123", "member_id": "M002"},
    ]
).encode()
BENEFITS_CSV = b"pin,campaign_url\n1234,https://example.jp/a\n12345678,https://example.jp/b?x=1\n"


class FakeDynamo:
    def __init__(self, unprocessed_rounds: int = 0, refuse: bool = False) -> None:
        self.items: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.unprocessed_rounds = unprocessed_rounds
        self.refuse = refuse

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        self.calls.append("transact")
        if self.refuse:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "no"}},
                "TransactWriteItems",
            )
        self.items += [t["Put"]["Item"] for t in TransactItems]

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("batch")
        [(table, requests)] = RequestItems.items()
        if self.unprocessed_rounds > 0 and len(requests) > 1:
            self.unprocessed_rounds -= 1
            done, left = requests[:1], requests[1:]
        else:
            done, left = requests, []
        self.items += [r["PutRequest"]["Item"] for r in done]
        return {"UnprocessedItems": {table: left} if left else {}}


# --- parsing -------------------------------------------------------------------------------
def test_json_members_are_parsed() -> None:
    assert parse_rows("members", MEMBERS_JSON) == [
        {"phone": "+819011112222", "member_id": "M001"},
        {"phone": "+14155550123", "member_id": "M002"},
    ]


def test_csv_benefits_are_parsed_with_a_bom_and_spaces() -> None:
    data = "\ufeffpin,campaign_url\n 1234 ,https://example.jp/a\n".encode()
    assert parse_rows("benefits", data) == [{"pin": "1234", "campaign_url": "https://example.jp/a"}]


def test_csv_members_and_json_benefits_too() -> None:
    assert parse_rows("members", b"phone,member_id\n+819011112222,M1\n") == [
        {"phone": "+819011112222", "member_id": "M1"}
    ]
    data = json.dumps([{"pin": "0042", "campaign_url": "https://x.example/"}]).encode()
    assert parse_rows("benefits", data)[0]["pin"] == "0042"  # leading zeros are kept


def test_every_bad_row_is_reported_with_its_number() -> None:
    data = (
        b"pin,campaign_url\n"
        b"1234,https://example.jp/ok\n"  # row 1
        b"123,https://example.jp/short\n"  # row 2: pin too short
        b"5678,http://example.jp/plain\n"  # row 3: not https
        b"1234,https://example.jp/dup\n"  # row 4: duplicate of row 1
        b"99999,https://example.jp/<b>x</b>\n"  # row 5: markup
        b",\n"  # row 6: both missing
        b"123456789,javascript:alert(1)\n"  # row 7: two problems
    )

    with pytest.raises(RowsInvalid) as caught:
        parse_rows("benefits", data)

    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "row 2",
        "row 3",
        "row 4",
        "row 5",
        "row 6",
        "row 6",
        "row 7",
        "row 7",
    ]
    assert "duplicate pin, first seen in row 1" in problems[2]
    assert not any("123456789" in p or "5678" in p for p in problems)  # PINs are not echoed


def test_bad_member_rows_are_reported() -> None:
    data = json.dumps(
        [
            {"phone": "09011112222", "member_id": "M1"},
            {"phone": "+819011112222"},
            {"phone": "+819011112222", "member_id": "M3", "name": "x"},
            {"phone": "+819011112222", "member_id": "M4"},
            "not an object",
            {"phone": 819011112222, "member_id": "M6"},
        ]
    ).encode()

    with pytest.raises(RowsInvalid) as caught:
        parse_rows("members", data)

    assert caught.value.problems == [
        "row 1: phone 090******22 is not an E.164 number (+ and 7-15 digits)",
        "row 2: member_id is missing",
        "row 3: unexpected column(s) name",
        "row 3: duplicate phone, first seen in row 2",
        "row 4: duplicate phone, first seen in row 2",
        "row 5: expected an object with phone and member_id",
        "row 6: phone must be a string",
    ]
    assert "09011112222" not in " ".join(caught.value.problems)  # phones are masked


@pytest.mark.parametrize("data", [b"", b"[]", b"{}", b"[1,", b"\xff\xfe\x00"])
def test_unusable_files_are_refused(data: bytes) -> None:
    with pytest.raises(RowsInvalid):
        parse_rows("members", data)


# --- writing -------------------------------------------------------------------------------
def test_up_to_100_rows_are_one_transaction() -> None:
    db = FakeDynamo()
    rows = parse_rows("members", MEMBERS_JSON)

    assert importer.write_rows(db, "members-table", "members", rows) == 2
    assert db.calls == ["transact"]
    assert db.items[0] == {"phone": {"S": "+819011112222"}, "member_id": {"S": "M001"}}


def test_a_refused_transaction_writes_nothing() -> None:
    db = FakeDynamo(refuse=True)
    with pytest.raises(importer.ImportFailed) as caught:
        importer.write_rows(db, "t", "members", parse_rows("members", MEMBERS_JSON))
    assert caught.value.written == 0
    assert db.items == []


def test_more_than_100_rows_are_batched_with_unprocessed_items_retried() -> None:
    rows = [{"pin": f"{i:04d}", "campaign_url": "https://example.jp/x"} for i in range(130)]
    db = FakeDynamo(unprocessed_rounds=3)

    written = importer.write_rows(db, "t", "benefits", rows, sleep=lambda _s: None)

    assert written == 130
    assert sorted(i["pin"]["S"] for i in db.items) == [r["pin"] for r in rows]
    assert db.calls.count("batch") == 6 + 3


def test_a_batch_that_never_goes_through_reports_how_many_were_written() -> None:
    rows = [{"pin": f"{i:04d}", "campaign_url": "https://example.jp/x"} for i in range(130)]
    db = FakeDynamo(unprocessed_rounds=10_000)

    with pytest.raises(importer.ImportFailed) as caught:
        importer.write_rows(db, "t", "benefits", rows, sleep=lambda _s: None)

    assert caught.value.written == len(db.items)
    assert 0 < caught.value.written < 130


# --- the command ---------------------------------------------------------------------------
@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, FakeDynamo]:
    db = FakeDynamo()
    monkeypatch.setattr(importer.boto3, "client", lambda service: db)
    monkeypatch.setattr(importer, "table_name", lambda stack, kind: f"{stack}-{kind}")
    app = typer.Typer()
    app.add_typer(importer.members_app, name="members")
    app.add_typer(importer.benefits_app, name="benefits")
    return app, db


def test_the_command_imports_a_good_file(cli: Any, tmp_path: Path) -> None:
    app, db = cli
    file = tmp_path / "benefits.csv"
    file.write_bytes(BENEFITS_CSV)

    result = CliRunner().invoke(app, ["benefits", "import", str(file), "--stack", "prod"])

    assert result.exit_code == 0, result.output
    assert "2 benefits imported into prod" in result.output
    assert len(db.items) == 2


def test_the_command_writes_nothing_and_exits_non_zero_on_any_bad_row(
    cli: Any, tmp_path: Path
) -> None:
    app, db = cli
    file = tmp_path / "members.json"
    file.write_text(
        json.dumps(
            [
                {"phone": "+819011112222", "member_id": "M1"},
                {"phone": "bad", "member_id": "M2"},
                {"phone": "+819033334444", "member_id": ""},
            ]
        )
    )

    result = CliRunner().invoke(app, ["members", "import", str(file)])

    assert result.exit_code == 1
    assert "row 2" in result.output and "row 3" in result.output
    assert "nothing was written" in result.output
    assert db.calls == [] and db.items == []


def test_the_command_posts_to_a_local_runtime(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, db = cli
    sent: list[tuple[str, str, int]] = []
    monkeypatch.setattr(
        importer,
        "post_to_local",
        lambda url, kind, rows: sent.append((url, kind, len(rows))) or len(rows),
    )
    file = tmp_path / "members.json"
    file.write_bytes(MEMBERS_JSON)

    result = CliRunner().invoke(
        app, ["members", "import", str(file), "--local", "http://127.0.0.1:3000"]
    )

    assert result.exit_code == 0, result.output
    assert sent == [("http://127.0.0.1:3000", "members", 2)]
    assert db.calls == []


def test_a_missing_file_is_a_clear_error(cli: Any, tmp_path: Path) -> None:
    app, _ = cli
    result = CliRunner().invoke(app, ["members", "import", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "cannot read" in result.output
