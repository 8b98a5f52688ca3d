"""The URL import's guard (avenue/urlfetch.py) one address form at a time, its URL checks, and
the pinned connection it makes (avenue/outbound.py): no app, no database."""

from __future__ import annotations

import http.client
import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avenue import outbound
from avenue.urlfetch import (
    FetchRefused,
    Policy,
    _filename,
    checked_addresses,
    embedded_ipv4,
    fetch_image,
    forbidden,
    parse_hosts,
    parse_networks,
    parse_ports,
    parse_url,
)
from tests.helpers import image_bytes
from tests.support.imageserver import ImageServer

PHOTO = image_bytes("good/progressive.jpg")
ANY_PORT = Policy(max_bytes=10 * 1024 * 1024, seconds=30, ports=frozenset())

# Each address form that must be refused, and a word of the reason it is refused for.
REFUSED = [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("100.64.0.1", "CGNAT"), ("100.127.255.254", "CGNAT"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("255.255.255.255", "broadcast"), ("240.0.0.1", "private"),
    ("fd00::1", "unique local"), ("fc00::1", "unique local"), ("fd00:ec2::254", "unique local"),
    ("fec0::1", "site-local"),
    ("192.0.2.1", "private"), ("198.18.0.1", "private"),
    # IPv6 forms that embed a forbidden IPv4 address
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("::127.0.0.1", "embeds 127.0.0.1"), ("::a00:1", "embeds 10.0.0.1"),
    ("2002:7f00:1::1", "embeds 127.0.0.1"), ("2002:a9fe:a9fe::", "embeds 169.254.169.254"),
    ("64:ff9b::7f00:1", "embeds 127.0.0.1"), ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254"),
    ("64:ff9b:1:7f00:0:100::", "local-use NAT64"), ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("64:ff9b:1::808:808", "local-use NAT64"),
    # Teredo: the client is the last 32 bits inverted (80ff:fffe is 127.0.0.1)
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "embeds 127.0.0.1"),
    ("2001:0:7f00:1::", "embeds 127.0.0.1"),
]
ALLOWED = ["8.8.8.8", "93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "100.128.0.1",
           "100.63.255.255"]


@pytest.mark.parametrize(("text", "reason"), REFUSED, ids=[text for text, _ in REFUSED])
def test_each_non_public_address_form_is_refused_with_its_reason(text, reason):
    found = forbidden(ipaddress.ip_address(text))
    assert found is not None and reason in found, found


@pytest.mark.parametrize("text", ALLOWED)
def test_public_addresses_are_allowed(text):
    assert forbidden(ipaddress.ip_address(text)) is None


def test_the_embedded_ipv4_of_each_ipv6_form_is_extracted():
    def embedded(text):
        return [str(address) for address in embedded_ipv4(ipaddress.IPv6Address(text))]

    assert embedded("::ffff:1.2.3.4") == ["1.2.3.4"]
    assert embedded("::1.2.3.4") == ["1.2.3.4"]
    assert embedded("2002:102:304::5") == ["1.2.3.4"]
    assert embedded("64:ff9b::102:304") == ["1.2.3.4"]
    assert "1.2.3.4" in embedded("64:ff9b:1:102:3:400::")
    assert embedded("2001:0:4136:e378:8000:63bf:fefd:fcfb") == ["65.54.227.120", "1.2.3.4"]
    assert embedded("::1") == [] and embedded("::") == [] and embedded("2606:4700::1") == []


def test_a_trusted_network_lets_its_addresses_through_and_only_them():
    trusted = parse_networks(["127.0.0.1/32", "10.20.0.0/16"])
    assert forbidden(ipaddress.ip_address("127.0.0.1"), trusted) is None
    assert forbidden(ipaddress.ip_address("::ffff:127.0.0.1"), trusted) is None
    assert forbidden(ipaddress.ip_address("10.20.3.4"), trusted) is None
    assert forbidden(ipaddress.ip_address("127.0.0.2"), trusted) == "loopback"
    assert forbidden(ipaddress.ip_address("10.21.0.1"), trusted) == "private"
    with pytest.raises(ValueError, match="not an address"):
        parse_networks(["10.0.0.0/33"])


