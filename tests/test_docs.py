"""The docs cannot drift from the code: threat IDs resolve, and the README's settings tables
name every setting with its true default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from origin.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
THREATS = ROOT / "docs" / "threats.md"
README = ROOT / "README.md"

# An ID is a section letter and a number (`R17`); a range (`R1-R28`, `U4-8`) cites every ID in it.
_CITED = re.compile(r"(?<![%\w])([RUDLWB])(\d{1,2})(?:-\1?(\d{1,2}))?\b")  # not %D9 (a URL escape)
_ROW = re.compile(r"^\| ([RUDLWB]\d{1,2}) \|", re.MULTILINE)


def _sources() -> list[Path]:
    """Every file that may cite a threat: the code, the tests, the benchmarks and the other docs."""
    files = [*ROOT.glob("origin/**/*.py"), *ROOT.glob("workers/**/*.py"), *ROOT.glob("tests/**/*.py")]
    files += [*ROOT.glob("bench/**/*.py"), README, *(ROOT / "docs").glob("*.md")]
    generated = ROOT / "bench" / "out"  # git-ignored: the thumbor section installs thumbor's venv there
    return [path for path in files if path != THREATS and not path.is_relative_to(generated)]


def cited_ids(text: str) -> set[str]:
    ids = set()
    for letter, first, last in _CITED.findall(text):
        ids.update(f"{letter}{n}" for n in range(int(first), int(last or first) + 1))
    return ids


def test_cited_ids_are_read_as_ranges():
    ids = cited_ids("(R1-R3, U4-6; W1/W2) B905 %D9%A1")
    assert sorted(ids) == ["R1", "R2", "R3", "U4", "U5", "U6", "W1", "W2"]


def test_every_cited_threat_id_has_a_row():
    listed = set(_ROW.findall(THREATS.read_text()))
    dangling = {
        f"{path.relative_to(ROOT)}: {sorted(missing)}"
        for path in _sources()
        if (missing := cited_ids(path.read_text()) - listed)
    }
    assert not dangling, "threat IDs cited but not in docs/threats.md:\n" + "\n".join(sorted(dangling))


def test_no_citation_of_documents_outside_the_repository():
    others = [path for path in _sources() if path != Path(__file__).resolve()]
    stale = [str(p.relative_to(ROOT)) for p in others if re.search(r"BAD-INPUTS|DESIGN\.md", p.read_text())]
    assert not stale, f"cite docs/threats.md and docs/design.md instead: {stale}"


def test_every_test_named_in_the_threat_list_exists():
    defined = set()
    for path in ROOT.glob("tests/**/*.py"):
        defined.update(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.MULTILINE))
    named = set(re.findall(r"`(test_\w+)`", THREATS.read_text()))
    assert named, "the threat list names the tests that cover each row"
    assert not named - defined, f"docs/threats.md names tests that do not exist: {sorted(named - defined)}"


def test_every_threat_row_names_a_test():
    for row in re.findall(r"^\| [RUDLWB]\d{1,2} \|.*$", THREATS.read_text(), re.MULTILINE):
        assert "`test_" in row.rsplit("|", 2)[-2], row


# -- the README's settings tables -----------------------------------------------------------

DESCRIBED = {
    "tokens": "generated",
    "render_workers": "CPU count",
    "worker_tokens": "`tokens`",
    "derived_storage_url": "the data folder's `_/derived` (local); none on S3",
    "playground": "on for a loopback `host`, else off",
}
"""Defaults worked out at start, so the README describes them in words."""

_UNITS = {
    **{"ms": 0.001, "s": 1, "min": 60, "h": 3600, "day": 86400},
    **{"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "M": 1_000_000, "MP": 1_000_000, "px": 1},
}


def readme_settings() -> dict[str, str]:
    """Setting name -> the README's default, from every `| setting | default | meaning |` table."""
    rows: dict[str, str] = {}
    in_table = False
    for line in README.read_text().splitlines():
        if line.startswith("| setting | default |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
        if not in_table or line.startswith("|---"):
            continue
        names_cell, default_cell = (cell.strip() for cell in line.strip("|").split(" | ")[:2])
        names = re.findall(r"`(\w+)`", names_cell)
        defaults = _split(default_cell) if len(names) > 1 else [default_cell]
        if len(defaults) == 1:
            defaults *= len(names)  # `| a, b | none |`: one default for both
        assert len(defaults) == len(names), f"README row {names}: {len(defaults)} defaults"
        for name, default in zip(names, defaults, strict=True):
            assert name not in rows, f"README documents {name} twice"
            rows[name] = default
    return rows


def _split(cell: str) -> list[str]:
    """Split on commas outside backticks (`cache_control`'s default has commas of its own)."""
    parts, current, quoted = [], "", False
    for char in cell:
        quoted ^= char == "`"
        if char == "," and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def readme_value(text: str) -> Any:
    """The value a README default stands for: `none`, `off`/`on`, `25 MiB`, `10 s`, `1 day`, `text`."""
    if text == "none":
        return None
    if text in ("off", "on"):
        return text == "on"
    if match := re.fullmatch(r"`([^`]*)`", text):
        text = match.group(1)
        if not re.fullmatch(r"\d+(?:\.\d+)?", text):
            return text
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(?: (\w+))?", text)
    assert match, f"cannot read the README default {text!r}"
    number, unit = float(match.group(1)), match.group(2)
    assert unit in _UNITS or not unit, f"the README default {text!r} has a unit this test does not know"
    return number * _UNITS[unit] if unit else number


def test_every_setting_has_a_readme_row_with_its_true_default():
    rows = readme_settings()
    fields = Settings.model_fields
    assert not set(rows) - set(fields), f"README rows for settings that do not exist: {sorted(set(rows) - set(fields))}"
    assert not set(fields) - set(rows), f"settings missing from the README: {sorted(set(fields) - set(rows))}"
    for name, field in fields.items():
        if name in DESCRIBED:
            assert rows[name] == DESCRIBED[name], name
            continue
        default = field.get_default(call_default_factory=True)
        shown = readme_value(rows[name])
        if shown is None:
            assert default in (None, []), f"{name}: README says none, the default is {default!r}"
        else:
            assert shown == (str(default) if isinstance(default, Path) else default), (
                f"{name}: README says {rows[name]!r}, the default is {default!r}"
            )


@pytest.mark.parametrize(
    ("text", "value"),
    [("25 MiB", 25 * 1024 * 1024), ("0.1 s", 0.1), ("1 day", 86400), ("`8080`", 8080), ("`*`", "*"), ("off", False)],
)
def test_readme_values_are_read_as_meant(text, value):
    assert readme_value(text) == value
