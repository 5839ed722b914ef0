"""TargetPolicy: no webhook may reach a non-public address unless allow-listed."""

from __future__ import annotations

import ipaddress

import pytest

from notifier.core.targets import TargetPolicy, TargetRefused

REFUSED = [
    "127.0.0.1",  # loopback
    "127.8.9.10",
    "::1",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "fc00::1",  # unique local
    "169.254.169.254",  # link-local (cloud metadata)
    "fe80::1",
    "::ffff:127.0.0.1",  # IPv4-mapped IPv6 loopback
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "0.0.0.0",  # unspecified
    "::",
    "224.0.0.1",  # multicast
    "ff02::1",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "100.100.100.200",  # shared address space (Alibaba Cloud metadata)
    "100.64.0.1",
    "192.0.2.1",  # documentation (TEST-NET-1)
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(TargetRefused) as info:
        TargetPolicy().check("hooks.example", address)
    message = str(info.value)
    assert "hooks.example" in message
    assert "NOTIFIER_ALLOWED_NETWORKS" in message


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    TargetPolicy().check("hooks.example", address)


def test_refusal_names_the_unwrapped_ipv4_address() -> None:
    with pytest.raises(TargetRefused, match=r"resolves to 127\.0\.0\.1,"):
        TargetPolicy().check("h", "::ffff:127.0.0.1")


def test_allow_listed_networks_are_allowed() -> None:
    policy = TargetPolicy.from_strings(["10.20.0.0/16", " 127.0.0.1/32 ", "", "fd00::/8"])
    assert policy.allowed_networks == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("fd00::/8"),
    )
    for address in ("10.20.3.4", "127.0.0.1", "::ffff:127.0.0.1", "fd12::1"):
        policy.check("h", address)
    for address in ("10.21.0.1", "127.0.0.2", "::1", "fc00::1"):
        with pytest.raises(TargetRefused):
            policy.check("h", address)


def test_from_strings_accepts_host_bits() -> None:
    policy = TargetPolicy.from_strings(["192.168.1.7/24"])
    policy.check("h", "192.168.1.200")


def test_from_strings_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        TargetPolicy.from_strings(["not-a-network"])


def test_check_rejects_a_non_address() -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        TargetPolicy().check("h", "localhost")
