"""The tables replicas share: claims, response_url budgets, owed replies, leases."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from bot.audit import base
from bot.audit.base import (
    CLAIM_TTL_SECONDS,
    REPLY_KEEP_SECONDS,
    Run,
    _run_with,
    digest,
)
from bot.audit.liveness import Instances

log = logging.getLogger(__name__)


class SharedTables(Instances):
    """What several ``chatdock serve`` processes on one store agree on."""

    # -- shared between replicas -----------------------------------------------------------------------
    # Several ``chatdock serve`` processes on one store agree here on what must happen once: who handles a
    # request delivered twice (:meth:`claim`), how many posts a response_url has left (:meth:`reserve_post`), which
    # replies are still owed (:meth:`owe_reply` / :meth:`reply_settled` / :meth:`orphaned_replies`) and who runs
    # work that must run once (:meth:`acquire_lease`). Each is one statement whose outcome the database decides,
    # so two replicas asking at the same moment get different answers. Wall-clock times: replicas on several
    # hosts need synchronised clocks (NTP; a skew of a few seconds is harmless against these periods).

    def claim(self, key: str, *, owe: dict[str, Any] | None = None) -> bool:
        """True for the first process (of any replica) to claim ``key`` within :data:`CLAIM_TTL_SECONDS`.

        ``owe`` (the arguments of :meth:`owe_reply`) is recorded in the same transaction: a request is never
        claimed without its reply being owed, so a replica killed right after claiming is still answered for."""

        def take(run: Run) -> bool:
            rows = run(
                "INSERT INTO chatdock_claims (key, instance, claimed_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING RETURNING key",
                (digest(key), self.instance, base.now()),
            )
            if rows and owe:
                self._owe(run, **owe)
            return bool(rows)

        claimed: bool = self._call_lane(take, transaction=owe is not None)
        return claimed

    def note_response_url(self, response_url: str, *, issued_at: float | None = None) -> None:
        """Start counting posts to ``response_url`` (Slack issued it at ``issued_at``, epoch seconds)."""
        self._call(
            lambda run: run(
                "INSERT INTO chatdock_replies (url_hash, response_url, issued_at) VALUES (?, ?, ?) "
                "ON CONFLICT (url_hash) DO NOTHING",
                (digest(response_url), response_url, base.now() if issued_at is None else issued_at),
            )
        )

    def reserve_post(self, response_url: str, *, max_posts: int, max_age: float) -> str:
        """Count one post to ``response_url`` across replicas: ``""`` when allowed, else why not."""
        key = digest(response_url)
        now = base.now()

        def reserve(run: Run) -> str:
            run(
                "INSERT INTO chatdock_replies (url_hash, response_url, issued_at) VALUES (?, ?, ?) "
                "ON CONFLICT (url_hash) DO NOTHING",
                (key, response_url, now),
            )
            if run(
                "UPDATE chatdock_replies SET posts = posts + 1 WHERE url_hash = ? AND posts < ? AND issued_at >= ? "
                "RETURNING posts",
                (key, max_posts, now - max_age),
            ):
                return ""
            rows = run("SELECT posts, issued_at FROM chatdock_replies WHERE url_hash = ?", (key,))
            if rows and float(rows[0][1]) < now - max_age:
                return f"expired (older than {max_age / 60:g} minutes)"
            return f"spent ({max_posts} posts)"

        result: str = self._call(reserve, transaction=True)
        return result

    def owe_reply(
        self, *, request_id: str, response_url: str, channel: str, user: str, text: str, issued_at: float
    ) -> None:
        """Record that this process acknowledged ``request_id`` and owes it a reply through ``response_url``;
        if this process dies first, another answers it (:meth:`orphaned_replies`)."""
        self._call(
            lambda run: self._owe(
                run,
                request_id=request_id,
                response_url=response_url,
                channel=channel,
                user=user,
                text=text,
                issued_at=issued_at,
            )
        )

    def _owe(
        self, run: Run, *, request_id: str, response_url: str, channel: str, user: str, text: str, issued_at: float
    ) -> None:
        run(
            "INSERT INTO chatdock_replies (url_hash, response_url, issued_at, state, request_id, instance, "
            "channel, user_id, text) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?) ON CONFLICT (url_hash) DO UPDATE "
            "SET state = 'pending', request_id = excluded.request_id, instance = excluded.instance, "
            "channel = excluded.channel, user_id = excluded.user_id, text = excluded.text",
            (
                digest(response_url),
                response_url,
                issued_at,
                request_id,
                self.instance,
                channel,
                user,
                self._clean(text),
            ),
        )

    def reply_settled(self, request_id: str) -> None:
        """The reply owed to ``request_id`` went out (or failed for good): nobody needs to answer it again."""
        self._call_lane(
            lambda run: run(
                "UPDATE chatdock_replies SET state = 'settled' WHERE request_id = ? AND state <> 'noted'",
                (request_id,),
            )
        )

    def orphaned_replies(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Take over replies owed by processes that are gone (run :meth:`mark_interrupted` first, which forgets
        the dead): each is returned to exactly one caller, with the audit row's outcome when there is one."""

        def take(run: Run) -> list[tuple[Any, ...]]:
            return run(
                "UPDATE chatdock_replies SET state = 'answering', instance = ? WHERE url_hash IN ("
                "SELECT url_hash FROM chatdock_replies WHERE state IN ('pending', 'answering') AND issued_at >= ? "
                "AND instance NOT IN (SELECT instance FROM chatdock_audit_instances) LIMIT ?) "
                "RETURNING request_id, response_url, issued_at, channel, user_id, text, posts",
                (self.instance, base.now() - REPLY_KEEP_SECONDS, limit),
            )

        taken: list[tuple[Any, ...]] = self._call(take, transaction=True)
        out: list[dict[str, Any]] = []
        for request_id, response_url, issued_at, channel, user, text, posts in taken:
            sql = "SELECT outcome, message FROM chatdock_audit WHERE request_id = ? ORDER BY id DESC LIMIT 1"
            rows: list[tuple[Any, ...]] = self._call(partial(_run_with, sql, (request_id,)))
            outcome, message = rows[0] if rows else (None, None)
            out.append(
                {
                    "request_id": request_id,
                    "response_url": response_url,
                    "issued_at": float(issued_at),
                    "channel": channel,
                    "user": user,
                    "text": text,
                    "posts": int(posts),
                    "outcome": outcome,
                    "message": message or "",
                }
            )
        return out

    def acquire_lease(self, name: str, *, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; True while this process holds it. A lease is
        free when it expired or its holder is no longer a registered (live) instance."""
        now = base.now()
        rows = self._call(
            lambda run: run(
                "INSERT INTO chatdock_leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, "
                "acquired_at = CASE WHEN chatdock_leases.holder = excluded.holder THEN chatdock_leases.acquired_at "
                "ELSE excluded.acquired_at END "
                "WHERE chatdock_leases.holder = excluded.holder OR chatdock_leases.expires_at < ? "
                "OR chatdock_leases.holder NOT IN (SELECT instance FROM chatdock_audit_instances) "
                "RETURNING holder",
                (name, self.instance, now, now + ttl, now),
            )
        )
        return bool(rows) and rows[0][0] == self.instance

    def release_lease(self, name: str) -> None:
        """Give ``name`` up at once (a clean stop), so another replica need not wait for it to expire."""
        self._call(lambda run: run("DELETE FROM chatdock_leases WHERE name = ? AND holder = ?", (name, self.instance)))

    def lease_holder(self, name: str) -> str | None:
        """The instance holding ``name`` now (None when free or expired)."""
        rows = self._call(
            lambda run: run("SELECT holder FROM chatdock_leases WHERE name = ? AND expires_at >= ?", (name, base.now()))
        )
        return str(rows[0][0]) if rows else None

    def forget_old(self) -> int:
        """Delete claims past :data:`CLAIM_TTL_SECONDS` and response_urls past :data:`REPLY_KEEP_SECONDS`
        (bearer capabilities are kept no longer than Slack honours them)."""
        now = base.now()

        def purge(run: Run) -> int:
            claims = run("DELETE FROM chatdock_claims WHERE claimed_at < ? RETURNING key", (now - CLAIM_TTL_SECONDS,))
            replies = run(
                "DELETE FROM chatdock_replies WHERE issued_at < ? RETURNING url_hash", (now - REPLY_KEEP_SECONDS,)
            )
            return len(claims) + len(replies)

        count: int = self._call(purge, transaction=True)
        return count

    def ping(self) -> bool:
        """Whether the store answers a trivial query now (``/healthz``)."""
        try:
            return bool(self._call(lambda run: run("SELECT 1", ())))
        except Exception:
            return False
