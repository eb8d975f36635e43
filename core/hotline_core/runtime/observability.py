"""What the handlers log and count: one Powertools logger and one metrics object (EMF, namespace
`Hotline`) shared by every function, and validation errors said without the input."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

logger = Logger(service="hotline")
metrics = Metrics(namespace="Hotline", service="hotline")


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def validation_problems(exc: ValidationError) -> list[str]:
    """What was wrong, as field paths and messages: never an input value (it may be a phone
    number), and not the name of an unexpected field either (that is input too)."""
    problems = []
    for error in exc.errors():
        path = [str(part) for part in error["loc"]]
        if error["type"] == "extra_forbidden" and path:
            path[-1] = "<unexpected field>"
        problems.append(f"{'.'.join(path) or '<input>'}: {error['msg']}")
    return problems
