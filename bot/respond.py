"""Getting a reply to Slack: through the request's response_url first, the Web API when that is not possible.

A response_url is a capability Slack hands out with every command and click: POST JSON to it, at most 5 times,
within 30 minutes. :class:`ResponseUrlClient` does those posts with one shared httpx client, retries what is worth
retrying (connection errors, timeouts, 5xx, 429 with a short ``Retry-After``) a bounded number of times, and
counts posts and age per URL so it knows when a URL is spent (in the shared store when one is given, so
several replicas replying to one request together stay within Slack's 5 posts: :class:`SharedBudget`). When it
cannot deliver it raises :class:`DeliveryFailed`, and :class:`Deliverer` falls back to the Web API
(``chat.postMessage``, ``chat.postEphemeral`` or ``chat.update``).

Nothing here raises to the caller: :meth:`Deliverer.deliver` returns a short status string ("response_url",
"chat.postMessage after response_url spent", "failed: ...") so the caller can record how a reply went out.
Failures are logged without tokens, and response_urls are logged shortened (they are bearer capabilities).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from bot import wording
from bot.render_blocks import SlackMessage

log = logging.getLogger(__name__)

MAX_POSTS = 5  # Slack's limit per response_url
MAX_AGE = 30 * 60.0  # seconds a response_url stays valid
FORGET_AFTER_EXPIRY = 5 * 60.0  # seconds its use is remembered after that
MAX_TEXT = 40_000  # Slack truncates top-level text past this
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long"})


class DeliveryFailed(Exception):
    """A response_url could not take the message; ``error`` is Slack's error code when it gave one."""

    def __init__(self, reason: str, *, status: int | None = None, error: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.error = error


class _Transient(Exception):
    """An attempt worth repeating; ``retry_after`` is the server's wish (429) in seconds."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def short_url(url: str) -> str:
    """A response_url fit for a log line: host and the start of the path, never the secret tail."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path[:24]}…"


@dataclass(slots=True)
class _Usage:
    issued_at: float
    posts: int = 0


class SharedBudget(Protocol):
    """Posts counted across replicas (:meth:`bot.audit.AuditStore.reserve_post`): ``""`` allows one more."""

    def reserve_post(self, response_url: str, *, max_posts: int, max_age: float) -> str: ...


class ResponseUrlClient:
    """POSTs JSON to response_urls, within Slack's limits, with bounded retries. With ``budget`` the posts are
    also counted in the shared store (one replica's reply and another's "interrupted" note share the 5)."""

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 2.0,
        max_retry_after: float = 10.0,
        max_posts: int = MAX_POSTS,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        budget: SharedBudget | None = None,
    ) -> None:
        self.budget = budget
        self._http = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))
        self._owns_http = client is None
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.max_posts = max_posts
        self.max_age = max_age
        self._clock = clock
        self._sleep = sleep
        self._usage: OrderedDict[str, _Usage] = OrderedDict()  # in the order URLs were first seen
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -- bookkeeping -----------------------------------------------------------------------------------
    def note(self, response_url: str, *, issued_at: float | None = None) -> None:
        """Record when Slack issued a URL (the request's arrival), so its age counts from then."""
        with self._lock:
            self._prune()
            self._usage.setdefault(response_url, _Usage(issued_at=self._clock() if issued_at is None else issued_at))

    def posts_left(self, response_url: str) -> int:
        with self._lock:
            usage = self._usage.get(response_url)
            return self.max_posts - (usage.posts if usage else 0)

    def _reserve(self, response_url: str) -> None:
        """Count one post against the URL, or refuse if it is spent or too old."""
        now = self._clock()
        with self._lock:
            self._prune()
            usage = self._usage.setdefault(response_url, _Usage(issued_at=now))
            if now - usage.issued_at > self.max_age:
                raise DeliveryFailed("expired (older than 30 minutes)")
            if usage.posts >= self.max_posts:
                raise DeliveryFailed(f"spent ({self.max_posts} posts)")
            usage.posts += 1
        if self.budget is None:
            return
        try:
            refused = self.budget.reserve_post(response_url, max_posts=self.max_posts, max_age=self.max_age)
        except Exception:
            log.error("could not count a response_url post in the shared store; counted here only", exc_info=True)
            return
        if refused:
            raise DeliveryFailed(refused)

    def _prune(self) -> None:
        # A record is kept until its URL has expired, plus a margin: chatdock's own posts pass ``issued_at``,
        # which re-creates a forgotten record with its true age, so a late post is still refused as expired.
        # Keeping records longer only costs memory: at a steady rate, the bookkeeping holds the URLs of the last
        # ``max_age + FORGET_AFTER_EXPIRY`` seconds (about 200 bytes each).
        cutoff = self._clock() - self.max_age - FORGET_AFTER_EXPIRY
        # URLs are noted as their requests arrive, so the oldest come first: drop from the front, stop at the first
        # one kept. (Scanning every URL still remembered on each request made each ack slower with traffic.)
        # One noted out of order (an older ``issued_at``) is only dropped later: kept longer, never too early.
        while self._usage:
            url, usage = next(iter(self._usage.items()))
            if usage.issued_at >= cutoff:
                break
            del self._usage[url]

    # -- posting ---------------------------------------------------------------------------------------
    def post(self, response_url: str, payload: dict[str, Any], *, issued_at: float | None = None) -> None:
        """Deliver ``payload`` or raise :class:`DeliveryFailed`. Every attempt counts as one of the 5 posts:
        a 5xx or a timeout may still have reached the channel, so counting it is the safe side."""
        if issued_at is not None:
            self.note(response_url, issued_at=issued_at)
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            retrying(self._attempt, response_url, payload)
        except _Transient as exc:
            raise DeliveryFailed(f"gave up after {self.attempts} attempts ({exc.reason})") from None

    def _attempt(self, response_url: str, payload: dict[str, Any]) -> None:
        self._reserve(response_url)
        try:
            response = self._http.post(response_url, json=payload)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Transient(f"connection error ({type(exc).__name__})") from None
        status = response.status_code
        error = _slack_error(response)
        if status == 429:
            retry_after = _retry_after(response)
            if retry_after is not None and retry_after > self.max_retry_after:
                raise DeliveryFailed(f"rate limited (Retry-After {retry_after:g} s)", status=status, error=error)
            raise _Transient("rate limited (429)", retry_after=retry_after)
        if status >= 500:
            raise _Transient(f"HTTP {status}")
        if status >= 400:
            raise DeliveryFailed(f"HTTP {status} {error}".rstrip(), status=status, error=error)
        if error:  # a 200 that says {"ok": false, "error": ...}
            raise DeliveryFailed(f"refused: {error}", status=status, error=error)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        return float(min(self.backoff * 2 ** (state.attempt_number - 1), self.max_backoff))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _slack_error(response: httpx.Response) -> str:
    """Slack's error code from a response_url answer: JSON ``{"ok": false, "error": ...}`` or a bare word."""
    text = response.text.strip()
    if not text or text == "ok":
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        return text[:80] if response.status_code >= 400 else ""
    if isinstance(data, dict) and data.get("ok") is False:
        return str(data.get("error", "error"))
    return ""


