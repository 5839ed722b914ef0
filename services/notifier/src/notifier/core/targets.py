"""Outbound target policy: no requests to loopback, private or link-local addresses
unless allow-listed (no SSRF through a webhook URL).

The check runs on resolved addresses, inside the HTTP client's resolver, so the address
connected to is the address checked (no DNS-rebinding window).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed_networks):
            return
        if (
            ip.is_loopback
            or ip.is_private
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
            # Neither private nor public, e.g. 100.64.0.0/10 (shared address space, where
            # Alibaba Cloud's metadata service 100.100.100.200 lives).
            or not ip.is_global
        ):
            raise TargetRefused(
                f"{host} resolves to {ip}, a non-public address; allow-list it in "
                "NOTIFIER_ALLOWED_NETWORKS to deliver there"
            )
