"""The emulator's own object storage, behind pre-signed URLs (no Authorization header).

* ``PUT /_files/asset-uploads/{upload_id}?expires=&signature=`` — an asset upload's bytes,
  streamed to disk;
* ``POST /_files/uploads`` — S3-style multipart POST upload (work item files, task packages):
  every issued ``form_data`` field unchanged, a valid policy signature, and the part ``file``;
* ``GET|HEAD /_files/blobs/{blob_id}/{name}?expires=&signature=`` — downloads, streamed.

Like S3, uploads must carry ``Content-Length`` (chunked transfer encoding is refused with 411),
and errors are small XML documents.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .errors import ApiError
from .models import EmulatorBackend
from .serializers import FILES_PREFIX, POST_UPLOAD_PATH


class S3Error(Exception):
    """An object-storage error answered as S3 would (XML body)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message></Error>"
        )
        return Response(body, status_code=self.status, media_type="application/xml")


def _backend(request: Request) -> EmulatorBackend:
    return request.app.state.backend  # type: ignore[no-any-return]


def _require_length(request: Request) -> int:
    """The declared body length; S3 refuses bodies without one (411)."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        raise S3Error(
            411, "MissingContentLength", "Chunked transfer encoding is not supported; send Content-Length"
        )
    raw = request.headers.get("content-length")
    if raw is None or not raw.isdigit():
        raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header")
    return int(raw)


def _check_signature(request: Request, method: str) -> None:
    """The URL's own signature authorizes the request; an ``Authorization`` header is refused."""
    if "authorization" in request.headers:
        raise S3Error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed: do not send Authorization to a pre-signed URL",
        )
    backend = _backend(request)
    error = backend.signer.check_url(
        method,
        request.url.path,
        request.query_params.get("expires"),
        request.query_params.get("signature"),
        backend.clock.now(),
    )
    if error is not None:
        raise S3Error(403, error, "The pre-signed URL is invalid or has expired")


_S3_CODES = {400: "InvalidArgument", 404: "NoSuchKey", 409: "OperationAborted"}


def _from_api_error(error: ApiError) -> S3Error:
    return S3Error(error.status, _S3_CODES.get(error.status, "InvalidRequest"), error.message)


async def put_asset_upload(request: Request) -> Response:
    """Receive an asset's bytes by HTTP PUT, streaming them to disk."""
    backend = _backend(request)
    blob_id = None
    try:
        length = _require_length(request)
        _check_signature(request, "PUT")
        upload_id = request.path_params["upload_id"]
        backend.asset_upload_target(upload_id)
        blob_id, size = await backend.blobs.write_stream(request.stream())
        if size != length:
            raise S3Error(400, "IncompleteBody", f"Received {size} bytes, Content-Length said {length}")
        backend.receive_asset_upload(upload_id, blob_id, size)
    except ClientDisconnect:
        return Response(status_code=400)
    except ApiError as error:
        backend.blobs.delete(blob_id)
        return _from_api_error(error).response()
    except S3Error as error:
        backend.blobs.delete(blob_id)
        return error.response()
    return Response(status_code=200, headers={"ETag": f'"{blob_id}"'})


async def post_upload(request: Request) -> Response:
    """Receive an S3-style multipart POST upload; files are spooled to disk while parsing."""
    backend = _backend(request)
    try:
        _require_length(request)
        if "authorization" in request.headers:
            raise S3Error(
                400, "InvalidArgument", "Only one auth mechanism allowed: the POST policy authorizes uploads"
            )
        try:
            form = await request.form(max_files=1, max_fields=50)
        except MultiPartException as exc:
            raise S3Error(400, "MalformedPOSTRequest", exc.message) from exc
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise S3Error(400, "InvalidArgument", "POST requires exactly one file part named 'file'")
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            key = fields.get("key")
            if not key:
                raise S3Error(400, "InvalidArgument", "Bucket POST must contain a field named 'key'")
            issued = backend.post_upload_form(key)
            for name, value in issued.items():
                if name not in fields:
                    raise S3Error(403, "AccessDenied", f"Form field {name!r} is missing")
                if fields[name] != value:
                    raise S3Error(403, "AccessDenied", f"Form field {name!r} does not match the issued value")
            size = upload.size if upload.size is not None else 0
            problem = backend.signer.check_post(fields, size, backend.clock.now())
            if problem is not None:
                code, message = problem
                status = 400 if code.startswith("Entity") else 403
                raise S3Error(status, code, message)
            await upload.seek(0)
            await run_in_threadpool(backend.receive_post_upload, key, upload.file, size)
        finally:
            await form.close()
    except ClientDisconnect:
        return Response(status_code=400)
    except ApiError as error:
        return _from_api_error(error).response()
    except S3Error as error:
        return error.response()
    return Response(status_code=204)


async def download(request: Request) -> Response:
    """Serve a stored file (streamed from disk)."""
    backend = _backend(request)
    try:
        _check_signature(request, "GET")
        name = request.path_params["name"]
        path, content_type = backend.blob_for_download(request.path_params["blob_id"], name)
    except ApiError as error:
        return S3Error(404, "NoSuchKey", error.message).response()
    except S3Error as error:
        return error.response()
    return FileResponse(path, media_type=content_type, filename=name)


def file_routes() -> list[Route]:
    return [
        Route(FILES_PREFIX + "/asset-uploads/{upload_id}", put_asset_upload, methods=["PUT"]),
        Route(POST_UPLOAD_PATH, post_upload, methods=["POST"]),
        Route(FILES_PREFIX + "/blobs/{blob_id}/{name:path}", download, methods=["GET", "HEAD"]),
    ]
