"""Fetching `image_url` server-side without becoming a proxy into private networks (SSRF).

Every hop (the URL and each redirect) is checked the same way: http or https only, no credentials in
the URL, the host name resolved first and *every* address it resolves to must be public unicast. The
connection then goes to the checked address (pinned), with the original name in the Host header and
for TLS (SNI and certificate verification), so DNS rebinding between check and connect cannot work.
urllib3 is used because it lets one pin the address while verifying TLS for the name
(`server_hostname`/`assert_hostname`), which http.client and requests do not offer directly.

Bounds: at most `max_redirects` hops, a connect timeout, one deadline for the whole fetch (a server
dribbling bytes is cut off), `max_bytes` (Content-Length checked first, then counted), and the body
must start like an allowed image format whatever Content-Type says.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3

from visual_search.deadline import budget, out_of_time, request_expired
from visual_search.errors import RemoteFetchFailed, RemoteFetchRefused

Resolver = Callable[[str, int], list[str]]
CHUNK = 64 * 1024
MAX_READ_WAIT_S = 1.0
# Leading bytes of the formats decode.py accepts.
IMAGE_SIGNATURES = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
# Outside ipaddress's non-global ranges, yet never an image host: AWS's IPv6 instance metadata service.
BLOCKED_NETWORKS = (ipaddress.ip_network("fd00:ec2::/32"),)


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 20 * 1024 * 1024
    connect_timeout: float = 3.0
    total_timeout: float = 10.0
    max_redirects: int = 3
    allow_private: bool = False  # local development only


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    content_type: str | None
    final_url: str


def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo, which also reads numeric spellings such as 2130706433, 0177.0.0.1 and 127.1."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise RemoteFetchFailed(f"cannot resolve host {host!r}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
        if any(ip in net for net in BLOCKED_NETWORKS):
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified


class RemoteFetcher:
    def __init__(
        self,
        limits: FetchLimits,
        resolve: Resolver = system_resolver,
        address_allowed: Callable[[str], bool] = is_public_address,
    ):
        self.limits = limits
        self._resolve = resolve
        self._address_allowed = address_allowed

    def fetch(self, url: str) -> FetchedImage:
        deadline = time.monotonic() + budget(self.limits.total_timeout)  # or the request's, if nearer
        current = url
        for _hop in range(self.limits.max_redirects + 1):
            response = self._request(current, deadline)
            try:
                location = response.headers.get("Location")
                if response.status in (301, 302, 303, 307, 308) and location:
                    current = urljoin(current, location)
                    continue
                if not 200 <= response.status < 300:
                    raise RemoteFetchFailed(f"{_host(current)} answered HTTP {response.status}")
                data = self._read_body(response, deadline)
                return FetchedImage(data, response.headers.get("Content-Type"), current)
            finally:
                response.release_conn()
        raise RemoteFetchRefused(f"more than {self.limits.max_redirects} redirects")

    def _request(self, url: str, deadline: float) -> urllib3.BaseHTTPResponse:
        scheme, host, port, target = self._check_url(url)
        address = self._checked_address(host, port)
        remaining = self._remaining(deadline)
        timeout = urllib3.Timeout(
            connect=min(self.limits.connect_timeout, remaining), read=min(MAX_READ_WAIT_S, remaining)
        )
        if scheme == "https":
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                address,
                port,
                timeout=timeout,
                retries=False,
                maxsize=1,
                server_hostname=host,
                assert_hostname=host,
                ssl_context=ssl.create_default_context(),
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
        host_header = host if ":" not in host else f"[{host}]"
        default_port = 443 if scheme == "https" else 80
        headers = {
            "Host": host_header if port == default_port else f"{host_header}:{port}",
            "User-Agent": "visual-search-fetcher/1",
            "Accept": "image/*",
            "Accept-Encoding": "identity",
        }
        try:
            return pool.urlopen(
                "GET",
                target,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
            )
        except urllib3.exceptions.TimeoutError:
            raise RemoteFetchFailed(f"{host} did not answer in time") from None
        except urllib3.exceptions.HTTPError as exc:
            raise RemoteFetchFailed(f"cannot fetch from {host}: {type(exc).__name__}") from None

    def _check_url(self, url: str) -> tuple[str, str, int, str]:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise RemoteFetchRefused("image_url is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise RemoteFetchRefused(f"image_url must be http or https, not {scheme or 'schemeless'!r}")
        if parts.username is not None or parts.password is not None:
            raise RemoteFetchRefused("image_url must not carry credentials")
        host = (parts.hostname or "").lower()
        if not host:
            raise RemoteFetchRefused("image_url has no host")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return scheme, host, port or (443 if scheme == "https" else 80), target

    def _checked_address(self, host: str, port: int) -> str:
        addresses = self._resolve(host, port)
        if not addresses:
            raise RemoteFetchFailed(f"cannot resolve host {host!r}")
        if not self.limits.allow_private:
            for address in addresses:
                try:
                    public = self._address_allowed(address)
                except ValueError:
                    public = False
                if not public:
                    raise RemoteFetchRefused(f"image_url host {host!r} is not a public address")
        return addresses[0]

    def _read_body(self, response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise RemoteFetchFailed(
                f"image is {int(declared):,} bytes; the limit is {self.limits.max_bytes:,}"
            )
        chunks, size = [], 0
        while True:
            self._remaining(deadline)
            try:
                chunk = response.read1(CHUNK)
            except (TimeoutError, urllib3.exceptions.TimeoutError):
                continue  # no byte within MAX_READ_WAIT_S; the deadline decides
            except urllib3.exceptions.HTTPError as exc:
                raise RemoteFetchFailed(f"reading the image failed: {type(exc).__name__}") from None
            if not chunk:
                break
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise RemoteFetchFailed(f"image is larger than {self.limits.max_bytes:,} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
        if not _looks_like_image(data):
            raise RemoteFetchFailed("the URL did not return an image")
        return data

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if request_expired():  # not the URL's fault: 429, try again
                raise out_of_time("fetching image_url")
            raise RemoteFetchFailed(f"fetching the image took longer than {self.limits.total_timeout:g} s")
        return remaining


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _host(url: str) -> str:
    return urlsplit(url).hostname or "the server"
