#!/usr/bin/env python3
"""Signs in to the console as a data dir's bootstrap owner (password, then a TOTP code,
enrolling the second factor on first use) and prints the session cookie (`name=value`).

Standard library only, for scripts/bench.sh. Usage: console-session.py BASE_URL BOOTSTRAP_JSON
"""
import base64
import hashlib
import hmac
import json
import re
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def totp(secret_b32: str, at: float) -> str:
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    o = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def main() -> None:
    base, boot = sys.argv[1], json.load(open(sys.argv[2]))
    opener = urllib.request.build_opener(NoRedirect)
    jar: dict[str, str] = {}

    def call(path: str, form: dict | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(base + path, data=data)
        req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in jar.items()))
        try:
            res = opener.open(req)
        except urllib.error.HTTPError as e:
            res = e
        for c in res.headers.get_all("Set-Cookie") or []:
            k, v = c.split(";", 1)[0].split("=", 1)
            jar[k] = v
        return res.status, res.read().decode()

    csrf = lambda page: re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # noqa: E731
    _, page = call("/login")
    status, _ = call("/login", {"csrf": csrf(page), "username": boot["ownerUsername"],
                                "password": boot["ownerPassword"]})
    assert status == 303, status
    _, page = call("/login/totp")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    status, _ = call("/login/totp", {"csrf": csrf(page), "code": totp(secret, time.time())})
    assert status == 303, status
    print(f"__Host-tessera-session={jar['__Host-tessera-session']}")


if __name__ == "__main__":
    main()
