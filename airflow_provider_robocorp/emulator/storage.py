"""Blob storage on disk and the signing of pre-signed (S3-style) URLs and POST policies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlencode

from .clock import iso, parse_iso

CHUNK_SIZE = 1024 * 1024
"""Bytes copied at a time when moving blobs around."""

AMZ_ALGORITHM = "AWS4-HMAC-SHA256"


class BlobStore:
    """Files kept in a private temporary directory, written and read in chunks.

    ``largest_write`` records the biggest single write so tests can check uploads are
    streamed to disk rather than held whole in memory.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="robocorp-emulator-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.largest_write = 0

    def path(self, blob_id: str) -> Path:
        return self.root / blob_id

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data`` as a new blob; returns ``(blob_id, size)``."""
        blob_id = self.new_id()
        with open(self.path(blob_id), "wb") as handle:
            for start in range(0, len(data), CHUNK_SIZE):
                self._write(handle, data[start : start + CHUNK_SIZE])
        return blob_id, len(data)

    def copy_from(self, source: BinaryIO) -> tuple[str, int]:
        """Store the rest of an open binary file as a new blob, chunk by chunk."""
        blob_id = self.new_id()
        size = 0
        with open(self.path(blob_id), "wb") as handle:
            while chunk := source.read(CHUNK_SIZE):
                self._write(handle, chunk)
                size += len(chunk)
        return blob_id, size

    async def write_stream(self, chunks: AsyncIterator[bytes]) -> tuple[str, int]:
        """Store an async stream of chunks (an HTTP request body) as a new blob."""
        blob_id = self.new_id()
        size = 0
        try:
            with open(self.path(blob_id), "wb") as handle:
                async for chunk in chunks:
                    if chunk:
                        self._write(handle, chunk)
                        size += len(chunk)
        except BaseException:
            self.delete(blob_id)
            raise
        return blob_id, size

    def duplicate(self, blob_id: str) -> str:
        """A new blob with the same content (blobs are immutable, so a hard link will do)."""
        new_id = self.new_id()
        try:
            os.link(self.path(blob_id), self.path(new_id))
        except OSError:
            shutil.copyfile(self.path(blob_id), self.path(new_id))
        return new_id

    def delete(self, blob_id: str | None) -> None:
        if blob_id:
            self.path(blob_id).unlink(missing_ok=True)

    def delete_many(self, blob_ids: Iterable[str | None]) -> None:
        for blob_id in blob_ids:
            self.delete(blob_id)

    def clear(self) -> None:
        """Remove every blob."""
        for entry in self.root.iterdir():
            entry.unlink(missing_ok=True)

    def close(self) -> None:
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _write(self, handle: BinaryIO, chunk: bytes) -> None:
        handle.write(chunk)
        if len(chunk) > self.largest_write:
            with self._lock:
                self.largest_write = max(self.largest_write, len(chunk))


class Signer:
    """HMAC signatures for pre-signed URLs and S3-style POST policies."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or os.urandom(32)

    def _mac(self, message: str) -> str:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def presign(self, base_url: str, method: str, path: str, expires: float) -> str:
        """Absolute URL for ``method path`` (URL-quoted) valid until ``expires`` (epoch seconds).

        The signature covers the decoded path, which is what the server sees.
        """
        expiry = int(expires)
        signature = self._mac(f"{method}\n{unquote(path)}\n{expiry}")
        query = urlencode({"expires": expiry, "signature": signature})
        return f"{base_url}{path}?{query}"

    def check_url(
        self, method: str, path: str, expires: str | None, signature: str | None, now: float
    ) -> str | None:
        """``None`` when the URL signature is valid and unexpired, else an S3-like error code."""
        if not expires or not signature:
            return "AccessDenied"
        try:
            expiry = int(expires)
        except ValueError:
            return "AccessDenied"
        if not hmac.compare_digest(self._mac(f"{method}\n{path}\n{expiry}"), signature):
            return "SignatureDoesNotMatch"
        if now > expiry:
            return "ExpiredToken"
        return None

    def post_form(self, key: str, expires: float, min_size: int, max_size: int) -> dict[str, str]:
        """Form fields of an S3-style POST upload of object ``key``."""
        date = iso(expires - 3600) or ""
        amz_date = date.replace("-", "").replace(":", "").split(".")[0] + "Z"
        credential = f"EMULATOR/{amz_date[:8]}/local/s3/aws4_request"
        policy_doc = {
            "expiration": iso(expires),
            "conditions": [
                {"key": key},
                {"x-amz-algorithm": AMZ_ALGORITHM},
                {"x-amz-credential": credential},
                {"x-amz-date": amz_date},
                ["content-length-range", min_size, max_size],
            ],
        }
        policy = base64.b64encode(json.dumps(policy_doc, separators=(",", ":")).encode()).decode()
        return {
            "key": key,
            "x-amz-algorithm": AMZ_ALGORITHM,
            "x-amz-credential": credential,
            "x-amz-date": amz_date,
            "policy": policy,
            "x-amz-signature": self._mac(policy),
        }

    def check_post(self, fields: dict[str, str], size: int, now: float) -> tuple[str, str] | None:
        """Validate posted form fields against their signed policy.

        Returns ``None`` when valid, else ``(error_code, message)`` like S3 would.
        """
        policy = fields.get("policy")
        signature = fields.get("x-amz-signature")
        if not policy or not signature:
            return "AccessDenied", "policy and x-amz-signature are required"
        if not hmac.compare_digest(self._mac(policy), signature):
            return "SignatureDoesNotMatch", "The request signature does not match the policy"
        try:
            document: dict[str, Any] = json.loads(base64.b64decode(policy))
        except ValueError:
            return "InvalidPolicyDocument", "The policy is not valid base64 JSON"
        expiration = document.get("expiration")
        if not isinstance(expiration, str) or _expired(expiration, now):
            return "AccessDenied", "Invalid according to Policy: Policy expired"
        for condition in document.get("conditions", []):
            if isinstance(condition, dict):
                for name, expected in condition.items():
                    if fields.get(name) != expected:
                        return "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {name}"
            elif isinstance(condition, list) and condition[:1] == ["content-length-range"]:
                low, high = int(condition[1]), int(condition[2])
                if size < low:
                    return (
                        "EntityTooSmall",
                        f"Your proposed upload is smaller than the minimum allowed size {low}",
                    )
                if size > high:
                    return "EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size {high}"
        return None


def _expired(expiration: str, now: float) -> bool:
    try:
        return parse_iso(expiration) < now
    except ValueError:
        return True
