"""The benchmarks' count figures (not timings) meet their targets: SMS segments, Lambda
invocations per call and AWS API calls per conversation. Runs the same code `make bench`
runs, without the slow parts."""

from __future__ import annotations

from benchmarks import api_calls, segments


def test_segment_and_flow_invocation_figures_meet_their_targets():
    # tests/conftest.py already points every client at fake credentials; no global changes.
    seg = segments.measure()
    assert seg["headline"]["ja_invite_default"] <= 2
    assert seg["headline"]["ja_invite_short"] == 1
    assert seg["headline"]["caller_max"] == 1
    assert all(seg["targets"].values())
    assert "## 1. SMS segments" in segments.render(seg)

    counter = api_calls.ApiCallCounter()
    engine = api_calls.start_engine(counter)
    try:
        flow = api_calls.flow_invocations(engine)
    finally:
        engine.stop()
    assert flow["registered"] == 1
    assert flow["unregistered"] <= 1
    assert flow["target_met"]


def test_an_accepted_conversation_stays_within_its_api_call_budget():
    # Counted at the botocore level while the local runtime plays each conversation warm.
    calls = api_calls.measure()
    assert calls["counts"]["accepted"] <= 12
    assert calls["counts"]["timed out"] <= calls["counts"]["accepted"]
    assert calls["target_met"]
    # The directory is read from S3 once per cold start, never per call.
    assert [c[:2] for c in calls["cold_only"]] == [("CallRequestFunction", "S3 GetObject")]
    warm = [step["call"] for conv in calls["warm"].values() for step in conv["calls"]]
    assert warm and not any(call.startswith("S3") for call in warm), warm
