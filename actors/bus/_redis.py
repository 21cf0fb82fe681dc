"""The Redis bus: the same semantics as the in-memory bus, shared by every node.

redis-py's asyncio client runs inside this backend only: ``run()`` opens a trio-asyncio loop
(``trio_asyncio.open_loop()``) and every operation crosses into it with ``aio_as_trio``; no
asyncio object leaves this module and ``_redis_pubsub``.

Every command goes to Redis in a pipeline shared with the commands issued at the same moment
(``_redis_batch``): a burst of a thousand lease releases is a few round trips, and the
connections in use stay bounded, so redis-py's pool is never exhausted.

Failing fast: each operation is bounded by ``op_timeout`` (connect included) and any connection
problem becomes :class:`BusUnavailable`; redis-py retries once without backoff so the first
command after a Redis restart does not fail on a stale pooled connection. A health probe every
``health_interval`` keeps ``statistics().available`` current and drops the pub/sub connection
when Redis stops answering, so it is rebuilt (and resubscribed) when Redis returns.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import redis.asyncio as aredis
import trio
import trio_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from actors._aio import LoopCalls

from . import _redis_scripts as scripts
from ._codec import (
    FENCE_RETENTION,
    check_amount,
    check_lock,
    check_name,
    check_ttl,
    decode,
    encode,
    ttl_ms,
)
from ._errors import BusError, BusUnavailable, BusValueError, LockBusy
from ._fanout import Fanout, Subscription, new_subscription
from ._redis_batch import PIPELINES_IN_FLIGHT, Batcher, Command
from ._redis_pubsub import PubSubPump
from ._values import BusStatistics, LockToken

#: Seconds to open a TCP connection to Redis. Redis sits on the local network: a healthy one
#: accepts in milliseconds, so half a second only ever expires on an unreachable host.
DEFAULT_CONNECT_TIMEOUT = 0.5

#: Seconds one operation may take end to end (queue, connect, round trip). Redis answers in
#: well under a millisecond; a second means it is stalled or gone, and callers must learn it fast.
DEFAULT_OP_TIMEOUT = 1.0

#: Seconds between health probes (PING). Bounds how stale ``available`` is and how long a silent
#: pub/sub connection to a stalled Redis survives.
DEFAULT_HEALTH_INTERVAL = 1.0

#: Seconds between pub/sub reconnect attempts: quick recovery, at most two connects a second.
DEFAULT_RECONNECT_DELAY = 0.5

#: Connections the command pool may open: the batcher's pipelines in flight and the health
#: probe need fewer (``_redis_batch``), the rest is headroom for connections that operations
#: cancelled on the trio side (their deadline) hand back a moment later, from the asyncio side.
#: redis-py refuses a connection beyond this at once (MaxConnectionsError), so it must never be
#: the bound that bursts meet: a node stopping 500 sessions once lost most lease releases so.
POOL_SIZE = PIPELINES_IN_FLIGHT + 16

#: Keys per SCAN step of ``delete_pattern``: big enough to be quick, small enough that one step
#: (and the UNLINK of its batch) never blocks Redis noticeably.
DEFAULT_SCAN_BATCH = 500

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+")


def _check_namespace(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    # glob characters or ':' in the namespace would leak delete_pattern/psubscribe across namespaces
    if not isinstance(value, str) or not _NAMESPACE.fullmatch(value):
        raise BusValueError(f"namespace must match {_NAMESPACE.pattern}, got {value!r}")


def _check_url(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://", "unix://")):
        raise BusValueError(f"url must be a redis://, rediss:// or unix:// URL, got {value!r}")


def _positive(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    check_ttl(attribute.name, value)


@attrs.define(eq=False)
class RedisBus:
    """Redis implementation of :class:`~actors.bus.Bus` (see there for the semantics).

    Operations need ``run()`` to be running (they raise BusUnavailable otherwise). ``namespace``
    prefixes every key and channel (``<ns>:c:`` cache, ``<ns>:l:`` locks, ``<ns>:f:`` fences,
    ``<ns>:p:`` channels), so several deployments can share one Redis.
    """

    url: str = attrs.field(validator=_check_url)
    namespace: str = attrs.field(default="zv", validator=_check_namespace)
    connect_timeout: float = attrs.field(default=DEFAULT_CONNECT_TIMEOUT, validator=_positive)
    op_timeout: float = attrs.field(default=DEFAULT_OP_TIMEOUT, validator=_positive)
    health_interval: float = attrs.field(default=DEFAULT_HEALTH_INTERVAL, validator=_positive)
    reconnect_delay: float = attrs.field(default=DEFAULT_RECONNECT_DELAY, validator=_positive)
    scan_batch: int = attrs.field(default=DEFAULT_SCAN_BATCH, validator=attrs.validators.gt(0))
    _loop: trio_asyncio.TrioEventLoop | None = attrs.field(init=False, default=None)
    _client: aredis.Redis | None = attrs.field(init=False, default=None)
    _pump: PubSubPump | None = attrs.field(init=False, default=None)
    _calls: LoopCalls | None = attrs.field(init=False, default=None)
    _fanout: Fanout = attrs.field(init=False, factory=Fanout)
    _batcher: Batcher = attrs.field(init=False, default=attrs.Factory(
        lambda self: Batcher(self._pipeline, self.op_timeout), takes_self=True))
    _available: bool = attrs.field(init=False, default=False)
    _ever_available: bool = attrs.field(init=False, default=False)
    _operations: int = attrs.field(init=False, default=0)
    _unavailable: int = attrs.field(init=False, default=0)
    _published: int = attrs.field(init=False, default=0)
    _reconnects: int = attrs.field(init=False, default=0)

    # -- hosting ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the asyncio loop, the clients, the health probe and the pub/sub pump until cancelled.

        Reports started at once, whether or not Redis is reachable (operations then raise
        BusUnavailable until it is). On exit, open subscriptions end with BusUnavailable.

        Raises:
            BusError: this bus is already running.
        """
        if self._loop is not None:
            raise BusError("this RedisBus is already running")
        async with trio_asyncio.open_loop() as loop:
            # one retry without backoff: a stale pooled connection after a Redis restart is
            # replaced at once instead of failing the first command
            client = await loop.run_aio_coroutine(self._connect(retries=1))
            # no retries on the pub/sub connection: a reconnect must surface so subscribers get a Gap
            pubsub_client = await loop.run_aio_coroutine(self._connect(retries=0))
            self._loop, self._client = loop, client
            self._calls = LoopCalls(lambda: BusUnavailable("the Redis bus is not running"))
            self._pump = PubSubPump(
                call=self._bridge,
                new_pubsub=pubsub_client.pubsub,
                fanout=self._fanout,
                prefix=self._key("p", ""),
                op_timeout=self.op_timeout,
                reconnect_delay=self.reconnect_delay,
            )
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._health)
                    nursery.start_soon(self._pump.run)
                    await nursery.start(self._batcher.run)
                    task_status.started()
            finally:
                with trio.CancelScope(shield=True):
                    await self._calls.close()  # nobody may wait on the loop once it closes
                self._loop = self._client = self._pump = None
                self._available = False
                self._fanout.fail_all(BusUnavailable("the Redis bus stopped"))
                with trio.CancelScope(shield=True), trio.move_on_after(self.op_timeout):
                    for each in (client, pubsub_client):
                        try:
                            await loop.run_aio_coroutine(each.aclose())
                        except (RedisError, OSError):
                            pass  # closing connections to a dead server may fail; they are gone

    async def _connect(self, retries: int) -> aredis.Redis:
        """Build a client inside the asyncio loop (redis-py binds its pool to the running loop).

        No socket timeout: the trio deadline around each operation (``op_timeout``) is the only
        bound, and cancelling makes redis-py drop the connection. redis-py's own timed I/O costs
        an extra asyncio task per command (``wait_for``; lock pairs went from ~1,050 to ~1,600
        per second without it in one bench/bus.py run), and its timed write awaits between the
        connected check and the write, racing a concurrent reader's disconnect on the pub/sub
        connection (AttributeError). The pub/sub read waits for messages indefinitely; the
        health probe resets it when Redis stalls.
        """
        return aredis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=None,  # explicit: redis-py's default is 5 s
            retry=Retry(NoBackoff(), retries),
            max_connections=POOL_SIZE,
        )

    async def _health(self) -> None:
        while True:
            try:
                await self._call(self._require_client().ping)
            except BusUnavailable:
                self._unavailable += 1
                if self._pump is not None:
                    self._pump.reset()
            await trio.sleep(self.health_interval)

    def statistics(self) -> BusStatistics:
        fanout = self._fanout
        return BusStatistics(
            backend="redis",
            available=self._available,
            operations=self._operations,
            unavailable=self._unavailable,
            subscriptions=fanout.subscriptions,
            names=len(fanout.channel_names) + len(fanout.pattern_names),
            published=self._published,
            delivered=fanout.delivered,
            dropped=fanout.dropped,
            malformed=fanout.malformed,
            reconnects=self._reconnects + (self._pump.reconnects if self._pump else 0),
        )

    # -- the bridge --------------------------------------------------------------------------------

    async def _bridge(self, proc: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the asyncio function ``proc`` in this bus's loop (no deadline: callers add theirs)."""
        loop = self._loop
        if loop is None:
            raise BusUnavailable("the Redis bus is not running")
        return await self._calls(functools.partial(trio_asyncio.aio_as_trio(proc, loop=loop), **kwargs), *args)

    def _require_client(self) -> aredis.Redis:
        if self._client is None:
            self._unavailable += 1
            raise BusUnavailable("the Redis bus is not running")
        return self._client

    async def _call(self, proc: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``proc`` (asyncio side) against Redis, bounded by ``op_timeout``.

        Raises:
            BusUnavailable: connection refused/reset/timed out, or no answer in time.
        """
        failure = f"no answer within {self.op_timeout}s"
        with trio.move_on_after(self.op_timeout):
            try:
                result = await self._bridge(proc, *args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                self._mark(available=True)
                return result
        self._mark(available=False)
        raise BusUnavailable(f"Redis unavailable ({failure})")

    def _mark(self, *, available: bool) -> None:
        if available and not self._available and self._ever_available:
            self._reconnects += 1
        self._available = available
        self._ever_available |= available

    def _key(self, kind: str, name: str) -> str:
        return f"{self.namespace}:{kind}:{name}"

    # -- commands, pipelined --------------------------------------------------------------------

    async def _command(self, method: str, *args: Any, refused: str = "", script: str = "", **kwargs: Any) -> Any:
        """One Redis command (redis-py's ``method``): it shares a pipeline with the others in
        flight (``_redis_batch``), bounded by ``op_timeout`` from now.

        Raises:
            BusUnavailable: the bus is not running, Redis did not answer in time, or the
                connection failed (as for the whole pipeline it was in).
            BusValueError: Redis refused the command and ``refused`` says why in our terms.
            BusError: Redis refused the command otherwise.
        """
        self._require_client()
        self._operations += 1
        try:
            return await self._batcher.call(Command(method, args, kwargs, refused, script))
        except BusUnavailable:
            self._unavailable += 1
            raise

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run lock script ``name`` (EVALSHA; loaded first when Redis lacks it)."""
        return await self._command("evalsha", scripts.SHAS[name], len(keys), *keys, *args, script=name)

    async def _pipeline(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` as one pipeline (one connection, one ``op_timeout``); one reply each."""
        if self._client is None:
            raise BusUnavailable("the Redis bus is not running")
        return await self._call(self._execute, self._client, commands)

    @staticmethod
    async def _execute(client: aredis.Redis, commands: Sequence[Command]) -> list[Any]:
        """(asyncio side) One pipeline; the scripts Redis lacks (it restarted empty) are loaded
        and just the commands that needed them sent again."""
        replies = await RedisBus._send(client, commands)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for name in {commands[i].script for i in missing}:
                await client.script_load(scripts.SCRIPTS[name])
            for i, reply in zip(missing, await RedisBus._send(client, [commands[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    @staticmethod
    async def _send(client: aredis.Redis, commands: Sequence[Command]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            getattr(pipe, command.method)(*command.args, **command.kwargs)
        return await pipe.execute(raise_on_error=False)

    # -- cache -------------------------------------------------------------------------------------

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        name = self._key("c", check_name("key", key))
        raw = encode("value", value)
        px = None if ttl is None else ttl_ms(check_ttl("ttl", ttl))
        await self._command("set", name, raw, px=px)

    async def get(self, key: str, default: Any = None) -> Any:
        raw = await self._command("get", self._key("c", check_name("key", key)))
        if raw is None:
            return default
        try:
            return decode(raw)
        except ValueError:
            raise BusValueError(f"key {key!r} holds a value that is not JSON (not written by the bus)") from None

    async def delete(self, key: str) -> bool:
        return bool(await self._command("unlink", self._key("c", check_name("key", key))))

    async def delete_pattern(self, pattern: str) -> int:
        """SCAN the keyspace in batches of ``scan_batch`` and UNLINK each batch (never KEYS).

        Each step is its own bounded operation: BusUnavailable midway leaves some keys deleted.
        """
        match = self._key("c", check_name("pattern", pattern))
        cursor, deleted = 0, 0
        while True:
            cursor, keys = await self._command("scan", cursor, match=match, count=self.scan_batch)
            if keys:
                deleted += await self._command("unlink", *keys)
            if cursor == 0:
                return deleted

    async def exists(self, key: str) -> bool:
        return bool(await self._command("exists", self._key("c", check_name("key", key))))

    async def incr(self, key: str, amount: int = 1) -> int:
        check_amount("amount", amount)
        return await self._command(
            "incrby",
            self._key("c", check_name("key", key)),
            amount,
            refused=f"key {key!r} does not hold a 64-bit integer (or {amount} overflows it)",
        )

    async def decr(self, key: str, amount: int = 1) -> int:
        return await self.incr(key, -check_amount("amount", amount))

    async def expire(self, key: str, ttl: float) -> bool:
        name = self._key("c", check_name("key", key))
        return bool(await self._command("pexpire", name, ttl_ms(check_ttl("ttl", ttl))))

    async def ttl(self, key: str) -> float | None:
        ms = await self._command("pttl", self._key("c", check_name("key", key)))
        if ms == -2:
            return None
        return math.inf if ms == -1 else ms / 1000

    # -- locks ---------------------------------------------------------------------------------------

    async def acquire(self, resource: str, ttl: float, *, owner: str = "") -> LockToken:
        check_name("resource", resource)
        ttl = check_ttl("ttl", ttl)
        if not isinstance(owner, str):
            raise BusValueError(f"owner must be a string, got {owner!r}")
        sent_at = trio.current_time()
        reply = await self._script("acquire", [self._key("l", resource), self._key("f", resource)],
                                   [ttl_ms(ttl), owner, ttl_ms(FENCE_RETENTION)])
        if reply[0] == 0:
            raise LockBusy(resource, scripts.lock_owner_of(reply[1]))
        return LockToken(resource, int(reply[0]), owner, ttl, sent_at)

    async def release(self, lock: LockToken) -> bool:
        check_lock(lock)
        return bool(await self._script("release", [self._key("l", lock.resource)],
                                       [scripts.lock_value(lock.token, lock.owner)]))

    async def renew(self, lock: LockToken, ttl: float | None = None) -> bool:
        check_lock(lock)
        ttl = lock.ttl if ttl is None else check_ttl("ttl", ttl)
        return bool(await self._script("renew", [self._key("l", lock.resource)],
                                       [scripts.lock_value(lock.token, lock.owner), ttl_ms(ttl)]))

    async def is_locked(self, resource: str) -> bool:
        name = self._key("l", check_name("resource", resource))
        return bool(await self._command("exists", name))

    async def lock_owner(self, resource: str) -> str | None:
        value = await self._command("get", self._key("l", check_name("resource", resource)))
        return None if value is None else scripts.lock_owner_of(value)

    # -- pub/sub ---------------------------------------------------------------------------------

    async def publish(self, channel: str, data: Any) -> int:
        name = self._key("p", check_name("channel", channel))
        receivers = await self._command("publish", name, encode("data", data))
        self._published += 1
        return receivers

    @asynccontextmanager
    async def subscribe(
        self, *channels: str, patterns: tuple[str, ...] | list[str] = ()
    ) -> AsyncIterator[Subscription]:
        sub = new_subscription(channels, patterns)
        pump = self._pump
        if pump is None:
            self._unavailable += 1
            raise BusUnavailable("the Redis bus is not running")
        new_channels, new_patterns = self._fanout.add(sub)
        try:
            try:
                await pump.ensure(new_channels, new_patterns)
            except BusUnavailable:
                self._unavailable += 1
                raise
            yield sub
        finally:
            gone_channels, gone_patterns = self._fanout.remove(sub)
            await pump.drop(gone_channels, gone_patterns)
