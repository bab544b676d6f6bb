"""A minimal HTTP/1.1 sink on loopback for upload benchmarks: reads and discards request bodies.

Answers ``100 Continue`` to ``Expect: 100-continue``, then ``204`` (POST) or ``200`` (PUT) once
``Content-Length`` bytes (or the chunked body) have been read; keeps connections alive. One thread
per connection, 1 MiB ``recv_into`` buffer: fast enough that the client is what is measured.

    python bench/sink.py        # prints "listening on PORT", serves until killed
"""

from __future__ import annotations

import socket
import sys
import threading

BUFFER = 1 << 20


def _serve(conn: socket.socket) -> None:
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    pending = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in pending:
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
            head, _, rest = pending.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method = lines[0].split(" ", 1)[0]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            if headers.get("expect", "").lower() == "100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if "chunked" in headers.get("transfer-encoding", "").lower():
                data = rest
                while not data.endswith(b"0\r\n\r\n"):
                    more = conn.recv(BUFFER)
                    if not more:
                        return
                    data = data[-16:] + more
                pending = b""
            else:
                remaining = int(headers.get("content-length", "0")) - len(rest)
                pending = b""
                if remaining < 0:
                    pending, remaining = rest[len(rest) + remaining:], 0
                while remaining > 0:
                    got = conn.recv_into(view, min(remaining, BUFFER))
                    if not got:
                        return
                    remaining -= got
            status = b"204 No Content" if method == "POST" else b"200 OK"
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    server.listen(64)
    print(f"listening on {server.getsockname()[1]}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
