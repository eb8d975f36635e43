"""Template parameters as the local runtime reads them: every value, given or default, meets
the template's own constraints (Type Number, AllowedValues, AllowedPattern, MinLength,
MaxLength, MinValue, MaxValue), or it is a TemplateError naming the parameter and the
constraint. No AWS: only the template is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_tools.local.template import ParameterError, Template, TemplateError
from tests.conftest import ROOT

PARAMETERS = """
Parameters:
  Window:
    Type: Number
    Default: 120
    MinValue: 30
    MaxValue: 3600
  Retention:
    Type: Number
    Default: 30
    AllowedValues: [1, 7, 30]
  Provider:
    Type: String
    Default: sns
    AllowedValues: [sns, end-user-messaging]
  Url:
    Type: String
    Default: ""
    AllowedPattern: "^$|^https?://[^/]+$"
    ConstraintDescription: a scheme and a host, nothing after
  Code:
    Type: String
    Default: abcd
    MinLength: 4
    MaxLength: 6
  Secret:
    Type: String
    NoEcho: true
    Default: long-enough
    MinLength: 8
Resources: {}
"""


def template(tmp_path: Path, text: str = PARAMETERS, **given: str) -> Template:
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return Template(path, parameters=given)


def test_defaults_and_values_within_the_constraints_are_taken(tmp_path):
    values = template(
        tmp_path, Window="30", Retention="7", Provider="end-user-messaging", Url="https://h.jp"
    ).parameters

    assert values["Window"] == "30"
    assert values["Retention"] == "7"
    assert values["Provider"] == "end-user-messaging"
    assert values["Url"] == "https://h.jp"
    assert values["Code"] == "abcd"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"Window": "29"}, "template parameter Window: '29' is below its MinValue 30"),
        ({"Window": "3600.5"}, "template parameter Window: '3600.5' is above its MaxValue 3600"),
        ({"Window": "soon"}, "template parameter Window: 'soon' is not a number (Type: Number)"),
        ({"Window": "nan"}, "template parameter Window: 'nan' is not a number (Type: Number)"),
        (
            {"Retention": "2"},
            "template parameter Retention: '2' is not one of its AllowedValues [1, 7, 30]",
        ),
        (
            {"Provider": "SNS"},
            "template parameter Provider: 'SNS' is not one of its AllowedValues "
            "[sns, end-user-messaging]",
        ),
        (
            {"Url": "https://h.jp/x"},
            "template parameter Url: 'https://h.jp/x' does not match its AllowedPattern "
            "^$|^https?://[^/]+$ (a scheme and a host, nothing after)",
        ),
        ({"Code": "abc"}, "template parameter Code: 'abc' is shorter than its MinLength 4"),
        ({"Code": "abcdefg"}, "template parameter Code: 'abcdefg' is longer than its MaxLength 6"),
    ],
)
def test_a_value_outside_the_constraints_names_the_parameter_and_the_constraint(
    tmp_path, given, message
):
    with pytest.raises(TemplateError) as raised:
        template(tmp_path, **given)

    assert str(raised.value).startswith(message)


def test_a_no_echo_value_is_not_shown(tmp_path):
    with pytest.raises(TemplateError) as raised:
        template(tmp_path, Secret="pw-1234")

    assert str(raised.value) == (
        "template parameter Secret: (hidden: NoEcho) is shorter than its MinLength 8"
    )


def test_a_default_outside_its_own_constraints_is_refused_too(tmp_path):
    with pytest.raises(TemplateError, match=r"Window: '10' is below its MinValue 30") as raised:
        template(tmp_path, PARAMETERS.replace("Default: 120", "Default: 10"))

    # The template is wrong, not a value given to the runtime.
    assert not isinstance(raised.value, ParameterError)


def test_a_given_value_outside_the_constraints_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match=r"Window: '10' is below its MinValue 30"):
        template(tmp_path, Window="10")


def test_the_pattern_must_match_the_whole_value(tmp_path):
    with pytest.raises(TemplateError, match="AllowedPattern"):
        template(tmp_path, PARAMETERS.replace('"^$|^https?://[^/]+$"', "https?://"), Url="xhttp://")


def test_every_default_of_the_shipped_template_meets_its_constraints():
    assert Template(ROOT / "template.yaml").parameters["AnswerWindowSeconds"] == "120"
