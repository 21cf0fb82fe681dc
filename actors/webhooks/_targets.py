"""Which URLs a webhook may reach: public addresses only, unless the operator allows more (DESIGN §10).

A tenant registers the URL and the daemon POSTs to it from inside the operator's network, so an
unchecked URL is a request forgery: the metadata service (169.254.169.254), the database
(localhost:5432), the daemon's own admin API. :class:`TargetPolicy` refuses, by default, every
address that is not globally routable — private, loopback, link-local, multicast, unspecified,
reserved, shared (CGNAT), and IPv6 forms embedding them (``::ffff:127.0.0.1``, 6to4, Teredo) —
the well-known local and metadata host names, URLs carrying credentials (``user:pw@``), and the
daemon's own API address.

It is applied twice:

- at registration (:meth:`TargetPolicy.check_url`): the URL's literal host, including the
  legacy numeric IPv4 forms a resolver accepts (``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
  ``127.1``); a name is not resolved then (it may not exist yet);
- at every delivery (:meth:`TargetPolicy.resolve`): the name is resolved and *every* address
  it resolves to is checked, and the request goes to that checked address (the ``Host`` header
  and TLS SNI keep the name), so a DNS answer that changes between the check and the connect
  (DNS rebinding) cannot redirect it. Redirects are never followed (``HttpPoster``).

On-premise receivers are allowed explicitly with ``webhooks.allow_targets``: CIDR networks
(``10.1.2.0/24``, ``127.0.0.1/32``) and host names (``hooks.internal``); an allowed name's
resolved addresses are then trusted. The daemon's own API address stays refused even when allowed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio

from config import ConfigError

from ._errors import WebhookError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
"""Names every resolver maps to the machine itself (``*.localhost`` too, RFC 6761)."""

METADATA_NAMES = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.internal",
})
"""Cloud instance-metadata services by name (their addresses are link-local and refused anyway)."""

_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*\.?$")
"""A host made only of numbers: some IPv4 address in a legacy form (decimal, hex, octal, short)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeTarget(WebhookError, ValueError):
    """A webhook URL (or one of its resolved addresses) the policy refuses; the message says why."""


def _parse_allowed(entry: str) -> Network | str:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return entry.lower().rstrip(".")


@attrs.frozen
class TargetPolicy:
    """Public targets only, plus ``allow_networks``/``allow_hosts``; never the ``own`` API address.

    ``own`` holds the daemon's API ``(host, port)`` pairs (port 0: unknown, not checked).
    """

    allow_networks: tuple[Network, ...] = ()
    allow_hosts: frozenset[str] = frozenset()
    own: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_settings(cls, allow_targets: Iterable[str], own: Iterable[tuple[str, int]] = ()) -> TargetPolicy:
        """From ``webhooks.allow_targets`` (CIDRs and host names) and the API's bind address."""
        parsed = [_parse_allowed(entry) for entry in allow_targets]
        return cls(tuple(p for p in parsed if not isinstance(p, str)),
                   frozenset(p for p in parsed if isinstance(p, str)), tuple(own))

    def check_url(self, url: str) -> tuple[str, int]:
        """Check a URL as written; returns its ``(host, port)``. A name is checked, not resolved.

        Raises:
            UnsafeTarget: not http(s), credentials in it, no host, or a refused host/address.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise UnsafeTarget(f"url: not a valid URL ({error})") from None
        if parts.scheme not in _DEFAULT_PORTS:
            raise UnsafeTarget("url: must be an http:// or https:// URL")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise UnsafeTarget("url: credentials in the URL (user:password@) are not accepted; use the secret")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UnsafeTarget("url: names no host")
        port = port or _DEFAULT_PORTS[parts.scheme]
        address = literal_address(host)
        if address is not None:
            self.check_address(address, port)
        elif host not in self.allow_hosts:
            if host in LOCAL_NAMES or host.endswith(".localhost"):
                raise UnsafeTarget(f"url: {host} is this machine; list it in webhooks.allow_targets to allow it")
            if host in METADATA_NAMES:
                raise UnsafeTarget(f"url: {host} is a cloud metadata service")
        return host, port

    def check_address(self, address: Address, port: int, *, host: str | None = None) -> None:
        """Refuse ``address`` unless it is global or allowed (by network, or by ``host`` name).

        Raises:
            UnsafeTarget: naming the address and why.
        """
        if self._is_own(address, port):
            raise UnsafeTarget(f"url: {address} port {port} is this daemon's own API")
        if host is not None and host in self.allow_hosts:
            return
        if any(address in network for network in self.allow_networks if network.version == address.version):
            return
        why = not_public(address)
        if why is not None:
            raise UnsafeTarget(f"url: {address} is {why}; list it in webhooks.allow_targets to allow it")

    async def resolve(self, url: str) -> tuple[str, Address]:
        """The URL's host and the address to connect to, after checking every address it resolves to.

        Raises:
            UnsafeTarget: the URL, or any of its addresses, is refused.
            OSError: the name does not resolve (socket.gaierror).
        Cancellation: the lookup runs in a worker thread; cancelling abandons it.
        """
        host, port = self.check_url(url)
        literal = literal_address(host)
        if literal is not None:
            return host, literal
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        for address in addresses:
            self.check_address(address, port, host=host)
        return host, addresses[0]

    def _is_own(self, address: Address, port: int) -> bool:
        """Whether ``address:port`` may be this daemon's API: its bind address (or any loopback one)
        on its port; when it binds every interface (``0.0.0.0``) or a name, any address on its port
        (the daemon's public addresses are not known here)."""
        for own_host, own_port in self.own:
            if own_port == 0 or own_port != port:
                continue
            own = literal_address(own_host)
            if own is None or own.is_unspecified or address == own or address.is_loopback:
                return True
        return False


def target_policy(webhooks: Any, api: Any) -> TargetPolicy:
    """The node's policy from its ``[webhooks]`` and ``[api]`` settings, ``admin_notify_url`` checked
    against it (the daemon calls this when it loads its settings: a bad one is a config error).

    Raises:
        ConfigError: naming ``webhooks.admin_notify_url`` when the policy refuses it.
    """
    policy = TargetPolicy.from_settings(webhooks.allow_targets, [(api.host, api.port)])
    check_notify_url(policy, webhooks.admin_notify_url)
    return policy


def check_notify_url(policy: TargetPolicy, url: str | None) -> None:
    """Refuse an admin notification URL the webhook target rule refuses (unset passes).

    Raises:
        ConfigError: naming ``webhooks.admin_notify_url``.
    """
    if url is None:
        return
    try:
        policy.check_url(url)
    except UnsafeTarget as refused:
        raise ConfigError("webhooks.admin_notify_url", str(refused).removeprefix("url: ")) from None


def literal_address(host: str) -> Address | None:
    """``host`` as an IP address when it is one, in any form a resolver would accept; else None.

    Raises:
        UnsafeTarget: a numeric host that is no valid address (it would resolve unpredictably).
    """
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise UnsafeTarget(f"url: {host} is not a valid IPv4 address") from None
    return None


def not_public(address: Address) -> str | None:
    """Why ``address`` is not a public unicast address (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            why = not_public(embedded)
            return None if why is None else f"{why} (embedded in {address})"
    for flag, why in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                      ("is_link_local", "link-local (cloud metadata lives there)"), ("is_multicast", "multicast"),
                      ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(address, flag):
            return why
    return None if address.is_global else "not globally routable"
