"""A clone of the repository stands on its own: no tracked file reads or points to the design inputs that sit
beside the team's checkouts (they are copied into docs/contract/)."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The sibling folder by relative path, an absolute path into it, or a path built from the folder above the checkout.
OUTSIDE = re.compile(r"\.\./" + r"shared|/work/" + r"shared|parents?\[\d\]\.parent\s*/\s*[\"']" + r"shared")


def test_it_reads_nothing_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()

    offenders = [
        f"{name}:{number}"
        for name in files
        if (ROOT / name).is_file()
        for number, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]

    assert files
    assert offenders == []


def test_it_carries_the_contract_it_is_tested_against():
    contract = ROOT / "docs" / "contract"

    assert "Part 1" in (contract / "schema.graphql").read_text()
    assert len(list((contract / "examples").glob("*.graphql"))) >= 9
    assert (contract / "examples" / "token.http").exists()
