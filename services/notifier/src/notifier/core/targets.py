"""Outbound target policy: no connection to loopback, private, link-local or any other
non-global address unless allow-listed (no SSRF through a receiver's URL or smarthost).

The check runs on the socket address about to be connected to (``channels/safe_http``),
whatever form the host was written in (a name, ``2130706433``, ``0177.0.0.1``,
``[::ffff:127.0.0.1]``) and after every DNS answer, so there is no DNS-rebinding window.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to: mapped, 6to4, Teredo, NAT64."""
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    if ip in _NAT64:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


class TargetRefused(ValueError):
    """The destination resolves to an address the policy does not allow."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> TargetPolicy:
        return cls(
            tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip())
        )

    def check(self, host: str, address: str) -> None:
        ip: IPAddress = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed_networks):
            return
        leads_to: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            leads_to.extend(_embedded_ipv4(ip))
        for candidate in leads_to:
            if _non_public(candidate):
                where = f"{ip} is" if host in (address, str(ip)) else f"{host} resolves to {ip},"
                raise TargetRefused(
                    f"{where} a non-public address; allow-list it in "
                    "NOTIFIER_ALLOWED_NETWORKS to deliver there"
                )


def _non_public(ip: IPAddress) -> bool:
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        # Neither private nor public, e.g. 100.64.0.0/10 (shared address space, where
        # Alibaba Cloud's metadata service 100.100.100.200 lives).
        or not ip.is_global
    )
