"""The test suite; its folders mirror the packages (tests/origin/..., tests/workers/...), with
tests/deploy/ for the recipes in deploy/ and the shared helpers (images, live servers, S3, Redis) here."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