# Spellings of 127.0.0.1 (and of other non-public addresses) the resolver turns into one.
NUMERIC_HOSTS = ["http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/", "http://127.1/",
                 "http://0x7f000001/", "http://017700000001/", "http://127.0.0.1./", "http://[::1]/",
                 "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://0/", "http://[::]/",
                 "http://169.254.169.254/latest/meta-data/", "http://[64:ff9b::a9fe:a9fe]/",
                 "http://[2002:a9fe:a9fe::1]/", "http://LOCALHOST/", "http://localhost./"]


@pytest.mark.parametrize("url", NUMERIC_HOSTS)
def test_every_spelling_of_a_non_public_address_is_checked_as_the_address_it_becomes(url):
    target = parse_url(url, ANY_PORT)
    with pytest.raises(FetchRefused) as refused:
        checked_addresses(target, ANY_PORT, outbound.Deadline(30))
    assert refused.value.code == "forbidden_address" and refused.value.status == 422


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://example.com/a.jpg", "http and https"), ("file:///etc/passwd", "http and https"),
    ("gopher://example.com/", "http and https"), ("javascript:alert(1)", "http and https"),
    ("//example.com/a.jpg", "http and https"), ("example.com/a.jpg", "http and https"),
    ("http://user:pass@example.com/a.jpg", "user:password@"), ("http://user@example.com/", "user:password@"),
    ("http://example.com@127.0.0.1/", "user:password@"),
    ("http://[fe80::1%25eth0]/", "zone id"), ("http://example.com:99999/", "port"),
    ("http://example.com:0/", "port"), ("http://[::1", "malformed"),
    ("http://example.com:8080/a.jpg", "Port 8080"), ("http:///a.jpg", "no host"),
    ("http://exa mple.com/", "space"), ("http://example.com/a\nb", "control"),
    ("http://example.com/a b", "space"), ("", "url"),
    ("http://" + "a" * 2100 + ".com/", "longer"), ("http://ex\\ample.com/", "backslash"),
])
def test_urls_that_are_not_fetched_are_refused_bad_url(url, words):
    with pytest.raises(FetchRefused) as refused:
        parse_url(url, Policy(max_bytes=1))
    assert refused.value.code == "bad_url" and refused.value.status == 400
    assert words in refused.value.message


URLISH = st.builds("{}://{}{}{}".format, st.sampled_from(["http", "https", "HTTP", "ftp", "", "http:"]),
                   st.text(alphabet="[]:%@.0123456789abcdefx-_~\\/ \u00e4\u3002", max_size=30),
                   st.sampled_from(["", ":80", ":0", ":-1", ":65536", ":8o", "]"]),
                   st.text(max_size=20))


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(url=st.one_of(st.text(max_size=60), URLISH))
def test_any_text_is_a_target_or_a_refusal_never_another_error(url):
    try:
        target = parse_url(url, ANY_PORT)
    except FetchRefused as refused:
        assert refused.code in ("bad_url", "host_not_allowed") and refused.message
    else:
        assert target.scheme in ("http", "https") and target.host and 0 < target.port < 65536
        assert target.path.startswith("/") and target.path.isascii()


def test_a_url_that_is_not_a_string_is_bad_url():
    for value in (None, 12, ["http://example.com/"], {"url": "x"}):
        with pytest.raises(FetchRefused) as refused:
            parse_url(value, Policy(max_bytes=1))
        assert refused.value.code == "bad_url"


