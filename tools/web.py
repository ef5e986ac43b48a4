"""``http_get``: fetch a public web page for an agent, refusing anything that could reach inside the network.

Rules, checked on every hop (redirects are followed by hand, at most ``max_redirects``):

- the scheme must be ``https`` (``http``, ``file``, ``ftp``, ... are refused);
- the host is resolved once here, and *every* address it resolves to must be public (not private, loopback,
  link-local -- which covers the 169.254.169.254 cloud metadata service --, shared, multicast, reserved or
  unspecified; IPv4-mapped IPv6 addresses are checked as IPv4);
- the connection goes to the checked address itself (the URL's host is replaced by the IP, with ``Host`` and
  TLS SNI set to the name), so a second DNS answer cannot swap in a private address (DNS rebinding);
- proxies from the environment are ignored; the body is read up to ``max_bytes`` and cut there; the whole
  fetch, redirects included, must finish within ``timeout`` seconds.

The tool is off unless a profile lists ``http_get`` in its ``tools``. Must not import LangChain.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agents.errors import ToolError, ToolRefused
from tools.base import Action

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def is_public_address(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver returns for ``host``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"cannot resolve {host!r}: {exc.strerror}") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    status: int
    content_type: str
    text: str
    truncated: bool


class HttpFetcher:
    """GET with the SSRF rules of the module docstring. ``allow_address``, ``schemes`` and ``resolver`` exist so
    tests can admit exactly one loopback test server; production code keeps the defaults."""

    def __init__(
        self,
        *,
        max_bytes: int = 262_144,
        timeout: float = 10.0,
        max_redirects: int = 3,
        allow_address: Callable[[IPAddress], bool] = is_public_address,
        schemes: Collection[str] = ("https",),
        resolver: Resolver = system_resolver,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._allow = allow_address
        self._schemes = frozenset(schemes)
        self._resolve = resolver

    def get(self, url: str) -> FetchResult:
        deadline = time.monotonic() + self.timeout
        current = self._parse(url)
        with httpx.Client(follow_redirects=False, trust_env=False, verify=True) as client:
            for _hop in range(self.max_redirects + 1):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ToolError(f"fetching {url} took longer than {self.timeout:g} seconds")
                result, location = self._fetch_once(client, current, remaining)
                if location is None:
                    return result
                current = self._parse(str(current.join(location)))
        raise ToolRefused(f"{url} redirected more than {self.max_redirects} times")

    def _parse(self, url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ToolRefused(f"not a valid URL: {url!r} ({exc})") from None
        if parsed.scheme not in self._schemes:
            allowed = ", ".join(sorted(self._schemes))
            raise ToolRefused(f"scheme {parsed.scheme or '(none)'!r} is not allowed in {url!r}; allowed: {allowed}")
        if not parsed.host:
            raise ToolRefused(f"no host in {url!r}")
        return parsed

    def _address(self, url: httpx.URL) -> IPAddress:
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = self._resolve(host, port)
        if not addresses:
            raise ToolError(f"{host!r} resolved to no address")
        for ip in addresses:
            if not self._allow(ip):
                raise ToolRefused(f"{host!r} resolves to {ip}, which is not a public address")
        return addresses[0]

    def _fetch_once(self, client: httpx.Client, url: httpx.URL, timeout: float) -> tuple[FetchResult, str | None]:
        ip = self._address(url)
        pinned = url.copy_with(host=str(ip))
        host_header = url.host if url.port is None else f"{url.host}:{url.port}"
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        request = client.build_request(
            "GET",
            pinned,
            headers={"Host": host_header, "Accept": "text/*, application/json;q=0.9, */*;q=0.1"},
            timeout=httpx.Timeout(timeout),
            extensions=extensions,
        )
        try:
            response = client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    return FetchResult(str(url), response.status_code, "", "", False), response.headers["location"]
                body = bytearray()
                truncated = False
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        del body[self.max_bytes :]
                        truncated = True
                        break
            finally:
                response.close()
        except httpx.TimeoutException:
            raise ToolError(f"{url} did not answer within {timeout:.1f} seconds") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"fetching {url} failed: {exc}") from None
        charset = response.charset_encoding or "utf-8"
        try:
            text = body.decode(charset, errors="replace")
        except LookupError:
            text = body.decode("utf-8", errors="replace")
        content_type = response.headers.get("content-type", "")
        return FetchResult(str(url), response.status_code, content_type, text, truncated), None


class HttpGetArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="an https:// URL of a public web page")


def http_get_action(fetcher: HttpFetcher) -> Action[HttpGetArgs]:
    """``http_get`` using ``fetcher``."""

    def http_get(args: HttpGetArgs) -> str:
        result = fetcher.get(args.url)
        cut = f"\n[cut at {fetcher.max_bytes} bytes]" if result.truncated else ""
        return f"HTTP {result.status} {result.content_type}\n{result.text}{cut}"

    return Action(
        "http_get",
        "Fetch a public https:// web page and return its text (size-capped; private addresses are refused).",
        HttpGetArgs,
        http_get,
    )
