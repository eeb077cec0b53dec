"""Which network destinations a tenant's config or workflow may name, decided by allowlist.

A destination is allowed when it is a public unicast address, or a DNS name whose addresses, resolved at connect
time, all are (pointscene.core.egress). Anything that does not parse strictly is refused: an address spelled in a
way only some parsers understand ("127.1", "0x7f.0.0.1", "[::127.0.0.1]", a bare "fe80::1%eth0") is exactly how
filters get bypassed, so such spellings are not guessed at, they are refused.
"""

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that carry an IPv4 address a relay or translator would reach (so the IPv4 address decides, and we do
# not try: refused), plus ranges Python's is_global does not exclude on every supported version.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "::/96",  # IPv4-compatible (deprecated): ::127.0.0.1
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # local-use NAT64
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
        "100.64.0.0/10",  # carrier-grade NAT (cloud metadata services live here, e.g. 100.100.100.200)
        "192.0.0.0/24",  # IETF protocol assignments (e.g. Oracle Cloud metadata 192.0.0.192)
        "192.88.99.0/24",  # 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "5f00::/16",  # segment routing
        "2001:20::/28",  # ORCHIDv2
        "3fff::/20",  # documentation
    )
)

# A DNS name: letters, digits, hyphens (and underscores, which real service names use) in dot-separated labels.
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_NAME = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(\.{_LABEL})*\.?$")
# Names that are this machine or its private network by convention, refused without asking DNS.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan", ".localdomain", ".intranet", ".corp")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
# A host-name fragment (a region, an account, a site) that rclone pastes into a host name.
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_PART = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*$")


def is_public(address: Address) -> bool:
    """Whether connecting to this address could only reach the public internet."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.scope_id:
            return False
    if any(address in network for network in _NOT_PUBLIC if network.version == address.version):
        return False
    return address.is_global and not address.is_multicast and not address.is_reserved


class NotAllowed(ValueError):
    """The destination is not one a tenant may name. Its text is the same whatever the reason."""

    def __init__(self) -> None:
        super().__init__("destination not allowed")


@dataclass(frozen=True)
class Host:
    """A parsed destination host: exactly one of `address` (a literal) or `name` (to be resolved at connect time)."""

    name: str = ""
    address: Address | None = None
    port: int | None = None


def parse_host(value: str) -> Host:
    """A host as rclone and HTTP clients take it: an IP literal (IPv6 with or without brackets), or a DNS name.
    Raises NotAllowed for anything else, for names that are local by convention, and for numeric names."""
    text = value.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:  # zone ids (fe80::1%eth0) only mean something on this machine
        raise NotAllowed()
    try:
        return Host(address=ipaddress.ip_address(text))
    except ValueError:
        pass
    if not _NAME.match(text):
        raise NotAllowed()
    bare = text.rstrip(".")
    last = bare.rsplit(".", 1)[-1]
    # A last label of digits or hex is an IPv4 address in another spelling to WHATWG, glibc or Go ("127.1").
    if last.isdigit() or re.fullmatch(r"0x[0-9a-f]*", last):
        raise NotAllowed()
    if bare in _LOCAL_NAMES or bare.endswith(_LOCAL_SUFFIXES) or "." not in bare:
        raise NotAllowed()
    return Host(name=bare)


def parse_endpoint(value: str, schemes: tuple[str, ...] = ("http", "https")) -> Host:
    """A URL (scheme://host[:port][/path]) or host[:port], strictly: no user info, a numeric port in range."""
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in schemes:
            raise NotAllowed()
        netloc = parts.netloc
    else:
        netloc = text.split("/", 1)[0]
    if "@" in netloc or "\\" in netloc or not netloc:
        raise NotAllowed()
    host, port = netloc, None
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise NotAllowed()
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if rest:
            port = _port(rest)
    elif netloc.count(":") == 1:
        host, port_text = netloc.split(":")
        port = _port(":" + port_text)
    elif netloc.count(":") > 1 and "://" in text:
        raise NotAllowed()  # an unbracketed IPv6 address in a URL
    parsed = parse_host(host)
    return Host(name=parsed.name, address=parsed.address, port=port)


def _port(text: str) -> int:
    if not re.fullmatch(r":[0-9]{1,5}", text) or not 0 < int(text[1:]) < 65536:
        raise NotAllowed()
    return int(text[1:])


def check_public(host: Host) -> Host:
    """The host, if a literal address is public; names pass (they are checked where they are resolved)."""
    if host.address is not None and not is_public(host.address):
        raise NotAllowed()
    return host


def is_host_part(value: str) -> bool:
    """Whether a value is safe to paste into a host name: DNS labels only, no ':', '/', '@', '#' or '?'."""
    return bool(_HOST_PART.match(value)) and not value.replace(".", "").isdigit()
