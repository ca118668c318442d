"""Client hints for `ch=width,dpr,save-data` (pure): request headers -> extra parameters.

With `ch` naming a hint and the URL not setting that parameter itself, the hint fills it
in: `Width`/`Sec-CH-Width` (the layout width in physical pixels) becomes `w`, `DPR`/
`Sec-CH-DPR` becomes `dpr`, and `Save-Data: on` becomes `q=45` (as `auto=compress`). The
response then names those headers in `Vary` (each changes the bytes) and asks for them in
`Accept-CH`. A hint header that is malformed or out of range is ignored, as browsers send
what they send: it is not the URL's mistake.
"""

from __future__ import annotations

import re

from .urlparams.core import MAX_DPR, MAX_PIXELS

HEADERS = {"width": ("Sec-CH-Width", "Width"), "dpr": ("Sec-CH-DPR", "DPR"), "save-data": ("Save-Data",)}
PARAMETER = {"width": "w", "dpr": "dpr", "save-data": "q"}
SAVE_DATA_QUALITY = "45"
_NUMBER = re.compile(r"[0-9]{1,5}(\.[0-9]{1,6})?", re.ASCII)


def _value(hint: str, raw: str) -> str | None:
    raw = raw.strip()
    if hint == "save-data":
        return SAVE_DATA_QUALITY if raw.lower() == "on" else None
    if not _NUMBER.fullmatch(raw):
        return None
    number = float(raw)
    if hint == "width":
        return str(round(number)) if 2 <= number <= MAX_PIXELS else None
    return raw if 0 < number <= MAX_DPR else None


def hinted(ch: tuple[str, ...], given: frozenset[str], headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The (parameter, value) pairs the request's hints add for the hints `ch` names."""
    extra = []
    for hint in ch:
        if PARAMETER[hint] in given:
            continue
        for header in HEADERS[hint]:
            raw = headers.get(header)
            value = _value(hint, raw) if raw is not None else None
            if value is not None:
                extra.append((PARAMETER[hint], value))
                break
    return tuple(extra)


def vary(ch: tuple[str, ...]) -> tuple[str, ...]:
    """The request headers a response under `ch` depends on."""
    return tuple(header for hint in ch for header in HEADERS[hint])


def accept_ch(ch: tuple[str, ...]) -> str:
    return ", ".join(vary(ch))
