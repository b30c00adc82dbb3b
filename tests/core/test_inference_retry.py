"""Retries: which failures are retried, how long the client waits, and when it gives up.

Every test talks to the real FaultServer; waits go through an injected clock, so the tests assert
the delays the retry loop asked for, never wall-clock time.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from guardflow.errors import (
    InferenceConnectError,
    InferenceHTTPError,
    InferenceRequestError,
    InferenceTimeoutError,
)
from guardflow.inference import AsyncInferenceClient, EndpointConfig, InferenceClient, RetryPolicy
from guardflow.inference._ratelimit import RateLimiter
from guardflow.inference.config import Timeouts
from guardflow.inference.retry import RetryState, backoff_delay, parse_retry_after
from guardflow.testing.fault_server import Fault, FaultServer

ROWS = [{"a": 1, "b": 2.5}, {"a": 3, "b": 0.5}]
NOW = datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc)


def client_for(server: FaultServer, fake_clock, **policy: float) -> InferenceClient:
    return InferenceClient(
        EndpointConfig(url=server.url, timeouts=Timeouts(read=5)),
        retry=RetryPolicy(initial_delay=1.0, max_delay=30.0, **policy),
        clock=fake_clock.clock,
    )


# --- Retry-After and backoff, as pure functions -------------------------------------------------


def test_retry_after_in_seconds_is_read_as_a_delay() -> None:
    assert parse_retry_after("7") == 7.0


def test_retry_after_as_an_http_date_is_the_time_until_that_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=NOW) == 10.0


def test_retry_after_in_the_past_means_no_wait() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now=NOW) == 0.0


def test_unreadable_retry_after_is_ignored() -> None:
    assert parse_retry_after("soon") is None


def test_backoff_is_full_jitter_over_an_exponential_ceiling() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=5.0)
    ceilings = [backoff_delay(n, policy, random=lambda: 1.0) for n in (1, 2, 3, 4)]
    assert ceilings == [1.0, 2.0, 4.0, 5.0]
    assert backoff_delay(3, policy, random=lambda: 0.0) == 0.0
    assert backoff_delay(3, policy, random=lambda: 0.25) == 1.0


def test_other_4xx_statuses_are_never_retried() -> None:
    state = RetryState(RetryPolicy())
    state.start_attempt()
    assert [state.delay_after_status(s) for s in (400, 401, 403, 404, 409, 422)] == [None] * 6


# --- Against the real server -------------------------------------------------------------------


def test_429_is_retried_after_the_seconds_retry_after_asks_for(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.throttle(retry_after="7"))
    with client_for(fault_server, fake_clock) as client:
        answer = client.predict_batch(ROWS)
    assert answer.predictions == [3.5, 3.5]
    assert answer.attempts == 2
    assert fake_clock.slept == [7.0]


def test_429_is_retried_at_the_http_date_retry_after_names(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.throttle(retry_after="Wed, 21 Oct 2015 07:28:10 GMT"))
    with client_for(fault_server, fake_clock) as client:
        client.predict_batch(ROWS)
    assert fake_clock.slept == [10.0]


def test_retry_after_is_capped_by_the_policy(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.throttle(retry_after="3600"))
    with client_for(fault_server, fake_clock, retry_after_cap=12.0) as client:
        client.predict_batch(ROWS)
    assert fake_clock.slept == [12.0]


def test_503_is_retried_with_exponential_backoff_and_jitter(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.unavailable(), Fault.unavailable(), Fault.http(502))
    with client_for(fault_server, fake_clock) as client:
        answer = client.predict_batch(ROWS)
    assert answer.attempts == 4
    assert fake_clock.slept == [0.5, 1.0, 2.0]  # jitter 0.5 of ceilings 1, 2, 4


@pytest.mark.parametrize("status", [408, 502, 504])
def test_other_back_pressure_statuses_are_retried(fault_server, fake_clock, status: int) -> None:
    fault_server.add_faults(Fault.http(status))
    with client_for(fault_server, fake_clock) as client:
        assert client.predict_batch(ROWS).attempts == 2


def test_500_is_retried_once(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.server_error())
    with client_for(fault_server, fake_clock) as client:
        assert client.predict_batch(ROWS).attempts == 2


def test_500_is_not_retried_a_second_time(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.server_error(), Fault.server_error())
    with client_for(fault_server, fake_clock) as client, pytest.raises(InferenceHTTPError) as err:
        client.predict_batch(ROWS)
    assert (err.value.status_code, err.value.attempts) == (500, 2)
    assert len(fault_server.inference_requests) == 2


def test_400_is_never_retried(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.bad_request())
    with client_for(fault_server, fake_clock) as client, pytest.raises(InferenceHTTPError) as err:
        client.predict_batch(ROWS)
    assert err.value.status_code == 400
    assert not err.value.retryable
    assert len(fault_server.inference_requests) == 1
    assert fake_clock.slept == []


def test_attempts_are_bounded(fault_server, fake_clock) -> None:
    fault_server.default_fault = Fault.unavailable()
    with (
        client_for(fault_server, fake_clock, max_attempts=3) as client,
        pytest.raises(InferenceHTTPError) as err,
    ):
        client.predict_batch(ROWS)
    assert err.value.attempts == 3
    assert len(fault_server.inference_requests) == 3
    assert err.value.retryable


def test_total_time_is_bounded(fault_server, fake_clock) -> None:
    fault_server.default_fault = Fault.throttle(retry_after="3")
    with (
        client_for(fault_server, fake_clock, max_total_seconds=5.0) as client,
        pytest.raises(InferenceHTTPError),
    ):
        client.predict_batch(ROWS)
    assert fake_clock.slept == [3.0]  # a second 3 s wait would end past the 5 s budget
    assert len(fault_server.inference_requests) == 2


def test_a_slow_answer_times_out_and_is_retried(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.slow(30))
    endpoint = EndpointConfig(url=fault_server.url, timeouts=Timeouts(read=0.2))
    with InferenceClient(endpoint, clock=fake_clock.clock) as client:
        answer = client.predict_batch(ROWS)
    assert answer.attempts == 2
    assert len(fake_clock.slept) == 1


def test_a_batch_that_always_times_out_fails_with_a_timeout_error(fault_server, fake_clock) -> None:
    fault_server.default_fault = Fault.slow(30)
    endpoint = EndpointConfig(url=fault_server.url, timeouts=Timeouts(read=0.1))
    policy = RetryPolicy(max_attempts=2)
    with (
        InferenceClient(endpoint, retry=policy, clock=fake_clock.clock) as client,
        pytest.raises(InferenceTimeoutError, match="did not answer in time"),
    ):
        client.predict_batch(ROWS)


def test_an_abrupt_disconnect_is_retried(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.disconnect())
    with client_for(fault_server, fake_clock) as client:
        assert client.predict_batch(ROWS).attempts == 2


def test_an_unreachable_server_is_retried_then_reported(fault_server, fake_clock) -> None:
    fault_server.stop()
    with (
        client_for(fault_server, fake_clock, max_attempts=2) as client,
        pytest.raises(InferenceConnectError, match="check that the model server is running"),
    ):
        client.predict_batch(ROWS)
    assert len(fake_clock.slept) == 1


def test_every_retry_of_a_batch_carries_the_same_idempotency_key(fault_server, fake_clock) -> None:
    fault_server.add_faults(
        Fault.throttle(retry_after="1"), Fault.unavailable(), Fault.disconnect()
    )
    with client_for(fault_server, fake_clock) as client:
        client.predict_batch(ROWS, idempotency_key="step-7")
    keys = [r.idempotency_key for r in fault_server.inference_requests]
    assert keys == ["step-7"] * 4


async def test_the_async_client_retries_the_same_way(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.throttle(retry_after="4"), Fault.server_error())
    endpoint = EndpointConfig(url=fault_server.url)
    async with AsyncInferenceClient(endpoint, clock=fake_clock.clock) as client:
        answer = await client.predict_batch(ROWS, idempotency_key="k")
    assert answer.attempts == 3
    assert fake_clock.slept == [4.0, 0.5]
    assert {r.idempotency_key for r in fault_server.inference_requests} == {"k"}


async def test_the_async_client_never_retries_400(fault_server, fake_clock) -> None:
    fault_server.add_faults(Fault.bad_request())
    endpoint = EndpointConfig(url=fault_server.url)
    async with AsyncInferenceClient(endpoint, clock=fake_clock.clock) as client:
        with pytest.raises(InferenceRequestError):
            await client.predict_batch(ROWS)
    assert len(fault_server.inference_requests) == 1


def test_the_rate_limiter_spaces_requests_evenly() -> None:
    now = [100.0]
    limiter = RateLimiter(4.0, monotonic=lambda: now[0])
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.25, 0.5]
    now[0] += 10
    assert limiter.reserve() == 0.0
