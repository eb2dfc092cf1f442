"""Requests the benchmarks need made up front, pipelined on one keep-alive connection (a
sequential loop took longer than the whole benchmark).

As a module: `pipelined(url, raw_requests)` sends batches of raw HTTP/1.1 requests and yields
each response's header lines and body.

As a script:
  python3 scripts/bench_pipe.py tokens URL BASIC OUT N
mints N access tokens with client credentials (BASIC: the base64 of "clientId:secret") and
writes them to OUT, one per line.
"""
import json
import socket
import sys
import urllib.parse


def pipelined(url, raw_requests, batch=500):
    u = urllib.parse.urlparse(url)
    s = socket.create_connection((u.hostname, u.port))
    buf = b""
    for i in range(0, len(raw_requests), batch):
        chunk = raw_requests[i:i + batch]
        s.sendall(b"".join(chunk))
        for _ in chunk:
            while b"\r\n\r\n" not in buf:
                buf += s.recv(1 << 20)
            head, buf = buf.split(b"\r\n\r\n", 1)
            headers = head.decode("latin-1").split("\r\n")
            length = 0
            for h in headers:
                if h.lower().startswith("content-length:"):
                    length = int(h.split(":", 1)[1])
            while len(buf) < length:
                buf += s.recv(1 << 20)
            body, buf = buf[:length], buf[length:]
            yield headers, body
    s.close()


def mint_tokens(url, basic, out, n):
    body = b"grant_type=client_credentials"
    req = (b"POST /api/oauth/token HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic "
           + basic.encode()
           + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    with open(out, "w") as f:
        for _, b in pipelined(url, [req] * n):
            f.write(json.loads(b)["access_token"] + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "tokens":
        sys.exit(__doc__)
    mint_tokens(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
