"""Where the Label Studio token may go: the stack's own LabelStudioUrl, and nowhere else.

The function sends the stack's secret (as `Authorization`, or in a PAT refresh body) to this URL, so
the URL is a stack parameter that only the stack's owner sets, never an execution input
(docs/security.md). It must be `https://`, unless the stack names the one host it may reach over
plain `http` (LabelStudioHttpHost: a server inside the VPC without TLS, or the local cloud's);
it may not carry credentials (`user:pw@`), a query or a fragment; and it may not name a link-local
or unspecified address (the instance metadata services live there).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def endpoint(url: str, http_host: str = "") -> str:
    """`url` without its trailing slash, or ValueError saying which rule it breaks. The message
    never repeats the URL: it could hold a password the operator pasted."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # ValueError for a port that is not a number in range
    except ValueError as error:
        raise ValueError("is not a URL such as https://labelstudio.example.com") from error
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("must be an https:// URL such as https://labelstudio.example.com")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must not carry credentials (user:password@); the token comes from the secret")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or a fragment")
    if parts.scheme == "http" and host != http_host.strip().lower():
        raise ValueError(
            f"uses http:// for host {host!r}; runs send the token over https only, unless the stack "
            "names that host in LabelStudioHttpHost"
        )
    if _forbidden_address(host):
        raise ValueError(f"names {host}, a link-local or unspecified address, where no Label Studio runs")
    return url.strip().rstrip("/")


def _forbidden_address(host: str) -> bool:
    address = _literal_address(host.strip("[]").rstrip("."))
    if address is None:
        return False  # a name: resolved by the network the function runs in
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_link_local or address.is_unspecified or address.is_multicast


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a numeric host stands for, in every form the resolver accepts (`169.254.169.254`,
    `2852039166`, `0xa9fea9fe`, `[fe80::1]`), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None