def test_the_allow_list_names_hosts_exactly_or_by_suffix():
    hosts = parse_hosts(["cdn.supplier.example", "*.photos.example", " .Img.Test "])
    policy = Policy(max_bytes=1, hosts=hosts)
    assert policy.hosts == ("cdn.supplier.example", ".photos.example", ".img.test")
    for url in ("https://cdn.supplier.example/a.jpg", "https://a.photos.example/x", "http://b.c.img.test/"):
        assert parse_url(url, policy).host
    for url in ("https://supplier.example/a.jpg", "https://evilcdn.supplier.example/", "https://photos.example/",
                "https://xphotos.example/", "https://cdn.supplier.example.evil.test/"):
        with pytest.raises(FetchRefused) as refused:
            parse_url(url, policy)
        assert refused.value.code == "host_not_allowed" and refused.value.status == 422


def filename_of(url: str) -> str:
    return _filename(parse_url(url, ANY_PORT))


def test_the_file_name_is_the_paths_last_part_decoded_and_never_a_path():
    assert filename_of("https://x.example/photos/lamp%20red.jpg?size=2") == "lamp red.jpg"
    assert filename_of("https://x.example/a/..%2F..%2Fetc%2Fpasswd") == "passwd"
    assert filename_of("https://x.example/a%5Cb%5Cc.png") == "c.png"
    assert filename_of("https://x.example/a%0d%0ab.jpg") == "ab.jpg"
    assert filename_of("https://x.example/") == filename_of("https://x.example") == "image"
    assert len(filename_of("https://x.example/" + "n" * 500 + ".jpg")) == 200


def test_the_ports_setting_reads_a_list_and_refuses_anything_else():
    assert parse_ports("80, 443") == {80, 443} and parse_ports("") == frozenset()
    for bad in ("http", "0", "70000", "80;443"):
        with pytest.raises(ValueError):
            parse_ports(bad)


def test_parse_url_keeps_the_target_as_the_connection_sends_it():
    target = parse_url("HTTPS://Cdn.Example.COM/a%20b/ä.jpg?x=1&y=é#frag", Policy(max_bytes=1))
    assert (target.scheme, target.host, target.port) == ("https", "cdn.example.com", 443)
    assert target.path == "/a%20b/%C3%A4.jpg?x=1&y=%C3%A9"
    assert parse_url("http://[2606:4700::1]:80/", Policy(max_bytes=1)).host == "2606:4700::1"
    assert parse_url("http://bücher.example/", Policy(max_bytes=1)).host == "xn--bcher-kva.example"


# --- the pinned connection ---------------------------------------------------------------------


@pytest.fixture
def server():
    running = ImageServer()
    yield running
    running.close()


def test_a_pinned_request_connects_to_the_address_given_and_names_the_host(server):
    """The host does not resolve at all: only the pinned address can have been connected to."""
    server.serve("/a.jpg", body=PHOTO, headers={"Content-Type": "image/jpeg"})
    with outbound.pinned("http", "images.invalid", server.port, "/a.jpg", addresses=["127.0.0.1"],
                         deadline=outbound.Deadline(30)) as response:
        assert response.status == 200
        assert outbound.read_capped(response, len(PHOTO)) == PHOTO
    assert server.requests == [("/a.jpg", f"images.invalid:{server.port}")]


def test_a_pinned_request_tries_the_next_checked_address_when_one_refuses_the_connection(server):
    server.serve("/a.jpg", body=PHOTO)
    with outbound.pinned("http", "images.invalid", server.port, "/a.jpg",
                         addresses=["127.0.0.2", "127.0.0.1"], deadline=outbound.Deadline(30)) as response:
        assert response.status == 200
    assert server.paths() == ["/a.jpg"]


def test_read_capped_refuses_a_declared_length_before_reading_and_a_longer_body_while_reading(server):
    server.serve("/declared", body=PHOTO)
    server.serve("/undeclared", body=PHOTO, content_length=-1)
    for path in ("/declared", "/undeclared"):
        with outbound.pinned("http", "x.invalid", server.port, path, addresses=["127.0.0.1"],
                             deadline=outbound.Deadline(30)) as response:
            with pytest.raises(outbound.BodyTooLarge):
                outbound.read_capped(response, len(PHOTO) - 1)


