"""One webhook try over HTTP: the notifier's outbound adapter.

Before each try the URL is checked again and its host resolved once, every address it
resolves to checked (``jobkit.webhooks.addresses``); the request then goes to those
addresses (the next one only if the one before took no connection), never to a second
lookup of the name (DNS rebinding). The name still rules TLS: it is the SNI and the name
the certificate must carry, and ``Host`` names it.

No redirect is followed (a 3xx is a failed try), no proxy comes from the environment,
nothing of the response is read past its status line and headers (which httpcore bounds at
100 KiB), a connection is never reused (one checked address, one try), and a try has
``timeout_s`` in all, ``connect_timeout_s`` of it for each of resolving and connecting.
Nothing of the URL but its host is ever logged: its path and query may hold a secret.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from jobkit import webhooks
from jobkit.errors import InvalidArgument
from services.notifier.webhooks import Signer, TryResult

USER_AGENT = "durable-jobs-webhooks/1"


class Sender:
    def __init__(
        self,
        signer: Signer,
        allow_hosts: frozenset[str],
        *,
        timeout_s: float,
        connect_timeout_s: float,
        resolve: webhooks.Resolve = webhooks.system_resolve,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._signer = signer
        self._allow_hosts = allow_hosts
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._resolve = resolve
        self._clock = clock
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, url: str, webhook_id: str, body: bytes) -> TryResult:
        """POST ``body`` to ``url``, signed, once."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._send(url, webhook_id, body)
        except TimeoutError:
            return TryResult(error="timeout")

    async def _send(self, url: str, webhook_id: str, body: bytes) -> TryResult:
        try:
            target = webhooks.parse_url(url, self._allow_hosts)
        except InvalidArgument:
            # Allowed when the job was created, not now (WEBHOOK_ALLOW_HOSTS changed).
            return TryResult(error="refused")
        try:
            found = await webhooks.addresses(target, self._resolve, self._connect_timeout_s)
        except webhooks.Refused:
            return TryResult(error="refused")
        except webhooks.Unresolvable:
            return TryResult(error="dns")
        headers = {
            "host": target.authority,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **self._signer.headers(webhook_id, self._clock(), body),
        }
        # TLS to a name: its SNI and its certificate's, over the address checked.
        extensions = (
            {"sni_hostname": target.host}
            if target.scheme == "https" and target.literal is None
            else {}
        )
        result = TryResult(error="connect")
        for address in found:
            # The next address only when this one took no connection: a name with an
            # IPv6 and an IPv4 address still works from a network that has only one.
            result = await self._post(target, address, headers, extensions, body)
            if result.error != "connect":
                break
        return result

    async def _post(
        self,
        target: webhooks.Target,
        address: webhooks.IPAddress,
        headers: dict[str, str],
        extensions: dict[str, str],
        body: bytes,
    ) -> TryResult:
        """The POST over a connection to ``address``, which was checked."""
        try:
            request = self._http.build_request(
                "POST",
                httpx.URL(
                    scheme=target.scheme,
                    host=str(address),
                    port=target.port,
                    raw_path=target.path.encode(),
                ),
                content=body,
                headers=headers,
                extensions=extensions,
            )
        except (httpx.InvalidURL, ValueError):
            return TryResult(error="refused")
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TimeoutException:
            return TryResult(error="timeout")
        except httpx.ConnectError as error:
            return TryResult(error="tls" if _caused_by_tls(error) else "connect")
        except httpx.HTTPError:
            return TryResult(error="protocol")
        # The body is never read: only the status counts, and a receiver cannot make the
        # notifier hold more than its headers.
        await response.aclose()
        return TryResult(status=response.status_code)


def _caused_by_tls(error: BaseException) -> bool:
    """Whether a failed connection failed in its TLS handshake (a certificate that does
    not match the name, an unknown issuer): httpx wraps httpcore's error, which wraps
    the ``ssl`` module's."""
    cause: BaseException | None = error
    for _ in range(8):
        if cause is None:
            return False
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
