"""The retry policy on its own: classification, waits, limits, Retry-After, reports."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import requests
import responses
import urllib3

from registryv2 import RegistryClient, RegistryError, RetryPolicy
from registryv2.exceptions import CancelledError, DigestMismatchError, NotFoundError
from registryv2.retry import RetryNotice, is_transient, parse_retry_after, retry_scope

from .proxies import FAST

BUSY = RegistryError("busy [HTTP 503]", status=503, transient=True)


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused")),
        requests.exceptions.ReadTimeout(),
        requests.exceptions.ConnectTimeout(),
        requests.exceptions.ChunkedEncodingError(),
        urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError()),
        urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
        ConnectionResetError(),
        TimeoutError(),
        BUSY,
    ],
)
def test_network_failures_and_busy_answers_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.SSLError("certificate verify failed"),
        requests.exceptions.InvalidSchema(),
        ValueError("connection reset"),  # the words do not matter, the type does
        DigestMismatchError("x"),
        NotFoundError("gone", status=404),
        RegistryError("bad request [HTTP 400]", status=400),
    ],
)
def test_other_failures_are_permanent(error: BaseException) -> None:
    assert not is_transient(error)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
@responses.activate
def test_the_transport_marks_retryable_statuses(status: int) -> None:
    responses.get("http://r.test/v2/app/tags/list", status=status)
    c = RegistryClient("http://r.test", insecure=True, retry=RetryPolicy(attempts=1))
    with c, pytest.raises(RegistryError) as err:
        c.list_tags("app")
    assert err.value.transient and err.value.status == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 416])
@responses.activate
def test_other_4xx_are_never_retried(status: int) -> None:
    call = responses.get("http://r.test/v2/app/tags/list", status=status)
    c = RegistryClient("http://r.test", insecure=True, retry=FAST)
    with c, pytest.raises(RegistryError) as err:
        c.list_tags("app")
    assert call.call_count == 1
    assert not err.value.transient


@responses.activate
def test_a_503_then_success_is_retried_and_a_post_is_not() -> None:
    tags = responses.get("http://r.test/v2/app/tags/list", status=503)
    responses.get("http://r.test/v2/app/tags/list", json={"tags": ["v1"]})
    post = responses.post("http://r.test/v2/app/blobs/uploads/", status=503)
    with RegistryClient("http://r.test", insecure=True, retry=FAST) as c:
        assert c.list_tags("app") == ["v1"]
        with pytest.raises(RegistryError):
            c.transport.request("POST", "/v2/app/blobs/uploads/", what="start", expect=(202,))
    assert tags.call_count == 1 and post.call_count == 1


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 120 ") == 120.0
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now=now) == 0.0  # past: at once
    for junk in ["", None, "-5", "1.5", "soon", "Thu, 99 Foo 2026"]:
        assert parse_retry_after(junk) is None


@responses.activate
def test_retry_after_is_honoured() -> None:
    responses.get("http://r.test/v2/_catalog", status=429, headers={"Retry-After": "1"})
    responses.get("http://r.test/v2/_catalog", json={"repositories": ["a"]})
    notices: list[RetryNotice] = []
    started = time.monotonic()
    c = RegistryClient("http://r.test", insecure=True, retry=FAST)
    with retry_scope(None, notices.append), c:
        assert c.list_repositories() == ["a"]
    assert time.monotonic() - started >= 1.0
    assert [(n.attempt, n.delay) for n in notices] == [(1, 1.0)]
    assert "HTTP 429" in notices[0].reason


def test_a_retry_after_beyond_the_time_budget_gives_up_at_once() -> None:
    policy = RetryPolicy(max_elapsed=5)
    asked = RegistryError("busy [HTTP 503]", status=503, transient=True, retry_after=3600)
    started = time.monotonic()
    with pytest.raises(RegistryError) as err:
        policy.begin("listing").retry(asked)
    assert str(err.value) == (
        "busy [HTTP 503] (the registry asked to wait 3600s; more than the 5s allowed)"
    )
    assert time.monotonic() - started < 1


def test_a_rate_limit_longer_than_the_policy_waits_for_gives_up_at_once() -> None:
    policy = RetryPolicy(max_elapsed=5, max_rate_limit_wait=60)
    asked = RegistryError("slow down [HTTP 429]", status=429, transient=True, retry_after=3600)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="asked to wait 3600s"):
        policy.begin("listing").retry(asked)
    assert time.monotonic() - started < 1


@responses.activate
def test_a_rate_limit_is_waited_out_and_said_not_counted_as_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Docker Hub's answers: the pull limit used up, then 429 with Retry-After, more times than
    # the policy's attempts: every one is waited for, and the listing goes through.
    limited = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"}
    registry = {"Docker-Distribution-Api-Version": "registry/2.0"}
    responses.get("http://r.test/v2/", headers={**limited, **registry})
    for _ in range(4):
        responses.get(
            "http://r.test/v2/app/tags/list", status=429, headers={**limited, "Retry-After": "0"}
        )
    responses.get("http://r.test/v2/app/tags/list", json={"tags": ["v1"]})
    client = RegistryClient("http://r.test", insecure=True, retry=RetryPolicy(attempts=2))
    with caplog.at_level(logging.WARNING, "registryv2"), client as c:
        assert c.ping()
        assert c.list_tags("app") == ["v1"]
    said = [r.getMessage() for r in caplog.records]
    assert sum("pull rate limit is used up for this 21600s window" in m for m in said) == 1
    assert sum("rate limit is reached; waiting 0s as it asks" in m for m in said) == 4


def test_waits_are_full_jitter_under_a_doubling_cap() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=8.0)
    for failures, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [policy.delay(failures) for _ in range(300)]
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > cap * 0.8 and min(waits) < cap * 0.2  # spread over the whole range


def test_attempts_give_up_after_the_policy_and_say_so() -> None:
    attempts = RetryPolicy(attempts=3, initial_delay=0).begin("pushing")
    attempts.retry(BUSY)
    attempts.retry(BUSY)
    with pytest.raises(RegistryError) as err:
        attempts.retry(BUSY)
    assert str(err.value) == "busy [HTTP 503] (gave up after 3 attempts)"
    assert err.value.status == 503 and err.value.transient


def test_progress_resets_the_count() -> None:
    attempts = RetryPolicy(attempts=2, initial_delay=0).begin("reading")
    for _ in range(5):
        attempts.retry(BUSY)  # one failure, then progress: never two in a row
        attempts.reset()


def test_a_permanent_error_is_raised_as_it_is() -> None:
    error = NotFoundError("no such blob", status=404)
    with pytest.raises(NotFoundError) as err:
        RetryPolicy().begin("x").retry(error)
    assert err.value is error


def test_a_wait_ends_when_the_transfer_is_cancelled() -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with retry_scope(cancel, None), pytest.raises(CancelledError):
        RetryPolicy(initial_delay=60, max_delay=60).begin("x").retry(
            RegistryError("busy", transient=True, retry_after=60)
        )
    assert time.monotonic() - started < 2


def test_each_retry_is_logged_at_info_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="registryv2")
    RetryPolicy(initial_delay=0).begin("listing tags of team/app").retry(BUSY)
    (record,) = caplog.records
    assert record.levelno == logging.INFO and record.name == "registryv2"
    assert record.getMessage().startswith("busy [HTTP 503]; retrying in ")
    assert record.getMessage().endswith("(attempt 1 of 5 failed)")


def test_policies_are_checked() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(initial_delay=-1)
