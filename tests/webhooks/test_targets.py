"""Webhook targets: public addresses only by default, ``webhooks.allow_targets`` for on-premise receivers,
checked on the URL at registration and on every resolved address at delivery (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import trio

from actors.store import JobStatus, Queue
from actors.webhooks import TargetPolicy, UnsafeTarget, Webhooks, not_public
from config import ConfigError, load_settings

from .conftest import LOCAL_RECEIVERS, prepare

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:5432/",
    "http://app.localhost/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # shared address space (CGNAT)
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://2130706433/",  # 127.0.0.1 in decimal
    "http://0x7f000001/",  # in hex
    "http://0177.0.0.1/",  # in octal
    "http://127.1/",  # short form
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[2002:a00:1::]/",  # 6to4 around 10.0.0.1
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://user:pw@example.com/",
    "http://example.com@127.0.0.1/",
    "ftp://example.com/",
    "http://999.1.1.1/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="^url: "):
        TargetPolicy().check_url(url)


@pytest.mark.parametrize("url", ["https://example.com/hook", "http://93.184.216.34:8080/h",
                                 "https://[2606:4700:4700::1111]/h", "https://hooks.example.com./h"])
def test_public_targets_pass(url: str) -> None:
    TargetPolicy().check_url(url)


def test_allow_targets_lets_listed_networks_and_names_through_but_never_the_daemons_api() -> None:
    settings = load_settings(env={"ZAPVISOR_WEBHOOKS__ALLOW_TARGETS": "127.0.0.1/32,10.1.0.0/16,hooks.internal",
                                  "ZAPVISOR_API__HOST": "0.0.0.0", "ZAPVISOR_API__PORT": "8080"})
    assert settings.webhooks.allow_targets == ("127.0.0.1/32", "10.1.0.0/16", "hooks.internal")
    policy = TargetPolicy.from_settings(settings.webhooks.allow_targets,
                                        [(settings.api.host, settings.api.port)])
    for url in ("http://127.0.0.1:9/h", "http://10.1.200.3/h", "http://hooks.internal:8443/h"):
        policy.check_url(url)
    for url in ("http://10.2.0.1/h", "http://127.0.0.2/h", "http://127.0.0.1:8080/tenants"):
        with pytest.raises(UnsafeTarget):
            policy.check_url(url)
    with pytest.raises(ConfigError, match="webhooks.allow_targets"):
        load_settings(env={"ZAPVISOR_WEBHOOKS__ALLOW_TARGETS": "not a host!"})


async def test_admin_notify_url_is_checked_when_the_service_is_built(store) -> None:
    with pytest.raises(ConfigError, match="webhooks.admin_notify_url: 169.254.169.254"):
        Webhooks(store, admin_notify_url="http://169.254.169.254/")
    allowed = TargetPolicy.from_settings(["169.254.0.0/16"])
    assert Webhooks(store, admin_notify_url="http://169.254.169.254/", targets=allowed).admin_notify_url


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(store, receiver) -> None:
    """The URL passes at registration (a name), but what it resolves to is checked before each POST."""
    name = socket.gethostname()
    port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
    resolved = {ipaddress.ip_address(info[4][0]) for info in await trio.socket.getaddrinfo(name, port)}
    assert resolved and all(not_public(address) for address in resolved), resolved  # what this test is about
    url = f"http://{name}:{port}/hook"
    TargetPolicy().check_url(url)
    await prepare(store, url)
    service = Webhooks(store, attempts=1, poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        service.emit("acme", "connection.update", {"status": "connected"})
        with trio.fail_after(20):
            while not (dead := await store.list_jobs(Queue.WEBHOOKS, JobStatus.DEAD)):
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert receiver.calls == []
    assert "refused target" in dead[0].last_error


async def test_a_redirect_is_a_failed_attempt_never_followed(store, receiver) -> None:
    await prepare(store, receiver.url)
    receiver.default, receiver.location = 307, receiver.url  # followed, it would POST here again
    service = Webhooks(store, attempts=1, poll_interval=0.05, targets=LOCAL_RECEIVERS)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        service.emit("acme", "connection.update", {"status": "connected"})
        with trio.fail_after(20):
            while not (dead := await store.list_jobs(Queue.WEBHOOKS, JobStatus.DEAD)):
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert dead[0].last_error == "HTTP 307" and len(receiver.calls) == 1