def api_error(exc: BaseException) -> str:
    """A Web API failure as a short word, never with the token (SlackApiError carries only the response)."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return type(exc).__name__


class TokenBucket:
    """An app-wide budget for one Web API method: ``per_minute`` calls on average, at most ``burst`` at once.

    Slack rate-limits ``chat.update`` per app and workspace (Tier 3, about 50 a minute); progress edits of every
    request in flight share this one bucket, so together they stay under it whatever runs at once.
    """

    def __init__(
        self,
        *,
        per_minute: float = 50.0,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, *, wait: float = 0.0) -> bool:
        """Take one token; wait up to ``wait`` seconds for one. False when none came."""
        deadline = self._clock() + wait
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return True
                needed = (1.0 - self._tokens) / self.rate
            left = deadline - self._clock()
            if left <= 0:
                return False
            self._sleep(min(needed, left))


class Deliverer:
    """Sends a rendered :class:`SlackMessage` where it belongs, and says how it went."""

    def __init__(
        self,
        *,
        client: WebClient,
        response_urls: ResponseUrlClient | None = None,
        update_budget: TokenBucket | None = None,
    ) -> None:
        self.client = client
        self.response_urls = response_urls or ResponseUrlClient()
        self.update_budget = update_budget or TokenBucket()

    def live(self, channel: str | None, *, interval: float = 3.0) -> LiveMessage:
        """A message that a long request (a pull) edits in place; see :class:`LiveMessage`."""
        return LiveMessage(self, channel, interval=interval)

    def close(self) -> None:
        self.response_urls.close()

    def deliver(
        self,
        message: SlackMessage,
        response_url: str | None,
        channel: str | None,
        replace_original: bool = False,
        *,
        user: str | None = None,
        message_ts: str | None = None,
        issued_at: float | None = None,
    ) -> str:
        """Deliver ``message``; returns how (``response_url``, ``chat.postMessage ...``) or ``failed: ...``.

        ``user`` is needed to fall back for an ephemeral message (``chat.postEphemeral``; it must never become
        public); ``message_ts`` to fall back for ``replace_original`` (``chat.update``).
        """
        if message.attachment is not None:
            if channel and message.response_type == "in_channel" and not replace_original:
                return self._deliver_with_file(message, response_url, channel, user=user, issued_at=issued_at)
            log.info("attachment %r not uploaded: only new in-channel messages carry files", message.attachment.title)
            message = message.without_file(wording.NOT_ATTACHED_HERE)  # never promise a file that is not sent
        notes: list[str] = []
        if response_url:
            try:
                return self._via_response_url(message, response_url, replace_original, issued_at)
            except DeliveryFailed as exc:
                log.warning("response_url %s failed: %s; falling back to the Web API", short_url(response_url), exc)
                notes.append(f"response_url {exc.reason}")
        return self._via_web_api(
            message, channel, replace_original, user=user, message_ts=message_ts, after="; ".join(notes)
        )

    # -- paths -----------------------------------------------------------------------------------------
    def _via_response_url(
        self, message: SlackMessage, response_url: str, replace_original: bool, issued_at: float | None
    ) -> str:
        payload: dict[str, Any] = {
            "response_type": message.response_type,
            "replace_original": replace_original,
            "text": _clip(message.text),
        }
        if message.blocks:
            payload["blocks"] = message.blocks
        try:
            self.response_urls.post(response_url, payload, issued_at=issued_at)
            return "response_url"
        except DeliveryFailed as exc:
            if exc.error not in BLOCK_ERRORS or "blocks" not in payload:
                raise
            log.warning("Slack refused the blocks (%s); resending as plain text", exc.error)
            del payload["blocks"]
            self.response_urls.post(response_url, payload)
            return f"response_url as plain text ({exc.error})"

    def _via_web_api(
        self,
        message: SlackMessage,
        channel: str | None,
        replace_original: bool,
        *,
        user: str | None,
        message_ts: str | None,
        after: str = "",
    ) -> str:
        suffix = f" after {after}" if after else ""
        if not channel:
            return self._failed(f"no channel to post to{suffix}")
        call: Callable[..., Any]
        if message.response_type == "ephemeral":
            if not user:
                return self._failed(f"ephemeral reply without a user{suffix}")
            method = "chat.postEphemeral"

            def call(**kwargs: Any) -> Any:
                return self.client.chat_postEphemeral(channel=channel, user=user, **kwargs)

        elif replace_original and message_ts:
            method = "chat.update"

            def call(**kwargs: Any) -> Any:
                return self.client.chat_update(channel=channel, ts=message_ts, **kwargs)

        else:
            method = "chat.postMessage"

            def call(**kwargs: Any) -> Any:
                return self.client.chat_postMessage(channel=channel, **kwargs)

        try:
            _, how = self._web_call(call, message)
        except Exception as exc:
            return self._failed(f"{method} {api_error(exc)}{suffix}")
        return f"{method}{how}{suffix}"

    def _deliver_with_file(
        self,
        message: SlackMessage,
        response_url: str | None,
        channel: str,
        *,
        user: str | None,
        issued_at: float | None,
    ) -> str:
        """Post the message with the Web API (the file goes in its thread, which needs the message's ts)."""
        attachment = message.attachment
        assert attachment is not None
        try:
            response, how = self._web_call(lambda **kw: self.client.chat_postMessage(channel=channel, **kw), message)
        except Exception as exc:
            # e.g. not_in_channel in a private channel: the reply still goes out, without the file
            reason = api_error(exc)
            log.warning("chat.postMessage failed (%s); replying without the file %r", reason, attachment.filename)
            bare = message.without_file(wording.not_attached(attachment.filename, reason))
            status = self.deliver(bare, response_url, channel, user=user, issued_at=issued_at)
            return f"{status}; file not uploaded ({reason})"
        ts = str(response.get("ts", ""))
        try:
            self.client.files_upload_v2(
                channel=channel,
                thread_ts=ts or None,
                content=attachment.content,
                filename=attachment.filename,
                title=attachment.title,
            )
        except Exception as exc:
            reason = api_error(exc)
            log.warning("uploading %r failed: %s", attachment.filename, reason)
            taken_back = self._take_back(message, channel, ts, reason, user=user)
            return f"chat.postMessage{how}; file upload failed ({reason}); {taken_back}"
        return f"chat.postMessage{how} + file"

    def _take_back(self, message: SlackMessage, channel: str, ts: str, reason: str, *, user: str | None) -> str:
        """The posted reply promised a file that did not go out: update it to say so, and how to fix it
        (``chat.update``, which needs only what posting needed); failing that, tell the person who asked."""
        assert message.attachment is not None
        note = wording.not_attached(message.attachment.filename, reason)
        corrected = message.without_file(note)
        try:
            if not ts:
                raise ValueError("chat.postMessage gave no ts")
            _, how = self._web_call(lambda **kw: self.client.chat_update(channel=channel, ts=ts, **kw), corrected)
        except Exception as exc:
            failed = f"chat.update failed ({api_error(exc)})"
            log.error("could not correct the reply that promised %r: %s", message.attachment.filename, failed)
            if not user:
                return failed
            try:
                self.client.chat_postEphemeral(channel=channel, user=user, text=note)
            except Exception as again:
                return f"{failed}; chat.postEphemeral failed ({api_error(again)})"
            return f"{failed}; told the requester (chat.postEphemeral)"
        return f"reply updated: not attached{how}"

    def _web_call(self, call: Callable[..., Any], message: SlackMessage) -> tuple[Any, str]:
        """Call with blocks; if Slack refuses the blocks, once more as plain text."""
        text = _clip(message.text)
        if not message.blocks:
            return call(text=text), ""
        try:
            return call(text=text, blocks=message.blocks), ""
        except SlackApiError as exc:
            error = api_error(exc)
            if error not in BLOCK_ERRORS:
                raise
            log.warning("Slack refused the blocks (%s); resending as plain text", error)
            return call(text=text), f" as plain text ({error})"

    @staticmethod
    def _failed(reason: str) -> str:
        log.error("reply not delivered: %s", reason)
        return f"failed: {reason}"


def _clip(text: str) -> str:
    text = text or " "
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class LiveMessage:
    """One channel message a long request edits in place while it runs.

    The first :meth:`show` posts it (``chat.postMessage``); later ones edit it (``chat.update``) at most once
    every ``interval`` seconds, and only with a token from the Deliverer's app-wide ``chat.update`` budget:
    progress that arrives in between, or when the budget is spent, is skipped (the next edit shows the latest).
    :meth:`finish` puts the final result into the same message. When the channel cannot take the post (the
    bot is not in it), progress stops and the result goes out as any other reply.
    """

    FINAL_WAIT = 10.0  # seconds the final edit may wait for the budget before the result goes out another way

    def __init__(
        self,
        deliverer: Deliverer,
        channel: str | None,
        *,
        interval: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deliverer = deliverer
        self.channel = channel or ""
        self.interval = interval
        self._clock = clock
        self.ts: str | None = None
        self.edits = 0
        self._last = -float("inf")
        self._broken = not channel

    def show(self, render: Callable[[], SlackMessage]) -> None:
        """Post or edit the progress message, if this message and the app's budget allow it now."""
        if self._broken:
            return
        now = self._clock()
        if self.ts is not None and (now - self._last < self.interval or not self.deliverer.update_budget.take()):
            return
        self._last = now
        message = render()
        try:
            if self.ts is None:
                response, _ = self.deliverer._web_call(
                    lambda **kw: self.deliverer.client.chat_postMessage(channel=self.channel, **kw), message
                )
                self.ts = str(response.get("ts") or "") or None
                self._broken = self.ts is None
            else:
                self._update(message)
        except Exception as exc:
            log.warning(
                "progress message not %s (%s); no more progress for it",
                "edited" if self.ts else "posted",
                api_error(exc),
            )
            self._broken = True

    def _update(self, message: SlackMessage) -> None:
        ts = self.ts or ""
        self.deliverer._web_call(
            lambda **kw: self.deliverer.client.chat_update(channel=self.channel, ts=ts, **kw), message
        )
        self.edits += 1
        self._last = self._clock()

    def finish(self, message: SlackMessage) -> str | None:
        """Edit the final result into the progress message; None when there is none (or it cannot be edited),
        and the result must go out as usual."""
        if self.ts is None or self._broken:
            return None
        if not self.deliverer.update_budget.take(wait=self.FINAL_WAIT):
            log.warning("chat.update budget spent; the result goes out as a new message")
            return None
        try:
            self._update(message)
        except Exception as exc:
            log.warning("could not edit the result into the progress message (%s)", api_error(exc))
            return None
        return "chat.update of the progress message"
