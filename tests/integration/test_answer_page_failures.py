"""The answer page's retry page (a 503, never a function error) is counted as
AnswerPageFailures, the metric its alarm watches: an unexpected failure and an answer stored
but not announced both count; a page that works counts nothing."""

from __future__ import annotations

import pytest

from tests.conftest import FORM, MIZUKI, TAKUMI, link_path
from tests.integration.test_metrics import Emitted


@pytest.fixture
def emitted(capsys, local):
    reader = Emitted(capsys)
    reader.read()  # whatever start-up printed
    return reader


@pytest.mark.parametrize(
    ("service", "body"),
    [("dynamodb", b"answer=yes"), ("events", b"answer=yes")],  # the store down; the bus down
)
def test_every_retry_page_counts_one_answer_page_failure(local, emitted, service, body):
    local.call(TAKUMI)
    path = link_path(local.sms(MIZUKI)[-1]["body"])
    emitted.read()
    local.arm_fault(service=service, times=20)

    page = local.http("POST", path, body=body, headers=FORM)

    assert page.status == 503
    assert emitted.read()["AnswerPageFailures"] == 1


def test_a_page_that_works_counts_no_failure(local, emitted):
    local.call(TAKUMI)
    path = link_path(local.sms(MIZUKI)[-1]["body"])
    emitted.read()

    assert local.http("POST", path, body=b"answer=yes", headers=FORM).status == 200
    assert emitted.read().get("AnswerPageFailures", 0) == 0
