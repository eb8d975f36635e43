"""The template as the local runtime reads it. Parameters: every value, given or default, meets
the template's own constraints (Type Number, AllowedValues, AllowedPattern, MinLength,
MaxLength, MinValue, MaxValue), or it is a TemplateError naming the parameter and the
constraint. AWS::Include and nested applications: read as CloudFormation reads them, and
what CloudFormation would refuse (or the runtime would not run) is a TemplateError. No AWS:
only the template is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotline_tools.local.template import (
    ParameterError,
    Template,
    TemplateError,
    load_template,
    nested_template,
    parse_template,
)
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


# --- AWS::Include and nested applications: read as CloudFormation reads them ---------------
INCLUDING = """
Resources:
  Flow:
    Type: AWS::Connect::ContactFlow
    Properties:
      Name: flow
      Content: !Transform {Name: AWS::Include, Parameters: {Location: parts/content.yaml}}
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: written here
      Fn::Transform:
        Name: AWS::Include
        Parameters:
          Location: parts/shape.yaml
"""


def project(tmp_path: Path, text: str, **files: str) -> Path:
    for name, body in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_include_is_replaced_by_its_snippet_and_merged_with_what_is_beside_it(tmp_path):
    path = project(
        tmp_path,
        INCLUDING,
        **{
            "parts/content.yaml": 'Fn::Sub: \'{"arn": "${Fn.Arn}"}\'\n',
            "parts/shape.yaml": "Namespace: AWS/SQS\nThreshold: 1\n",
        },
    )

    resources = load_template(path)["Resources"]

    assert resources["Flow"]["Properties"]["Content"] == {"Fn::Sub": '{"arn": "${Fn.Arn}"}'}
    assert resources["Alarm"]["Properties"] == {
        "AlarmDescription": "written here",
        "Namespace": "AWS/SQS",
        "Threshold": 1,
    }
    assert "Fn::Transform" not in json.dumps(resources)
    # As written: parse_template leaves the transform where it is.
    raw = parse_template(path)["Resources"]["Flow"]["Properties"]["Content"]
    assert raw["Fn::Transform"]["Parameters"]["Location"] == "parts/content.yaml"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"parts/content.yaml": "{}", "parts/shape.yaml": "AlarmDescription: twice\n"},
            r"AWS::Include of parts/shape.yaml: AlarmDescription given twice",
        ),
        (
            {"parts/content.yaml": "- a list\n", "parts/shape.yaml": "{}"},
            r"AWS::Include of parts/content.yaml: a snippet is a mapping",
        ),
        (
            {"parts/shape.yaml": "{}"},
            r"AWS::Include of parts/content.yaml: No such file or directory",
        ),
        (
            {
                "parts/content.yaml": "Fn::Transform: {Name: AWS::Include, "
                "Parameters: {Location: other.yaml}}\n",
                "parts/shape.yaml": "{}",
            },
            r"AWS::Include of other.yaml: a snippet may not include another",
        ),
    ],
)
def test_an_include_cloudformation_would_refuse_is_a_template_error(tmp_path, files, message):
    path = project(tmp_path, INCLUDING, **files)

    with pytest.raises(TemplateError, match=message):
        load_template(path)


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (
            "{Name: AWS::Include, Parameters: {Location: 's3://bucket/part.yaml'}}",
            r"Location 's3://bucket/part.yaml': the local runtime reads a file",
        ),
        ("{Name: SomeoneElsesMacro}", r"Fn::Transform SomeoneElsesMacro: only AWS::Include"),
    ],
)
def test_only_an_include_of_a_file_is_read(tmp_path, transform, message):
    text = f"Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: !Transform {transform}\n"

    with pytest.raises(TemplateError, match=message):
        load_template(project(tmp_path, text))


NESTING = """
Resources:
  Alarms:
    Type: AWS::Serverless::Application
    Properties:
      Location: nested.yaml
      Parameters: {Queue: q}
"""
NESTED_ALARM = """
Parameters: {Queue: {Type: String}}
Resources:
  QueueAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: ApproximateNumberOfMessagesVisible}
"""


def test_a_nested_application_of_what_has_no_local_meaning_is_read(tmp_path):
    path = project(tmp_path, NESTING, **{"nested.yaml": NESTED_ALARM})

    template = Template(path)

    nested = nested_template(tmp_path, template.resources["Alarms"])
    assert nested is not None
    assert list(nested["Resources"]) == ["QueueAlarm"]
    assert template.functions() == []


def test_a_nested_application_with_wiring_the_runtime_would_not_run_is_refused(tmp_path):
    nested = NESTED_ALARM + (
        "  Sneaky:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: x/, Handler: x.handler}\n"
    )
    path = project(tmp_path, NESTING, **{"nested.yaml": nested})

    with pytest.raises(TemplateError, match=r"Alarms \(nested.yaml\): Sneaky \(AWS::Serverless"):
        Template(path)


def test_a_nested_application_from_the_repository_is_refused(tmp_path):
    text = NESTING.replace(
        "Location: nested.yaml", "Location: {ApplicationId: arn:x, SemanticVersion: 1.0.0}"
    )

    with pytest.raises(TemplateError, match=r"Alarms: the local runtime reads a nested"):
        Template(project(tmp_path, text))


def test_the_shipped_template_is_read_with_its_flows_schemas_and_alarms():
    template = Template(ROOT / "template.yaml")

    content = template.resources["HotlineContactFlow"]["Properties"]["Content"]["Fn::Sub"]
    flow = json.loads((ROOT / "contact_flow" / "hotline.json").read_text(encoding="utf-8"))
    assert json.loads(content) == flow
    assert "Fn::Transform" not in json.dumps(template.doc)
    alarms = nested_template(ROOT, template.resources["Alarms"])
    assert alarms is not None and "FunctionErrorsAlarm" in alarms["Resources"]


def test_split_and_select_resolve_as_cloudformation_resolves_them(tmp_path):
    text = (
        "Parameters:\n  Arn: {Type: String, Default: 'arn:aws:connect:r:1:instance/i'}\n"
        "Conditions:\n"
        "  InR: !Equals [!Select [3, !Split [':', !Sub '${Arn}:::r']], r]\n"
        "Resources: {}\n"
    )
    template = Template(project(tmp_path, text))

    assert template.conditions["InR"] is True
    assert template.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b"]}]}, {}) == "b"
    with pytest.raises(TemplateError, match="cannot select nonexistent value at index 6"):
        template.resolve({"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "Arn"}]}]}, {})
