"""A streamed ``multipart/form-data`` body with a known length.

Pre-signed S3-style POST URLs refuse chunked uploads, and ``requests``' own ``files=`` builds the
whole body in memory. This body is read from disk in chunks while still sending ``Content-Length``.
"""

from __future__ import annotations

import mimetypes
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

_CHUNK = 1024 * 1024


class FileBody:
    """A file as a sized upload body, read into one reused buffer (no new bytes object per block).

    The transport sends each block before it asks for the next, so the buffer is free again by
    then. ``Content-Length`` comes from ``len()`` (pre-signed URLs refuse chunked bodies).
    """

    def __init__(self, path: Path, block: int = _CHUNK) -> None:
        self._file: IO[bytes] | None = path.open("rb")
        self._size = os.fstat(self._file.fileno()).st_size
        self._buffer = bytearray(block)
        self._view = memoryview(self._buffer)

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> memoryview | bytes:
        if self._file is None:
            return b""
        want = len(self._buffer) if size is None or size < 0 else max(1, min(size, len(self._buffer)))
        got = self._file.readinto(self._view[:want])  # type: ignore[attr-defined]
        return self._view[:got] if got else b""

    def __iter__(self) -> Iterator[memoryview | bytes]:
        while chunk := self.read():
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def new_boundary() -> str:
    return f"robocorp-{uuid.uuid4().hex}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


class MultipartStream:
    """File-like body: every form field first (S3 requires it), then the part named ``file``."""

    def __init__(self, fields: Mapping[str, str], file_name: str, path: Path, boundary: str) -> None:
        self.boundary = boundary
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(k)}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        ]
        file_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quote(file_name)}"\r\n'
            f"Content-Type: {file_type}\r\n\r\n".encode()
        )
        self._head = b"".join(parts)
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._path = path
        self._size = path.stat().st_size
        self._file: FileBody | None = None
        self._stage = 0  # 0 = head, 1 = file, 2 = tail, 3 = done

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def read(self, size: int = -1) -> memoryview | bytes:
        """Return the next piece of the body (at most one section per call; ``b""`` at the end)."""
        if self._stage == 0:
            self._stage = 1
            return self._head
        if self._stage == 1:
            if self._file is None:
                self._file = FileBody(self._path)
            chunk = self._file.read(size)
            if chunk:
                return chunk
            self._file.close()
            self._stage = 2
        if self._stage == 2:
            self._stage = 3
            return self._tail
        return b""

    def __iter__(self) -> Iterator[memoryview | bytes]:
        while chunk := self.read(_CHUNK):
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
