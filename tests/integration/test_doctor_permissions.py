"""`hotline doctor --stack`: every AWS call it makes names its IAM action, listed in the README."""

from __future__ import annotations

import json

import pytest

from hotline_tools import doctor
from tests.conftest import ROOT
from tests.integration import doctor_stack
from tests.integration.doctor_stack import (
    MIZUKI,
    REN,
    TAKUMI,
    connect_answers,
    eum_account,
    eum_pool,
    make_world,
    sns_sandbox,
)

# The shared fixtures: pytest finds a fixture by its name in the test module.
wide = doctor_stack.wide
aws = doctor_stack.aws
world = doctor_stack.world


# --- the permissions it needs ---------------------------------------------------------------
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_section() -> str:
    start = README.index("### Diagnosing a deployment: hotline doctor")
    end = README.find("\n#", start + 1)
    return README[start : end if end > 0 else None]


@pytest.mark.parametrize("provider", ["sns", "end-user-messaging"])
def test_every_call_the_doctor_makes_names_its_iam_action_and_the_readme_lists_it(
    aws: None, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    if provider == "sns":
        world = make_world(monkeypatch)
        sns_sandbox(world, {TAKUMI: "Verified", MIZUKI: "Verified", REN: "Verified"})
    else:
        world = make_world(
            monkeypatch, SmsProvider="end-user-messaging", SmsOriginationIdentity="pool-1"
        )
        eum_account(world, tier="SANDBOX")
        eum_pool(world)
    connect_answers(world)

    result = world.run()

    assert "Traceback" not in result.output
    assert world.calls - set(doctor.ACTIONS) == set()
    section = readme_section()
    for operation in world.calls:
        assert f"`{doctor.ACTIONS[operation]}`" in section, operation


def test_each_iam_action_named_is_one_aws_has() -> None:
    found = list(
        (ROOT / ".venv-sam" / "lib").glob(
            "python3*/site-packages/cfnlint/data/AdditionalSpecs/Policies.json"
        )
    )
    if not found:
        pytest.skip("the Service Authorization Reference comes with cfn-lint in .venv-sam")
    reference = json.loads(found[0].read_text(encoding="utf-8"))
    for action in doctor.ACTIONS.values():
        service, name = action.split(":")
        assert name.lower() in reference[service]["Actions"], action
