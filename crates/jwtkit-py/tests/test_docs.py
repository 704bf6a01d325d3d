"""docs/python.md's Python snippets, run as written.

The blocks under one heading run as one script (a later block may use what an
earlier one made), each section in a fresh empty directory, with this test
run's Redis as `JWTKIT_REFRESH_URL`. tests/doc_snippets.rs (the Rust side)
lists this page's Python blocks as run here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "python.md"


def sections() -> list[tuple[str, int, str]]:
    """(heading, first line, script) for every heading with Python blocks."""
    out: dict[str, tuple[int, list[str]]] = {}
    heading = "(top)"
    lines = PAGE.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^#{1,6} ", line):
            heading = line.lstrip("#").strip()
        elif line.strip() == "```python":
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            first, blocks = out.setdefault(heading, (start, []))
            blocks.append("\n".join(body))
        i += 1
    return [(h, first, "\n\n".join(blocks)) for h, (first, blocks) in out.items()]


SECTIONS = sections()


def test_the_page_has_python_snippets():
    assert len(SECTIONS) >= 4, SECTIONS


@pytest.mark.parametrize("heading,line,script", SECTIONS, ids=[s[0] for s in SECTIONS])
def test_snippets_run_as_written(heading, line, script, tmp_path):
    env = dict(os.environ)
    redis = env.get("JWTKIT_TEST_REDIS_URL")
    if "JWTKIT_REFRESH_URL" in script:
        if not redis:
            if env.get("JWTKIT_REQUIRE_SERVICES") == "1":
                pytest.fail("JWTKIT_TEST_REDIS_URL is not set: start the servers with scripts/services.sh")
            pytest.skip("no Redis (JWTKIT_TEST_REDIS_URL); scripts/services.sh starts one")
        env["JWTKIT_REFRESH_URL"] = redis
    env.pop("JWTKIT_KEY_STORE", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (
        f"docs/python.md, {heading!r} (from line {line}) failed:\n{done.stdout}{done.stderr}"
    )
