"""Where a fetch may connect, checked at connect time, and a deadline no read can outlive.

Every outbound connection of the fetcher goes through :class:`GuardedBackend`, an httpcore
network backend. For each connection (the first request and every redirect hop) it

1. refuses ambiguous numeric host names (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) that
   resolvers read as IP addresses in surprising ways;
2. resolves the name and checks **every** address: only globally routable unicast addresses
   pass, unless an address lies in a network the operator allowed explicitly
   (``AddressPolicy.allow``, e.g. an intranet or, in tests, ``127.0.0.1/32``); IPv4 addresses
   embedded in IPv6 (``::ffff:a.b.c.d``, 6to4, NAT64) are checked as IPv4;
3. connects to a checked address itself, so a name that resolves differently a moment
   later (DNS rebinding) cannot redirect the connection. TLS still verifies the certificate
   against the name (SNI and ``Host`` use the name).

Every stream it returns clamps each read and write timeout to what is left of the fetch's
total deadline, so a server dripping one byte a second is cut off at the deadline.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import httpcore

from generator.errors import SocdefError

__all__ = ["AddressPolicy", "GuardedBackend", "TargetRefused", "system_resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_RESOLVERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="socdef-dns")


class TargetRefused(SocdefError, OSError):
    """The target is not a public address (or an explicitly allowed one)."""


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``, in its order, deduplicated."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses a fetch may reach: public unicast, plus networks allowed explicitly."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> AddressPolicy:
        """Build a policy from CIDR strings; raise ``ValueError`` naming a bad one."""
        parsed = []
        for net in networks:
            try:
                parsed.append(ipaddress.ip_network(net.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"not a network: {net!r} (expected CIDR, e.g. 10.0.0.0/8)"
                ) from None
        return cls(tuple(parsed))

    def permits(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            return False  # a zone id names a local interface
        if any(ip.version == net.version and ip in net for net in self.allow):
            return True
        inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        if inner is not None:
            return self.permits(inner)
        return _public(ip)

    def check_host(self, host: str) -> IPAddress | None:
        """Refuse a literal address the policy forbids or an ambiguous numeric name.

        Returns the address for an IP literal, None for a name (which must be resolved).
        """
        bare = host.strip("[]").lower().rstrip(".")
        try:
            ip = ipaddress.ip_address(bare)
        except ValueError:
            if all(_NUMERIC_LABEL.match(label) for label in bare.split(".")):
                raise TargetRefused(f"refused: ambiguous numeric host {host!r}") from None
            return None
        if not self.permits(ip):
            raise TargetRefused(f"refused: {ip} is not a public address")
        return ip

    def vet(self, host: str, port: int, resolve: Resolver, timeout: float) -> list[str]:
        """The addresses to connect to for ``host``; raise TargetRefused if any is forbidden."""
        literal = self.check_host(host)
        if literal is not None:
            return [str(literal)]
        try:
            found = _RESOLVERS.submit(resolve, host, port).result(timeout=max(timeout, 0.001))
        except FutureTimeout:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not found:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        for address in found:
            if not self.permits(ipaddress.ip_address(address)):
                raise TargetRefused(f"refused: {host} resolves to {address}, not a public address")
        return found


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the fetch's total deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _budget(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("total deadline exceeded")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        budget = self._budget(timeout, httpcore.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, budget)
        return DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Resolve, vet every address, connect to a vetted one; streams obey the deadline."""

    def __init__(
        self,
        policy: AddressPolicy,
        deadline: float,
        *,
        resolve: Resolver = system_resolve,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.deadline = deadline
        self.resolve = resolve
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in self.policy.vet(host, port, self.resolve, self._budget(timeout)):
            try:
                stream = self.inner.connect_tcp(
                    address, port, self._budget(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return DeadlineStream(stream, self.deadline)
        raise failure or httpcore.ConnectError(f"cannot connect to {host}")

    def _budget(self, timeout: float | None) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("total deadline exceeded")
        return left if timeout is None else min(timeout, left)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise TargetRefused("refused: unix sockets are not fetch targets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
