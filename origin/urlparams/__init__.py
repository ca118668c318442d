"""imgix's URL parameters: one table assembled from one module per family.

To add a family, write a module with a `FAMILY` (see `table.Family`) and list it in
`FAMILIES`; its fields go in `TransformSpec` (spec.py) in a block of their own. A name in
imgix's spec that no family takes is answered 400 `unsupported_param` ("not supported
yet"), never accepted and ignored.
"""

from __future__ import annotations

from . import core, faces, fill, layout, output, overlay, refused, text, tone
from .table import Family, Param

FAMILIES: tuple[Family, ...] = (
    core.FAMILY,
    layout.FAMILY,
    tone.FAMILY,
    output.FAMILY,
    refused.FAMILY,
    text.FAMILY,
    faces.FAMILY,
    overlay.FAMILY,
    fill.FAMILY,
)

TABLE: dict[str, Param] = {p.name: p for family in FAMILIES for p in family.params}
REFUSED: dict[str, str] = {name: why for family in FAMILIES for name, why in family.refused.items()}

__all__ = ["FAMILIES", "REFUSED", "TABLE", "Family", "Param"]
