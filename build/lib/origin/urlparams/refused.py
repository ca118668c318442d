"""Parameters refused on purpose, each with the reason a client sees (and the README states)."""

from __future__ import annotations

from .table import Family

_PDF = "PDF sources are not served (the PDF loader stays blocked), so there are no pages or annotations"

FAMILY = Family("refused", refused={"page": _PDF, "pdf-annotation": _PDF})
