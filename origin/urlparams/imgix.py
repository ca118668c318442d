"""imgix's machine-readable parameter spec (`imgix/parameters.json`, BSD-2, licence beside it).

Read once at import for what it is authoritative on: the 127 parameter names, their
aliases (`width` -> `w`, `m` -> `mark`...) and which of them have a Base64 variant. What
each value means, and how it is parsed, lives in the family modules beside this one; a
test checks those against the ranges, defaults and values this file lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).with_name("imgix") / "parameters.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))

PARAMETERS: dict[str, dict[str, Any]] = SPEC["parameters"]
NAMES = frozenset(PARAMETERS)
ALIASES: dict[str, str] = dict(SPEC["aliases"])
DOCUMENTED = frozenset(
    {
        "fill-gradient-type",
        "fill-gradient-linear",
        "fill-gradient-linear-direction",
        "fill-gradient-radial",
        "fill-gradient-radial-x",
        "fill-gradient-radial-y",
        "fill-gradient-radial-radius",
        "fill-gradient-cs",
        "fill-max",
    }
)
"""Parameters imgix's documentation pages describe that its spec file predates (fill=gradient, fill-max)."""
KNOWN = NAMES | DOCUMENTED
NO_BASE64 = frozenset(name for name, entry in PARAMETERS.items() if entry.get("disallow_base64"))
