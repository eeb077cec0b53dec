"""Which destinations a tenant may name (pointscene/core/addresses.py): public unicast only, parsed strictly."""

import ipaddress

import pytest

from pointscene.core.addresses import NotAllowed, check_public, is_host_part, is_public, parse_endpoint, parse_host

NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.100.100.200",  # Alibaba metadata, carrier-grade NAT
    "100.64.0.1",
    "192.0.0.192",  # Oracle metadata
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.251",  # multicast
    "198.18.0.1",
    "::1",
    "::",
    "fe80::1",
    "fd00:ec2::254",  # AWS IPv6 metadata (ULA)
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "::a9fe:a9fe",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::808:808",  # NAT64 of a public address still reaches through a translator: refused too
    "2002:7f00:1::1",  # 6to4
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_it_refuses_every_address_that_is_not_public_unicast(address):
    assert is_public(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", PUBLIC)
def test_it_accepts_public_unicast_addresses(address):
    assert is_public(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize(
    "value",
    [
        "127.1",  # inet_aton spellings Go, glibc and browsers read as 127.0.0.1
        "0x7f.0.0.1",
        "0177.0.0.1",
        "2130706433",
        "127.0.0.1.",
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "minio.local",
        "metadata.google.internal",
        "router.lan",
        "printer.home.arpa",
        "intranet",  # a single label resolves through the search domain
        "fe80::1%eth0",  # a zone id only means something on this machine
        "[fe80::1%25eth0]",
        "exa mple.com",
        "example.com/#",
        "a@b.com",
        "",
    ],
)
def test_it_refuses_hosts_that_do_not_parse_strictly_or_are_local_names(value):
    with pytest.raises(NotAllowed, match="^destination not allowed$"):
        check_public(parse_host(value))


@pytest.mark.parametrize(
    "value",
    [
        "http://127.0.0.1:9000",
        "https://[::127.0.0.1]/",
        "https://[::ffff:7f00:1]:443",
        "fd00:ec2::254",
        "fe80::1",
        "[::1]:22",
        "http://user:pw@example.com/",  # user info hides the host from naive parsers
        "http://example.com@127.0.0.1/",
        "http://example.com:99999/",
        "http://example.com:-1/",
        "ftp://example.com/",
        "gopher://example.com/",
        "http://fd00::1/",  # an unbracketed IPv6 address in a URL
        "http:\\\\127.0.0.1\\",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_it_refuses_endpoints_that_name_this_machine_or_hide_their_host(value):
    with pytest.raises(NotAllowed):
        check_public(parse_endpoint(value))


@pytest.mark.parametrize(
    ("value", "name", "address", "port"),
    [
        ("https://s3.eu-north-1.amazonaws.com", "s3.eu-north-1.amazonaws.com", None, None),
        ("s3.example.com:9000", "s3.example.com", None, 9000),
        ("http://93.184.215.14:9000/bucket", "", "93.184.215.14", 9000),
        ("https://[2606:4700::1111]/", "", "2606:4700::1111", None),
        ("2606:4700::1111", "", "2606:4700::1111", None),
        ("sftp.example.com", "sftp.example.com", None, None),
        ("_dmarc.example.com", "_dmarc.example.com", None, None),
    ],
)
def test_it_reads_public_endpoints(value, name, address, port):
    host = check_public(parse_endpoint(value))

    assert (host.name, str(host.address) if host.address else None, host.port) == (name, address, port)


@pytest.mark.parametrize("value", ["eu", "com.au", "mystorageacct", "us-east-1", "myfiles-01"])
def test_it_accepts_host_name_fragments(value):
    assert is_host_part(value)


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1:8080/#",
        "com@127.0.0.1:80/#",
        "169.254.169.254/#",
        "a/b",
        "a#b",
        "a?b",
        "a:1",
        "-a",
        "a..b",
        "1.2.3.4",
    ],
)
def test_it_refuses_host_name_fragments_that_would_change_the_host(value):
    assert not is_host_part(value)
