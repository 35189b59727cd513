"""What replicas share through the store (claims, the response_url budget, owed replies, leases), on SQLite and
PostgreSQL alike, with several stores (instances) on one log, as several replicas are."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from slack_sdk import WebClient

from bot.audit import AuditStore
from bot.engine import Engine
from bot.periodic import Leader
from bot.respond import DeliveryFailed, ResponseUrlClient
from bot.serve import Health, SlackProbe
from tests.support import audit_db

audit_target = audit_db.audit_target  # both back ends (fixture)
stores = audit_db.stores  # fixture

URL = "https://hooks.slack.test/commands/T0/1/secret-part"


def test_a_key_is_claimed_by_exactly_one_of_many_concurrent_claimants(
    audit_target: str, stores: Callable[..., AuditStore]
) -> None:
    replicas = [stores(audit_target) for _ in range(3)]
    keys = [f"command:{n}.trigger" for n in range(20)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda job: (job[1], replicas[job[0] % 3].claim(job[1])), enumerate(keys * 4)))
    won = [key for key, claimed in results if claimed]
    assert sorted(won) == sorted(keys)  # each key won once, whoever asked


def test_a_claim_and_its_owed_reply_are_one_write(audit_target: str, stores: Callable[..., AuditStore]) -> None:
    first, second = stores(audit_target), stores(audit_target)
    owe = {"request_id": "r1", "response_url": URL, "channel": "C1", "user": "U1", "text": "stop web", "issued_at": 1.0}
    assert first.claim("command:t1", owe={**owe, "issued_at": time.time()}) is True
    assert second.claim("command:t1", owe={**owe, "request_id": "r2", "issued_at": time.time()}) is False
    assert second.orphaned_replies() == []  # its owner is alive
    first.close()  # a clean stop leaves its owed reply to the others
    [owed] = second.orphaned_replies()
    assert (owed["request_id"], owed["text"], owed["response_url"], owed["posts"]) == ("r1", "stop web", URL, 0)
    assert second.orphaned_replies() == []  # taken once
    second.reply_settled("r1")


def test_the_response_url_budget_is_counted_across_replicas(
    audit_target: str, stores: Callable[..., AuditStore]
) -> None:
    one = ResponseUrlClient(budget=stores(audit_target))
    two = ResponseUrlClient(budget=stores(audit_target))
    for client in (one, two, one, two, one):
        client._reserve(URL)  # each replica alone has posted at most 3 times
    with pytest.raises(DeliveryFailed, match="spent"):
        two._reserve(URL)
    one.close()
    two.close()


def test_an_old_response_url_is_refused_as_expired(audit_target: str, stores: Callable[..., AuditStore]) -> None:
    store = stores(audit_target)
    store.note_response_url(URL, issued_at=time.time() - 31 * 60)
    assert store.reserve_post(URL, max_posts=5, max_age=30 * 60).startswith("expired")


def test_a_lease_has_one_holder_and_moves_when_it_is_released_or_expires(
    audit_target: str, stores: Callable[..., AuditStore]
) -> None:
    a, b = stores(audit_target), stores(audit_target)
    assert a.acquire_lease("job", ttl=30) is True
    assert b.acquire_lease("job", ttl=30) is False
    assert a.acquire_lease("job", ttl=30) is True  # renewal
    a.release_lease("job")
    assert b.acquire_lease("job", ttl=0.2) is True
    time.sleep(0.4)
    assert a.acquire_lease("job", ttl=30) is True  # b's lease expired
    assert b.lease_holder("job") == a.instance


def test_the_leader_runs_its_work_only_while_it_holds_the_lease(
    audit_target: str, stores: Callable[..., AuditStore]
) -> None:
    ran: dict[str, int] = {"a": 0, "b": 0}
    lock = threading.Lock()

    def count(who: str) -> Callable[[], None]:
        def task() -> None:
            with lock:
                ran[who] += 1

        return task

    leaders = []
    for who in ("a", "b"):
        leader = Leader(stores(audit_target), name="work", ttl=1.5, renew=0.3)
        leader.every(count(who), interval=0.1, name=f"job-{who}", failure="job failed")
        leaders.append(leader)
    leaders[0].start()
    time.sleep(0.5)
    leaders[1].start()
    time.sleep(1.0)
    assert ran["a"] > 0 and ran["b"] == 0
    leaders[0].stop()  # gives the lease up: b takes it at its next renewal
    before = ran["b"]
    time.sleep(1.0)
    assert ran["b"] > before
    leaders[1].stop()


def test_healthz_fails_while_the_store_does_not_answer(
    audit_target: str, stores: Callable[..., AuditStore], engine: Engine
) -> None:
    """A replica that cannot reach the store cannot make claims for the others: the balancer must skip it."""
    store = stores(audit_target)
    probe = SlackProbe(WebClient(token="xoxb-unused"))
    probe.ok = True
    health = Health(engine=engine, slack=probe, store=store.ping)
    assert health.report() == (200, {"engine": True, "slack_client": True, "store": True})
    store.close()  # as good as unreachable
    assert health.report() == (503, {"engine": True, "slack_client": True, "store": False})
    health.close()
