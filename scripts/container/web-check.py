#!/usr/bin/env python3
"""HTTP checks of a running Haven container, for scripts/container-smoke (standard library only).

    web-check.py get URL [--expect STATUS] [--json KEY=VALUE]
    web-check.py login BASE_URL --email EMAIL --state FILE     (password in $HAVEN_SMOKE_PASSWORD)

`login` signs in the way a browser does: the form's CSRF token, a wrong password
refused, the right one answered by 303 and a Secure, HttpOnly `haven_session`
cookie, and, for roles that need it, the second factor (set up on first sign-in,
asked for afterwards; the TOTP secret is kept in FILE between runs). It ends on
/admin/users, which only a fully signed-in admin may see.

Haven's cookies are Secure outside development, and Python's cookie jar will
not send Secure cookies over plain HTTP, so this keeps its own.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import struct
import sys
import time
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

SESSION_COOKIE = "haven_session"


class Failed(Exception):
    pass


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.cookies: dict[str, str] = {}
        self.cookie_flags: dict[str, set[str]] = {}

    def request(self, method: str, path: str, form: dict | None = None):
        url = urlsplit(urljoin(self.base + "/", path.lstrip("/")))
        connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=15)
        headers = {"Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        target = url.path + (f"?{url.query}" if url.query else "")
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                flags = {key for key in ("secure", "httponly") if morsel[key]}
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
                    self.cookie_flags[name] = flags
        connection.close()
        return response.status, response.headers, text


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name"):
            self.values[attributes["name"]] = attributes.get("value") or ""


def inputs(page: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(page)
    return parser.values


def totp(secret: str, step: int) -> str:
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def fresh_step(state: dict) -> int:
    """A TOTP time step not used before: Haven refuses a code twice."""
    while True:
        step = int(time.time()) // 30
        if step > state.get("last_step", -1):
            state["last_step"] = step
            return step
        time.sleep(30 - time.time() % 30 + 0.5)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def cmd_get(args) -> None:
    url = urlsplit(args.url)
    browser = Browser(f"{url.scheme}://{url.netloc}")
    status, _headers, body = browser.request("GET", url.path or "/")
    expect(status == args.expect, f"GET {args.url}: {status}, expected {args.expect}: {body[:200]}")
    for pair in args.json or []:
        key, _, value = pair.partition("=")
        got = json.loads(body).get(key)
        expect(str(got) == value, f"GET {args.url}: {key} is {got!r}, expected {value!r}")
    print(f"ok: GET {url.path} -> {status} {body.strip()[:120]}")


def _form_token(browser: Browser, path: str) -> str:
    status, _headers, page = browser.request("GET", path)
    expect(status == 200, f"GET {path}: {status}, expected 200")
    token = inputs(page).get("csrf_token")
    expect(bool(token), f"GET {path}: the form has no csrf_token")
    return token


def cmd_login(args) -> None:
    password = os.environ["HAVEN_SMOKE_PASSWORD"]
    state_file = Path(args.state)
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    browser = Browser(args.base)

    status, headers, _ = browser.request("GET", "/admin/users")
    expect(
        status in (302, 303, 307) and urlsplit(headers["Location"]).path == "/login",
        f"anonymous GET /admin/users: {status}, expected a redirect to /login",
    )

    token = _form_token(browser, "/login")
    status, _headers, _ = browser.request(
        "POST", "/login", {"csrf_token": token, "email": args.email, "password": password + "x"}
    )
    expect(status >= 400, f"POST /login with a wrong password: {status}, expected a refusal")
    expect(SESSION_COOKIE not in browser.cookies, "a wrong password got a session cookie")
    print(f"ok: a wrong password is refused ({status})")

    token = _form_token(browser, "/login")
    status, headers, body = browser.request(
        "POST", "/login", {"csrf_token": token, "email": args.email, "password": password}
    )
    expect(status == 303, f"POST /login: {status}, expected 303: {body[:200]}")
    expect(SESSION_COOKIE in browser.cookies, "POST /login set no haven_session cookie")
    flags = browser.cookie_flags[SESSION_COOKIE]
    expect(flags == {"secure", "httponly"}, f"haven_session cookie flags are {sorted(flags)}")
    location = urlsplit(headers["Location"]).path
    print(f"ok: signed in as {args.email}: 303 to {location}, Secure HttpOnly session cookie")

    if location == "/account/second-factor":
        status, _headers, page = browser.request("GET", location)
        expect(status == 200, f"GET {location}: {status}")
        secrets = re.findall(r"\b[A-Z2-7]{16,}\b", page)
        expect(bool(secrets), f"{location} shows no TOTP secret")
        state["secret"] = secrets[0]
        code = totp(state["secret"], fresh_step(state))
        token = inputs(page)["csrf_token"]
        status, headers, body = browser.request(
            "POST", location, {"csrf_token": token, "code": code}
        )
        expect(status == 303, f"POST {location}: {status}, expected 303: {body[:300]}")
        print("ok: second factor set up (TOTP)")
    elif location == "/login/second-factor":
        expect("secret" in state, "the account has a second factor this run did not set up")
        token = _form_token(browser, location)
        code = totp(state["secret"], fresh_step(state))
        status, headers, body = browser.request(
            "POST", location, {"csrf_token": token, "code": code}
        )
        expect(status == 303, f"POST {location}: {status}, expected 303: {body[:300]}")
        print("ok: second factor accepted (TOTP)")
    state_file.write_text(json.dumps(state))

    status, _headers, page = browser.request("GET", "/admin/users")
    expect(status == 200, f"signed-in GET /admin/users: {status}, expected 200")
    expect(args.email in page, "/admin/users does not list the account that signed in")
    print("ok: GET /admin/users -> 200, lists the account")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("get")
    get.add_argument("url")
    get.add_argument("--expect", type=int, default=200)
    get.add_argument("--json", action="append", metavar="KEY=VALUE")
    get.set_defaults(run=cmd_get)
    login = sub.add_parser("login")
    login.add_argument("base")
    login.add_argument("--email", required=True)
    login.add_argument("--state", required=True)
    login.set_defaults(run=cmd_login)
    args = parser.parse_args()
    try:
        args.run(args)
    except (Failed, OSError, http.client.HTTPException) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
