"""Typed errors: each carries its HTTP status, a stable code and a public message.

Handlers and the pure core raise these; one middleware turns them into the JSON body
`{"error": {"code": ..., "message": ..., "request_id": ...}}` (origin/http/middlewares.py
builds every error body). Anything else that escapes is a bug and is
logged as one, never shown to the client.
"""

from __future__ import annotations


class OriginError(Exception):
    """Base class: a failure the client should see with a specific status and code."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def details(self) -> dict[str, object]:
        """Fields the JSON error carries beyond code and message (a batch error names its keys)."""
        return {}


class InvalidParam(OriginError):
    status = 400
    code = "invalid_param"


class UnknownParam(OriginError):
    status = 400
    code = "unknown_param"


class DuplicateParam(OriginError):
    status = 400
    code = "duplicate_param"


class ParamOutOfRange(OriginError):
    status = 400
    code = "param_out_of_range"


class InvalidKey(OriginError):
    status = 400
    code = "invalid_key"


class InvalidCursor(OriginError):
    status = 400
    code = "invalid_cursor"


class InvalidForm(OriginError):
    status = 400
    code = "invalid_form"


class EmptyBody(OriginError):
    status = 400
    code = "empty_body"


class Unauthorized(OriginError):
    status = 401
    code = "unauthorized"


class Forbidden(OriginError):
    status = 403
    code = "forbidden"


class UnknownPreset(OriginError):
    status = 400
    code = "unknown_preset"


class BadSignature(OriginError):
    status = 403
    code = "bad_signature"


class ParamsNotAllowed(OriginError):
    status = 403
    code = "params_not_allowed"


class NotFound(OriginError):
    status = 404
    code = "not_found"


class AlreadyExists(OriginError):
    status = 409
    code = "already_exists"


class KeyConflict(OriginError):
    status = 409
    code = "key_conflict"


class RequestTimeout(OriginError, TimeoutError):
    """A request body that did not arrive in time (a TimeoutError too, so aiohttp's lingering
    read after the response treats it as the end of the connection, not as a crash)."""

    status = 408
    code = "request_timeout"


class PreconditionFailed(OriginError):
    status = 412
    code = "precondition_failed"


class PayloadTooLarge(OriginError):
    status = 413
    code = "payload_too_large"


class RangeNotSatisfiable(OriginError):
    status = 416
    code = "range_not_satisfiable"


class UnsupportedMedia(OriginError):
    status = 415
    code = "unsupported_media_type"


class ImageTooLarge(OriginError):
    status = 422
    code = "image_too_large"


class TooManyFrames(OriginError):
    status = 422
    code = "too_many_frames"


class AnimationTooCostly(OriginError):
    status = 422
    code = "animation_too_costly"


class CorruptImage(OriginError):
    status = 422
    code = "corrupt_image"


class Overloaded(OriginError):
    status = 503
    code = "overloaded"


class RenderTimeout(OriginError):
    status = 503
    code = "render_timeout"


class StorageError(OriginError):
    status = 502
    code = "storage_error"


class StorageTimeout(OriginError):
    status = 504
    code = "storage_timeout"


class FacesUnavailable(OriginError):
    """A face parameter on an install without the `faces` extra: the server cannot do it (501)."""

    status = 501
    code = "faces_unavailable"


class UnsupportedParam(OriginError):
    """An imgix parameter (or value) this origin does not render: the message says why."""

    status = 400
    code = "unsupported_param"