def test_read_capped_refuses_a_body_cut_short_of_its_content_length(server):
    server.serve("/cut", body=PHOTO[:1000], content_length=len(PHOTO))
    with outbound.pinned("http", "x.invalid", server.port, "/cut", addresses=["127.0.0.1"],
                         deadline=outbound.Deadline(30)) as response:
        with pytest.raises(http.client.IncompleteRead):
            outbound.read_capped(response, len(PHOTO))


def test_read_capped_reads_a_content_length_that_is_no_number_as_none(server):
    """"\u00b2" (the byte 0xB2, read as Latin-1) passes str.isdigit and fails int(): it was a
    ValueError out of read_capped; now the body is read, and capped, as if no length was sent."""
    server.serve("/odd", body=PHOTO, content_length=-1, headers={"Content-Length": "\u00b2"})
    for limit, refused in ((len(PHOTO), False), (len(PHOTO) - 1, True)):
        with outbound.pinned("http", "x.invalid", server.port, "/odd", addresses=["127.0.0.1"],
                             deadline=outbound.Deadline(30)) as response:
            if refused:
                with pytest.raises(outbound.BodyTooLarge):
                    outbound.read_capped(response, limit)
            else:
                assert outbound.read_capped(response, limit) == PHOTO


def test_fetch_image_refuses_loopback_without_trust_and_fetches_it_with(server):
    url = server.serve("/a.jpg", body=PHOTO, headers={"Content-Type": "image/jpeg"})
    with pytest.raises(FetchRefused) as refused:
        fetch_image(url, ANY_PORT)
    assert refused.value.code == "forbidden_address" and "loopback" in refused.value.message
    assert server.requests == []
    trusted = Policy(max_bytes=len(PHOTO), seconds=30, ports=frozenset(),
                     networks=parse_networks(["127.0.0.1"]))
    fetched = fetch_image(url, trusted)
    assert (fetched.data, fetched.filename, fetched.content_type) == (PHOTO, "a.jpg", "image/jpeg")


# --- HTTPS: the certificate is checked for the name, while the connection is pinned ------------


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """An HTTPS server whose certificate names images.test (self-signed, made by openssl), the
    names its clients asked for (SNI), and pinned requests trusting that certificate."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=images.test", "-addext", "subjectAltName=DNS:images.test"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    monkeypatch.setattr(outbound, "tls_context", lambda: ssl.create_default_context(cafile=str(cert)))
    real_lookup = socket.getaddrinfo

    def lookup(host, port, *args, **kwargs):  # both names are this machine
        local = host in ("images.test", "other.test")
        return real_lookup("127.0.0.1" if local else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    running = ImageServer(tls=context)
    running.names = names
    yield running
    running.close()


def test_https_is_pinned_yet_sends_the_name_and_checks_the_certificate_for_it(tls_server):
    tls_server.serve("/a.jpg", body=PHOTO, headers={"Content-Type": "image/jpeg"})
    trusted = Policy(max_bytes=len(PHOTO), seconds=30, ports=frozenset(),
                     networks=parse_networks(["127.0.0.1"]))
    fetched = fetch_image(tls_server.url("/a.jpg", host="images.test"), trusted)
    assert fetched.data == PHOTO and tls_server.names == ["images.test"]
    assert tls_server.requests == [("/a.jpg", f"images.test:{tls_server.port}")]
    # Another name at the same address: its certificate does not name it, so nothing is fetched.
    with pytest.raises(FetchRefused) as refused:
        fetch_image(tls_server.url("/a.jpg", host="other.test"), trusted)
    assert refused.value.code == "fetch_failed" and "TLS" in refused.value.message
    assert len(tls_server.requests) == 1
