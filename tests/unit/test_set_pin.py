"""`hotline directory set-pin`: asks twice without echo, writes only a salted hash, keeps
the rest of the file, never prints the PIN."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from hotline_core.directory import parse_directory
from hotline_core.pins import verify_pin
from hotline_tools.directory_cli import directory_app
from tests.conftest import MIZUKI, TAKUMI

runner = CliRunner()
app = typer.Typer()
app.add_typer(directory_app, name="directory")


def write(tmp_path, data):
    path = tmp_path / "phonenumber.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_set_pin_stores_a_salted_hash_and_keeps_everything_else(tmp_path):
    path = write(
        tmp_path,
        [
            {"name": "タクミ", "phone": TAKUMI, "quiet_hours": "22:00-07:00"},
            {"name": "ミズキ", "phone": MIZUKI, "lang": "en"},
        ],
    )

    result = runner.invoke(app, ["directory", "set-pin", str(path), "タクミ"], input="2468\n2468\n")

    assert result.exit_code == 0, result.output
    assert "2468" not in result.output
    data = json.loads(path.read_text(encoding="utf-8"))
    assert verify_pin("2468", data[0]["pin_hash"]) and "2468" not in path.read_text()
    assert data[0]["quiet_hours"] == "22:00-07:00" and data[1] == {
        "name": "ミズキ",
        "phone": MIZUKI,
        "lang": "en",
    }
    parse_directory(path.read_bytes())


def test_set_pin_by_phone_covers_every_circle_the_phone_is_in(tmp_path):
    circle = [{"name": "タクミ", "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI}]
    path = write(
        tmp_path,
        {
            "circles": [
                {"number": "+815012340001", "members": circle},
                {"number": "+815012340002", "members": circle},
            ]
        },
    )

    result = runner.invoke(app, ["directory", "set-pin", str(path), MIZUKI], input="1357\n1357\n")

    assert result.exit_code == 0, result.output
    circles = json.loads(path.read_text())["circles"]
    assert all(verify_pin("1357", c["members"][1]["pin_hash"]) for c in circles)
    assert all("pin_hash" not in c["members"][0] for c in circles)


def test_a_bad_pin_or_an_unknown_person_changes_nothing(tmp_path):
    path = write(
        tmp_path, [{"name": "タクミ", "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI}]
    )
    before = path.read_bytes()

    short = runner.invoke(app, ["directory", "set-pin", str(path), "タクミ"], input="12\n12\n")
    nobody = runner.invoke(app, ["directory", "set-pin", str(path), "ハルト"], input="2468\n2468\n")

    assert short.exit_code == 1 and "4 to 8 digits" in short.output
    assert nobody.exit_code == 1
    assert path.read_bytes() == before


def test_remove_takes_the_pin_away(tmp_path):
    path = write(
        tmp_path, [{"name": "タクミ", "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI}]
    )
    runner.invoke(app, ["directory", "set-pin", str(path), "タクミ"], input="2468\n2468\n")

    result = runner.invoke(app, ["directory", "set-pin", str(path), "タクミ", "--remove"])

    assert result.exit_code == 0
    assert "pin_hash" not in path.read_text()


def test_a_proof_that_is_not_ascii_is_no_proof_and_raises_nothing():
    from hotline_core.pins import check_proof, hash_pin

    stored = hash_pin("1234")
    for forged in ("\ud800", "ｆｆ", "é" * 32):
        assert check_proof(forged, stored, contact_id="c-1", phone="+819011112222") is False
