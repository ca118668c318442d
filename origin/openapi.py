"""The OpenAPI 3.1 description of the whole HTTP surface, generated from the code (pure).

The URL API's query parameters come from the parameter table (`origin.urlparams`): each
parser's bounds or choices are read from the parser itself (the arguments its factory closed over),
so a parameter added or re-ranged there changes this document, and the test that compares
it with the committed `docs/openapi.json` fails until it is regenerated:

    .venv/bin/python -m origin.openapi > docs/openapi.json
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from typing import Any

from . import params
from .formats import MIME, OUTPUT_FORMATS
from .http.manage import DEFAULT_LIMIT, MAX_DELETE, MAX_LIMIT
from .urlparams import TABLE
from .urlparams.imgix import ALIASES

REGENERATE = ".venv/bin/python -m origin.openapi > docs/openapi.json"
VERSION = "0.1.0"
"""The API's version, not the package's: bump it when the HTTP surface changes incompatibly."""

_COLOR = {
    "type": "string",
    "description": "hex RGB, ARGB, RRGGBB or AARRGGBB (alpha first), with or without '#', or a CSS colour keyword",
}
_NAMED: dict[str, dict[str, Any]] = {
    # Parsers that are plain functions rather than made by a factory: their accepted form.
    "size": {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 8192,
        "description": "pixels (>= 1), or a fraction in (0, 1) of the source; clamped to max_output_side",
    },
    "dpr": {"type": "number", "exclusiveMinimum": 0, "maximum": 5},
    "ratio": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?:[0-9]+(\\.[0-9]+)?$", "description": "W:H"},
    "color": _COLOR,
    "boolean": {"type": "string", "enum": ["true", "false", "1", "0"]},
    "fit": {"type": "string", "enum": ["clip", "max", "min", "crop", "fill", "fillmax", "scale", "clamp", "facearea"]},
    "fm": {"type": "string", "enum": list(OUTPUT_FORMATS)},
    "crop": {
        "type": "string",
        "description": "comma-separated: top, bottom, left, right, faces, and at most one of entropy, edges, focalpoint",
        "examples": ["top,left", "entropy", "focalpoint"],
    },
    "auto": {
        "type": "string",
        "description": "comma-separated: format, compress, enhance, redeye",
        "examples": ["format,compress"],
    },
    "storage_key": {"type": "string", "description": "the key of another image in the same storage (not a URL)"},
    "filename": {"type": "string", "minLength": 1, "maxLength": 255, "description": "download file name"},
    "hue": {"type": "integer", "description": "degrees, taken modulo 360"},
}


def parameter_schema(parser: Callable[..., object]) -> dict[str, Any]:
    """The JSON schema of what `parser` accepts.

    A parser may carry its own `schema`; a factory-made one (`_ranged(0, 100)`,
    `_choice(...)`) is described by the values it closed over; a named one by `_NAMED`.
    Anything else is a plain string (and shows up in the committed document's diff).
    """
    explicit = getattr(parser, "schema", None)
    if isinstance(explicit, dict):
        return dict(explicit)
    name = getattr(parser, "__name__", "")
    if name in _NAMED:
        return dict(_NAMED[name])
    try:
        closed = inspect.getclosurevars(parser).nonlocals
    except TypeError:
        closed = {}
    low, high = closed.get("low"), closed.get("high")
    if isinstance(low, int | float) and isinstance(high, int | float):
        # `_ranged_decimal(0, 1)` closes over ints but accepts decimals: its factory's name says so.
        integer = isinstance(low, int) and isinstance(high, int) and "decimal" not in parser.__qualname__
        return {"type": "integer" if integer else "number", "minimum": low, "maximum": high}
    choices = closed.get("allowed", closed.get("options"))
    if isinstance(choices, tuple | list | frozenset | set) and all(isinstance(c, str) for c in choices):
        return {"type": "string", "enum": list(choices)}
    return {"type": "string"}


def url_parameters() -> list[dict[str, Any]]:
    """Every query parameter of GET /{key}: the parser table, then preset and signing."""
    listed = [_query(name, parameter_schema(param.parse)) for name, param in TABLE.items()]
    listed.extend(
        _query(alias, parameter_schema(TABLE[name].parse), f"imgix's alias of `{name}`")
        for alias, name in sorted(ALIASES.items())
        if name in TABLE
    )
    listed.append(_query("preset", {"type": "string"}, "a named preset from presets.yaml"))
    listed.append(
        _query(
            "s",
            {"type": "string"},
            "signature (imgix md5 or HMAC-SHA256): checked when present, required under require_signature",
        )
    )
    listed.append(
        _query("expires", {"type": "integer"}, "Unix seconds after which a signed URL is refused (signed URLs only)")
    )
    listed.extend(
        _query(name, {"type": "string"}, "added by imgix client libraries; ignored") for name in params.IGNORED
    )
    return listed


def _query(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    described = {} if description is None else {"description": description}
    return {"name": name, "in": "query", "required": False, **described, "schema": schema}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _object(properties: dict[str, Any], *optional: str) -> dict[str, Any]:
    """An object schema: every property is required except the `optional` ones."""
    required = [name for name in properties if name not in optional]
    return {"type": "object", "required": required, "properties": properties}


_REASONS = {
    400: "the request is invalid (the code names what)",
    401: "no or a malformed Authorization: Bearer header",
    403: "the token, signature or parameters are not allowed",
    404: "no such key (or route)",
    409: "a key exists already, or would be both an image and a folder",
    412: "a precondition failed",
    413: "payload too large",
    414: "the request line (path and query) is too long",
    431: "a request header is too large",
    415: "not a JPEG, PNG, WebP, GIF or AVIF image, or one holding HTML or script markup",
    416: "range not satisfiable",
    422: "image too large, too many frames, or corrupt",
    501: "a face parameter on an install without the faces extra (pip install 'image-origin[faces]')",
    502: "storage failed",
    503: "overloaded, render timeout, or not ready (Retry-After)",
    504: "storage timed out",
}
"""Every error status the service answers, each with the JSON error body."""


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/E{status}"} for status in statuses}


_IMAGE_ERRORS = (400, 403, 404, 414, 415, 416, 422, 431, 501, 502, 503, 504)
_MANAGE_ERRORS = (400, 401, 403, 414, 431, 502, 504)
_KEY = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": "the object key; '/' separates folders (send it unencoded), '_/' is reserved",
    "schema": {"type": "string", "minLength": 1, "maxLength": 512},
    "example": "sample.jpg",
}
_FOLDER = dict(_KEY, description="a folder: files are stored as {path}/{filename}", example="uploads")
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _image_get() -> dict[str, Any]:
    media: dict[str, dict[str, Any]] = {
        MIME[fm]: {"schema": {"type": "string", "format": "binary"}} for fm in OUTPUT_FORMATS if fm != "json"
    }
    media["application/json"] = {"schema": _ref("Describe")}
    media[MIME["css"]] = {"schema": {"type": "string"}, "description": "palette=css"}
    return {
        "summary": "An original (no parameters) or a transformed variant",
        "operationId": "getImage",
        "tags": ["images"],
        "parameters": [_KEY, *url_parameters()],
        "responses": {
            "200": {
                "description": "the image (fm=json: its metadata; fm=blurhash: text; palette=css|json: its colours)",
                "content": media,
            },
            "206": {"description": "a byte range of an original", "content": {"*/*": {"schema": {"type": "string"}}}},
            "304": {"description": "not modified (If-None-Match / If-Modified-Since)"},
            **_errors(*_IMAGE_ERRORS),
        },
    }


def _manage_ops(path_parameter: dict[str, Any] | None) -> dict[str, Any]:
    """POST (multipart upload) and DELETE (by names) on a folder or the root."""
    parameters = [path_parameter] if path_parameter else []
    suffix = "InFolder" if path_parameter else "AtRoot"
    return {
        "post": {
            "summary": "Upload one or more images (all or none)",
            "operationId": f"upload{suffix}",
            "tags": ["management"],
            "security": _BEARER,
            "parameters": parameters,
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": _object({"data": {"type": "array", "items": {"type": "string", "format": "binary"}}}),
                        "encoding": {"data": {"contentType": "image/*"}},
                    }
                },
            },
            "responses": {
                "201": _json(
                    {"type": "object", "properties": {"images": {"type": "array", "items": _ref("Entry")}}}, "stored"
                ),
                **_errors(*_MANAGE_ERRORS, 409, 413, 415, 422),
            },
        },
        "delete": {
            "summary": f"Delete images by name (all or none, at most {MAX_DELETE})",
            "operationId": f"delete{suffix}",
            "tags": ["management"],
            "security": _BEARER,
            "parameters": parameters,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _object(
                            {
                                "images": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": MAX_DELETE,
                                    "items": {"type": "string"},
                                }
                            }
                        )
                        | {"additionalProperties": False}
                    }
                },
            },
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"deleted": {"type": "array", "items": {"type": "string"}}}},
                    "deleted",
                ),
                **_errors(*_MANAGE_ERRORS, 404),
            },
        },
        "options": {
            "summary": "CORS preflight (grants only for manage_cors_origins)",
            "operationId": f"preflight{suffix}",
            "tags": ["management"],
            "parameters": parameters,
            "responses": {"204": {"description": "allowed methods"}},
        },
    }


def _schemas() -> dict[str, Any]:
    string_or_null = {"type": ["string", "null"]}
    return {
        "Error": _object(
            {
                "error": _object(
                    {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "request_id": {"type": "string", "description": "the response's X-Request-ID"},
                        "keys": {"type": "array", "items": {"type": "string"}},
                    },
                    "keys",
                )
            }
        ),
        "Entry": _object(
            {
                "key": {"type": "string"},
                "url": {"type": "string"},
                "etag": {"type": "string"},
                "size": {"type": "integer"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "format": {"type": "string", "enum": ["jpg", "png", "webp", "gif", "avif"]},
                "content_type": {"type": "string"},
            }
        ),
        "Listed": _object(
            {
                "key": {"type": "string"},
                "url": {"type": "string"},
                "size": {"type": "integer"},
                "etag": {"type": "string"},
                "last_modified": {"type": "string", "format": "date-time"},
                "content_type": string_or_null,
            }
        ),
        "Describe": _object(
            {
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "format": {"type": "string"},
                "bytes": {"type": "integer"},
                "has_alpha": {"type": "boolean"},
                "frames": {"type": "integer"},
                "dominant_color": {"type": "string"},
            },
            "has_alpha",
            "frames",
            "dominant_color",
        ),
        "Ready": _object(
            {
                "status": {"type": "string", "enum": ["ready", "unavailable"]},
                "down": {"type": "array", "items": {"type": "string"}},
                "checks": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "enum": ["ok", "timeout", "error"]},
                },
            },
            "down",
        ),
    }


def _responses() -> dict[str, Any]:
    return {f"E{status}": _json(_ref("Error"), reason) for status, reason in _REASONS.items()}


def _system_paths() -> dict[str, Any]:
    no_params: list[dict[str, Any]] = []
    return {
        "/_/health": {
            "get": {
                "summary": "Liveness: the process answers",
                "operationId": "health",
                "tags": ["operations"],
                "parameters": no_params,
                "responses": {"200": _json(_object({"status": {"const": "ok"}}), "alive")},
            }
        },
        "/_/ready": {
            "get": {
                "summary": "Readiness: storage (and Redis, when configured) answer",
                "operationId": "ready",
                "tags": ["operations"],
                "parameters": no_params,
                "responses": {"200": _json(_ref("Ready"), "ready"), "503": _json(_ref("Ready"), "not ready")},
            }
        },
        "/_/metrics": {
            "get": {
                "summary": "Prometheus metrics; 404 unless metrics_token or metrics_public is set",
                "operationId": "metrics",
                "tags": ["operations"],
                "security": [{}, {"bearer": []}],
                "parameters": no_params,
                "responses": {
                    "200": {
                        "description": "the Prometheus text format (OpenMetrics when asked for)",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 403, 404),
                },
            }
        },
        "/_/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "tags": ["operations"],
                "parameters": no_params,
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/_/playground": {
            "get": {
                "summary": "The browser playground (404 when the playground setting is off)",
                "operationId": "playground",
                "tags": ["playground"],
                "parameters": no_params,
                "responses": {
                    "200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}},
                    **_errors(404),
                },
            }
        },
        "/_/presets": {
            "get": {
                "summary": "The presets of presets.yaml and the width ladder (the playground reads it)",
                "operationId": "listPresets",
                "tags": ["management"],
                "security": _BEARER,
                "parameters": no_params,
                "responses": {
                    "200": _json(
                        _object(
                            {
                                "presets": {
                                    "type": "array",
                                    "items": _object(
                                        {
                                            "name": {"type": "string"},
                                            "params": {"type": "object", "additionalProperties": {"type": "string"}},
                                            "warm": {"type": "boolean"},
                                        }
                                    ),
                                },
                                "presets_only": {"type": "boolean"},
                                "allowed_widths": {"type": "array", "items": {"type": "integer"}},
                            }
                        ),
                        "the presets",
                    ),
                    **_errors(401, 403),
                },
            }
        },
    }


def _key_path() -> dict[str, Any]:
    ops = _manage_ops(_FOLDER)
    return {
        "get": _image_get(),
        "put": {
            "summary": "Create (If-None-Match: *) or replace (If-Match: <etag>) one image from a raw body",
            "operationId": "putImage",
            "tags": ["management"],
            "security": _BEARER,
            "parameters": [
                _KEY,
                {"name": "If-None-Match", "in": "header", "required": False, "schema": {"const": "*"}},
                {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "200": _json(_ref("Entry"), "replaced"),
                "201": _json(_ref("Entry"), "created"),
                **_errors(*_MANAGE_ERRORS, 409, 412, 413, 415, 422),
            },
        },
        **ops,
    }


def _root_path() -> dict[str, Any]:
    return {
        "get": {
            "summary": "List images, one page at a time (pass next_cursor back as cursor)",
            "operationId": "listImages",
            "tags": ["management"],
            "security": _BEARER,
            "parameters": [
                _query("prefix", {"type": "string", "maxLength": 511}, "only keys starting with this"),
                _query("cursor", {"type": "string"}, "next_cursor from the previous page"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                    "page size",
                ),
            ],
            "responses": {
                "200": _json(
                    _object(
                        {
                            "images": {"type": "array", "items": _ref("Listed")},
                            "next_cursor": {"type": ["string", "null"]},
                        }
                    ),
                    "one page",
                ),
                **_errors(*_MANAGE_ERRORS),
            },
        },
        **_manage_ops(None),
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, the same on every run for the same code."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "image-origin",
            "version": VERSION,
            "description": (
                "imgix-style image transforms on GET /{key}, a bearer-token management API, and the operational "
                "endpoints. Generated from the code by `python -m origin.openapi`."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8080", "description": "the embedded defaults"}],
        "tags": [
            {"name": "images", "description": "the URL API (public)"},
            {"name": "management", "description": "uploads, replacements, deletes, listing (bearer token)"},
            {"name": "operations", "description": "health, readiness, metrics, this document"},
            {"name": "playground", "description": "the browser playground"},
        ],
        "paths": {**_system_paths(), "/": _root_path(), "/{key}": _key_path()},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
            "responses": _responses(),
        },
    }


def render() -> str:
    """The document as the committed file holds it."""
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
