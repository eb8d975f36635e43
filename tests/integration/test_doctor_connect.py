"""`hotline doctor --stack`: the Amazon Connect checks (flows, functions, numbers, no instance)."""

from __future__ import annotations

import pytest

from tests.integration import doctor_stack
from tests.integration.doctor_stack import (
    BENEFITS_LINE,
    FLOW_ID,
    INSTANCE_ID,
    LINE1,
    LINE2,
    STACK,
    World,
    assert_no_phone,
    connect_answers,
    lines,
    make_world,
    sns_production,
)

# The shared fixtures: pytest finds a fixture by its name in the test module.
wide = doctor_stack.wide
aws = doctor_stack.aws
world = doctor_stack.world


# --- Amazon Connect --------------------------------------------------------------------------
def test_a_flow_missing_and_a_flow_not_published_fail(world: World) -> None:
    sns_production(world)
    connect_answers(world, flows={"hotline": ("SAVED", "ACTIVE")})

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    symbol, detail, fix = found[f"flow {STACK}-hotline"]
    assert (symbol, detail) == ("✗", "SAVED published: calls do not run what is saved")
    assert (
        fix
        == f"publish it: Amazon Connect admin website → Routing → Flows → {STACK}-hotline → Publish"
    )
    symbol, detail, fix = found[f"flow {STACK}-benefits"]
    assert symbol == "✗"
    assert detail.startswith("not in the Connect instance")
    assert "sam build && sam deploy" in fix
    # Without its flow, no number can run the benefits line: nothing more to say about it.
    assert "benefits number" not in found


def test_an_archived_flow_fails_with_the_call_that_restores_it(world: World) -> None:
    sns_production(world)
    connect_answers(
        world, flows={"hotline": ("PUBLISHED", "ARCHIVED"), "benefits": ("PUBLISHED", "ACTIVE")}
    )

    result = world.run()

    symbol, _, fix = lines(result.output)[f"flow {STACK}-hotline"]
    assert symbol == "✗"
    assert fix == (
        f"aws connect update-contact-flow-metadata --instance-id {INSTANCE_ID} "
        f"--contact-flow-id {FLOW_ID['hotline']} --contact-flow-state ACTIVE"
    )


def test_a_function_connect_does_not_know_fails(world: World) -> None:
    sns_production(world)
    connect_answers(world, lambdas=("BenefitRequestFunctionArn",))

    result = world.run()

    found = lines(result.output)
    symbol, detail, fix = found[f"Lambda for {STACK}-hotline"]
    assert symbol == "✗"
    name = world.outputs["CallRequestFunctionArn"].rsplit(":", 1)[-1]
    assert detail.startswith(f"{name} is not associated with the Connect instance")
    assert fix.endswith(
        f"aws connect associate-lambda-function --instance-id {INSTANCE_ID} "
        f"--function-arn {world.outputs['CallRequestFunctionArn']}"
    )
    assert found["Lambda in Connect"][:2] == (
        "✓",
        f"associated: {world.outputs['BenefitRequestFunctionArn'].rsplit(':', 1)[-1]}",
    )


def test_a_number_not_pointed_at_its_flow_fails_with_where_to_point_it(world: World) -> None:
    sns_production(world)
    connect_answers(world, runs={LINE2: "benefits", BENEFITS_LINE: "benefits"})

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    point = (
        f"set its flow to {STACK}-hotline in the Amazon Connect console (Channels → Phone "
        "numbers → the number → Contact flow / IVR)"
    )
    assert found["circle 1 number"] == (
        "✗",
        "+81********01 is claimed but runs no flow: its calls are not answered",
        point,
    )
    assert found["circle 2 number"] == (
        "✗",
        f"+81********09 runs {STACK}-benefits, not {STACK}-hotline",
        point,
    )
    assert found["benefits number"][0] == "✓"


def test_a_circle_number_connect_does_not_have_fails_and_says_how_japan_gives_numbers(
    world: World,
) -> None:
    sns_production(world)
    connect_answers(world, claimed=(LINE1, BENEFITS_LINE))

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    symbol, detail, fix = found["circle 2 number"]
    assert (symbol, detail) == (
        "✗",
        "+81********09 is not a number of the Connect instance: calls to it reach nothing",
    )
    assert fix.startswith("claim +81********09 (Channels → Phone numbers → Claim a number)")
    assert "hotline directory push phonenumber.json --stack hotline-test" in fix
    assert fix.endswith(
        "in Japan, Connect gives numbers only to a business, through an AWS Support case with "
        "three documents: see README 'Running it in Japan'"
    )
    assert found["circle 1 number"][0] == "✓"
    assert_no_phone(result.output)


def test_a_number_still_being_claimed_is_a_warning(world: World) -> None:
    sns_production(world)
    connect_answers(world, status="IN_PROGRESS")

    result = world.run()

    assert result.exit_code == 0, result.output
    assert lines(result.output)["circle 1 number"][:2] == (
        "!",
        "+81********01 is still being claimed",
    )


def test_without_a_connect_instance_one_warning_says_so(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch, ConnectInstanceArn="")
    sns_production(world)

    result = world.run()

    assert result.exit_code == 0, result.output
    found = lines(result.output)
    assert found["Amazon Connect"][0] == "!"
    assert "set ConnectInstanceArn" in found["Amazon Connect"][2]
    assert not [name for name in found if "number" in name or name.startswith("flow ")]
