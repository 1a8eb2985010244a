"""A new job's first step offered to a free worker before it goes through JetStream.

Through JetStream, a step attempt is stored (a fsynced write), acked to the publisher and
then delivered to a worker's pull request: 3-5 ms on this kind of machine before the step
starts, traced, a fifth of an idle job's whole path. Offered, it is one core NATS request
(``bus.OFFER_SUBJECT``): a worker of the queue group with a slot kept free for offers
(``WORKER_OFFER_SLOTS``) answers ``OFFER_TAKEN`` and starts it at once.

Nothing is given up for it. If the worker refuses, nobody answers in time, or no worker
listens, the attempt is published to JetStream as it would have been. Once a worker has
taken it, the attempt's outbox row, committed with the job, is not deleted but left to
the outbox's sweeper, due once a lease would run out (``lease_s``, the orchestrators'
``STEP_LEASE_S``). By then the worker has reported on the attempt (its result, or its
first heartbeat, within a second), and the sweeper only deletes the row. If the worker
died first, the sweeper publishes the attempt through JetStream for another worker, as
JetStream redelivers a dispatch whose worker went silent: the same attempt, no retry
spent. If that deferral is lost (the offerer dies before writing it), the row is swept
after its usual two seconds, and an attempt still running then may run twice, its
second result fenced, as after a lost JetStream ack.

Offers go where a free slot is likely: after a refusal, the next ones go straight to
JetStream for a moment (``quiet_s``), so a saturated pool costs no round trip per job.
The exception is the express lane (a newcomer's first step while the workers are
saturated): rare, and offered to the workers' express slots every time.
"""

from __future__ import annotations

import time

from nats.aio.client import Client as NatsClient

from jobkit import bus, metrics
from jobkit.model import OutboxMessage
from jobkit.tracing import message_headers

#: How long a step attempt's worker may stay silent (after taking it, after it was handed
#: over, after its last report) before it is presumed dead, unless ``STEP_LEASE_S`` says
#: otherwise.
DEFAULT_STEP_LEASE_S = 20.0


class StepOffers:
    def __init__(
        self,
        nc: NatsClient,
        *,
        lease_s: float,
        timeout_s: float = 0.25,
        quiet_s: float = 0.1,
    ) -> None:
        self._nc = nc
        #: How long a taken attempt's row waits before the sweeper looks at it.
        self.lease_s = lease_s
        self._timeout_s = timeout_s
        self._quiet_s = quiet_s
        self._quiet_until = 0.0

    def wanted(self, message: OutboxMessage) -> bool:
        """Whether to offer ``message``: a step attempt due now, in the express lane (a
        newcomer's first step while the workers are saturated: offered to a free express
        slot), or in the main lane while no worker has lately refused one."""
        if message.not_before is not None:
            return False
        if message.subject.startswith(bus.EXPRESS_SUBJECT_PREFIX):
            return True
        return (
            message.subject.startswith(bus.STEPS_SUBJECT_PREFIX)
            and time.monotonic() >= self._quiet_until
        )

    async def offer(self, message: OutboxMessage) -> bool:
        """Offer the attempt; whether a worker took it (else it is the caller's to publish)."""
        headers = message_headers(message.msg_id, message.trace_context)
        headers[bus.OFFER_DEADLINE_HEADER] = bus.until_header(self._timeout_s)
        express = message.subject.startswith(bus.EXPRESS_SUBJECT_PREFIX)
        if express:
            headers[bus.LANE_HEADER] = bus.EXPRESS_LANE
        try:
            answer = await self._nc.request(
                bus.OFFER_SUBJECT, message.payload, timeout=self._timeout_s, headers=headers
            )
        except Exception:
            taken = False  # nobody listening, or nobody answered in time
        else:
            taken = answer.data == bus.OFFER_TAKEN
        if not taken and not express:
            self._quiet_until = time.monotonic() + self._quiet_s
        lane = bus.EXPRESS_LANE if express else "main"
        metrics.STEP_OFFERS.labels(lane, "taken" if taken else "refused").inc()
        return taken


def offered_express(headers: dict[str, str] | None) -> bool:
    """Whether an offer is of the express lane's (for its slots)."""
    return (headers or {}).get(bus.LANE_HEADER) == bus.EXPRESS_LANE


def offer_expired(headers: dict[str, str] | None) -> bool:
    """Whether an offer arrived after its offerer stopped waiting (it went to JetStream)."""
    left = bus.seconds_left(headers, bus.OFFER_DEADLINE_HEADER)
    return left is None or left < 0
