"""`hotline members|benefits import`: JSON and CSV parsing, every bad row reported with its
number, nothing written on any error; writes go through a fake DynamoDB client (no AWS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hotline_core.pins import keyed_pin_hash
from hotline_tools import importer
from hotline_tools.rows import RowsInvalid, parse_rows

MEMBERS_JSON = json.dumps(
    [
        {"phone": "+819011112222", "member_id": "M001"},
        {"phone": "+14155550123", "member_id": "M002"},
    ]
).encode()
BENEFITS_CSV = b"pin,campaign_url\n1234,https://example.jp/a\n12345678,https://example.jp/b?x=1\n"


def refused(operation: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "no"}}, operation
    )


class FakeDynamo:
    """One table in memory, keyed by its partition key (`phone` or `pin_hash`), with DynamoDB's
    transaction semantics: a TransactWriteItems call applies all its items or none.
    `fail_transactions` lists which calls (1-based) are refused; `unprocessed_reads` makes
    that many BatchGetItem answers leave all but one key unprocessed."""

    def __init__(
        self,
        key: str = "pin_hash",
        items: dict[str, dict[str, Any]] | None = None,
        *,
        fail_transactions: tuple[int, ...] = (),
        unprocessed_reads: int = 0,
    ) -> None:
        self.key = key
        self.items: dict[str, dict[str, Any]] = dict(items or {})
        self.calls: list[str] = []
        self.transactions = 0
        self.fail_transactions = fail_transactions
        self.unprocessed_reads = unprocessed_reads

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        self.calls.append("transact")
        self.transactions += 1
        assert len(TransactItems) <= 100, "DynamoDB takes at most 100 items per transaction"
        if self.transactions in self.fail_transactions:
            raise refused("TransactWriteItems")
        for operation in TransactItems:
            if "Put" in operation:
                item = operation["Put"]["Item"]
                self.items[item[self.key]["S"]] = item
            else:
                self.items.pop(operation["Delete"]["Key"][self.key]["S"], None)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("read")
        [(table, request)] = RequestItems.items()
        assert request["ConsistentRead"] is True
        keys = request["Keys"]
        assert len(keys) <= 100, "BatchGetItem takes at most 100 keys"
        if self.unprocessed_reads > 0 and len(keys) > 1:
            self.unprocessed_reads -= 1
            keys, left = keys[:1], keys[1:]
        else:
            left = []
        found = [self.items[k[self.key]["S"]] for k in keys if k[self.key]["S"] in self.items]
        return {
            "Responses": {table: found},
            "UnprocessedKeys": {table: {"Keys": left}} if left else {},
        }


def benefit_rows(count: int, url: str = "https://example.jp/new") -> list[dict[str, str]]:
    return [{"pin": f"{i:04d}", "campaign_url": url} for i in range(count)]


# The stack's PIN key in these tests: benefits are keyed by the PIN's keyed hash under it.
KEY = b"k" * 32


def pin_hash(pin: str) -> str:
    return keyed_pin_hash(KEY, pin)


def benefit_item(pin: str, url: str) -> dict[str, Any]:
    return {"pin_hash": {"S": pin_hash(pin)}, "campaign_url": {"S": url}}


def existing_benefits() -> dict[str, dict[str, Any]]:
    """Two rows the file replaces (one with an extra attribute) and one it does not touch."""
    items = {
        pin_hash("0007"): benefit_item("0007", "https://example.jp/old-7"),
        pin_hash("0150"): benefit_item("0150", "https://example.jp/old-150")
        | {"note": {"S": "kept"}},
        pin_hash("9999"): benefit_item("9999", "https://example.jp/unrelated"),
    }
    return items


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


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "no rows"),
        (b"[]", "no rows"),
        (b"[1,", "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b'{"phone": "+819011112222", "member_id": "M1"}', "must be an array of objects"),
        (b'  {"rows": []}', "must be an array of objects"),
        (b"{}", "must be an array of objects"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_unusable_files_are_refused_saying_why(data: bytes, says: str) -> None:
    with pytest.raises(RowsInvalid) as caught:
        parse_rows("members", data)

    [problem] = caught.value.problems
    assert says in problem


def test_pins_are_checked_with_the_core_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from hotline_tools import rows

    asked: list[str] = []
    monkeypatch.setattr(rows, "is_pin_shaped", lambda pin: asked.append(pin) or True)

    parse_rows("benefits", b"pin,campaign_url\n12,https://example.jp/a\n")

    assert asked == ["12"]  # one rule for the shape of a PIN: hotline_core.pins


# --- writing -------------------------------------------------------------------------------
def test_up_to_100_rows_are_one_transaction() -> None:
    db = FakeDynamo(key="phone")
    rows = parse_rows("members", MEMBERS_JSON)

    assert importer.write_rows(db, "members-table", "members", rows) == 2
    assert db.calls == ["transact"]
    assert db.items["+819011112222"] == {
        "phone": {"S": "+819011112222"},
        "member_id": {"S": "M001"},
    }


def test_a_refused_transaction_writes_nothing() -> None:
    db = FakeDynamo(key="phone", fail_transactions=(1,))

    with pytest.raises(importer.ImportFailed, match="nothing was written") as caught:
        importer.write_rows(db, "t", "members", parse_rows("members", MEMBERS_JSON))

    assert caught.value.partial is False
    assert db.items == {}


def test_more_than_100_rows_read_what_they_replace_then_go_in_transactions_of_100() -> None:
    db = FakeDynamo(items=existing_benefits(), unprocessed_reads=2)

    written = importer.write_rows(
        db, "t", "benefits", benefit_rows(250), sleep=lambda _s: None, pin_key=KEY
    )

    assert written == 250
    assert db.calls == ["read"] * (3 + 2) + ["transact"] * 3  # unprocessed keys read again
    assert sorted(db.items) == sorted(
        pin_hash(p) for p in [*(f"{i:04d}" for i in range(250)), "9999"]
    )
    assert db.items[pin_hash("0150")] == benefit_item("0150", "https://example.jp/new")


@pytest.mark.parametrize("failing", [1, 2, 3])
def test_a_failure_part_way_restores_the_table_exactly(failing: int) -> None:
    before = existing_benefits()
    db = FakeDynamo(items=before, fail_transactions=(failing,))

    with pytest.raises(importer.ImportFailed) as caught:
        importer.write_rows(
            db, "t", "benefits", benefit_rows(250), sleep=lambda _s: None, pin_key=KEY
        )

    assert db.items == before  # replaced rows are back, new ones are gone, others untouched
    assert caught.value.partial is False
    assert "the table was restored" in str(caught.value)
    assert db.calls[: 3 + failing] == ["read"] * 3 + ["transact"] * failing
    assert db.calls[3 + failing :] == ["transact"] * 3  # the restore: every key of the file


def test_the_restore_retries_a_refused_transaction() -> None:
    before = existing_benefits()
    db = FakeDynamo(items=before, fail_transactions=(2, 4))  # the 2nd write, the 1st restore

    with pytest.raises(importer.ImportFailed, match="the table was restored"):
        importer.write_rows(
            db, "t", "benefits", benefit_rows(250), sleep=lambda _s: None, pin_key=KEY
        )

    assert db.items == before


def test_a_restore_that_fails_too_says_the_table_may_hold_part_of_the_file() -> None:
    db = FakeDynamo(items=existing_benefits(), fail_transactions=(2, *range(3, 3 + 8)))

    with pytest.raises(importer.ImportFailed) as caught:
        importer.write_rows(
            db, "t", "benefits", benefit_rows(250), sleep=lambda _s: None, pin_key=KEY
        )

    assert caught.value.partial is True
    assert "restoring the table failed too" in str(caught.value)
    assert "may hold part of the file" in str(caught.value)


def test_reads_that_never_finish_write_nothing() -> None:
    db = FakeDynamo(items=existing_benefits(), unprocessed_reads=10_000)

    with pytest.raises(importer.ImportFailed, match="nothing was written"):
        importer.write_rows(
            db, "t", "benefits", benefit_rows(150), sleep=lambda _s: None, pin_key=KEY
        )

    assert "transact" not in db.calls
    assert db.items == existing_benefits()


# --- the command ---------------------------------------------------------------------------
@pytest.fixture
def db() -> FakeDynamo:
    return FakeDynamo()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, db: FakeDynamo) -> tuple[typer.Typer, FakeDynamo]:
    monkeypatch.setattr(importer.operate, "aws", lambda service: db)
    monkeypatch.setattr(importer, "table_name", lambda stack, kind: f"{stack}-{kind}")
    monkeypatch.setattr(importer, "stack_pin_key", lambda stack: KEY)
    app = typer.Typer()
    app.add_typer(importer.members_app, name="members")
    app.add_typer(importer.benefits_app, name="benefits")
    return app, db


def test_the_command_imports_a_good_file_with_a_progress_bar(cli: Any, tmp_path: Path) -> None:
    app, db = cli
    file = tmp_path / "benefits.csv"
    file.write_bytes(BENEFITS_CSV)

    result = CliRunner().invoke(app, ["benefits", "import", str(file), "--stack", "prod"])

    assert result.exit_code == 0, result.output
    assert "2 benefits imported into prod" in result.output
    [bar] = [line for line in result.output.splitlines() if "benefits -> prod-benefits" in line]
    assert "━" in bar and "2/2" in bar  # rich's bar, complete, with the count
    # Only the keyed hashes reach the table, never a PIN.
    assert sorted(db.items) == sorted([pin_hash("1234"), pin_hash("12345678")])
    assert "1234" not in json.dumps(db.items)


def test_the_command_says_the_table_was_restored_and_exits_non_zero(
    cli: Any, tmp_path: Path, db: FakeDynamo
) -> None:
    app, _ = cli
    db.items, db.fail_transactions = existing_benefits(), (2,)
    file = tmp_path / "benefits.json"
    file.write_text(json.dumps(benefit_rows(150)))

    result = CliRunner().invoke(app, ["benefits", "import", str(file)])

    said = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 1
    assert "the table was restored to what it was before the import" in said
    assert "imported into" not in said
    assert db.items == existing_benefits()


def test_the_command_exits_3_when_even_the_restore_failed(
    cli: Any, tmp_path: Path, db: FakeDynamo, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = cli
    monkeypatch.setattr(importer.time, "sleep", lambda _s: None)  # the restore's back-off
    db.fail_transactions = (2, *range(3, 3 + 8))
    file = tmp_path / "benefits.json"
    file.write_text(json.dumps(benefit_rows(150)))

    result = CliRunner().invoke(app, ["benefits", "import", str(file)])

    assert result.exit_code == 3
    assert "may hold part of the file" in " ".join(result.output.split())


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
    assert db.calls == [] and db.items == {}


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
    app, db = cli
    result = CliRunner().invoke(app, ["members", "import", str(tmp_path / "nope.json")])
    assert result.exit_code == 1  # the input is wrong (2 is for the command line)
    assert "cannot read" in result.output and "nothing was written" in result.output
    assert db.calls == []


@pytest.mark.parametrize("column", ["[/x]", "[bold]x", "[red]x[/red]"])
def test_markup_in_a_file_is_printed_as_text(cli: Any, tmp_path: Path, column: str) -> None:
    app, db = cli
    file = tmp_path / "[bold]members.csv"
    file.write_text(f"phone,member_id,{column}\n+819011112222,M1,v\n")

    result = CliRunner().invoke(app, ["members", "import", str(file)])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not a MarkupError
    assert f"row 1: unexpected column(s) {column}" in result.output
    assert "[bold]members.csv: 1 problem(s); nothing was written" in result.output
    assert db.calls == []


def test_markup_in_a_stack_name_is_printed_as_text(cli: Any, tmp_path: Path) -> None:
    app, _ = cli
    file = tmp_path / "benefits.csv"
    file.write_bytes(BENEFITS_CSV)

    result = CliRunner().invoke(app, ["benefits", "import", str(file), "--stack", "[bold]prod"])

    assert result.exit_code == 0, result.output
    assert "benefits -> [bold]prod-benefits" in result.output  # the progress bar's label
    assert "2 benefits imported into [bold]prod" in result.output


def test_no_aws_region_is_a_clean_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session that reads the above
    app = typer.Typer()
    app.add_typer(importer.members_app, name="members")
    file = tmp_path / "members.json"
    file.write_bytes(MEMBERS_JSON)

    result = CliRunner().invoke(app, ["members", "import", str(file), "--stack", "prod"])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not a NoRegionError traceback
    [line] = result.output.strip().splitlines()
    assert line == "cannot use AWS (You must specify a region.); nothing was written"
