"""What every response passes through: the Host check, the access token, the security headers.

- Host: a page served under a host name the Pi does not answer to is how DNS rebinding
  reads a local service from a web page elsewhere; only IP addresses, localhost, the
  Pi's own name (and name.local, as mDNS announces it) and the configured names pass.
- Token: when ``web.token`` is set, the first visit needs ``?token=...``; the token is
  then kept in a cookie (HttpOnly, SameSite=Strict), and the address is shown without it.
- Headers: a Content-Security-Policy that allows only the Pi's own scripts, styles and
  connections, and nothing in frames.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket

from starlette.datastructures import QueryParams
from starlette.responses import PlainTextResponse, RedirectResponse

TOKEN_COOKIE = "kneeroll_token"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def allowed_hosts(extra: tuple[str, ...] = ()) -> set[str]:
    name = socket.gethostname().lower()
    return {"localhost", name, f"{name}.local", *(h.lower() for h in extra)}


def host_allowed(host_header: str, allowed: set[str]) -> bool:
    host = host_header.strip().lower()
    if host.startswith("["):  # an IPv6 literal: [::1]:8080
        host = host[1:].split("]")[0]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host.rstrip(".") in allowed


class Guard:
    """ASGI middleware: the Host check, the token, and the security headers on every response."""

    def __init__(self, app, *, hosts: set[str], token: str = ""):
        self.app, self.hosts, self.token = app, hosts, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not host_allowed(headers.get(b"host", b"").decode("latin-1"), self.hosts):
            response = PlainTextResponse("This site answers only to the Pi's own names: open it by the Pi's "
                                         "name.local or its address.", status_code=400)
            await response(scope, receive, self._with_headers(send))
            return
        if self.token:
            response = self._token_response(scope, headers)
            if response is not None:
                await response(scope, receive, self._with_headers(send))
                return
        await self.app(scope, receive, self._with_headers(send))

    def _token_response(self, scope, headers):
        params = QueryParams(scope.get("query_string", b""))
        given = params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return PlainTextResponse("That token is not the one in the config (web.token).", status_code=401)
            rest = str(QueryParams([(k, v) for k, v in params.multi_items() if k != "token"]))
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict", max_age=365 * 86400)
            return response
        cookie = _cookie(headers.get(b"cookie", b"").decode("latin-1"), TOKEN_COOKIE)
        if cookie is not None and hmac.compare_digest(cookie.encode(), self.token.encode()):
            return None
        return PlainTextResponse("This site needs its access token: open it once as /?token=... "
                                 "(the token is web.token in the Pi's config).", status_code=401)

    @staticmethod
    def _with_headers(send):
        async def sending(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)
        return sending


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
