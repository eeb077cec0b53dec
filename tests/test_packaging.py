"""The package's metadata (pyproject.toml): a license, its file, and the Pythons the service is tested on."""

import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.smoke


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_it_declares_the_apache_license_and_ships_its_text():
    meta = project()
    assert meta["license"] == "Apache-2.0"
    assert meta["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    # PEP 639: the SPDX expression replaces the License :: classifiers, which may not appear beside it.
    assert not [c for c in meta["classifiers"] if c.startswith("License ::")]


def test_it_admits_exactly_the_pythons_it_is_tested_on():
    meta = project()
    admitted = SpecifierSet(meta["requires-python"])
    for version in ("3.11.0", "3.12.0", "3.13.0", "3.13.9"):
        assert version in admitted, version
    for version in ("3.10.9", "3.14.0"):
        assert version not in admitted, version
    tested = {c.rsplit(" ", 1)[1] for c in meta["classifiers"] if c.startswith("Programming Language :: Python :: 3.")}
    assert tested == {"3.11", "3.12", "3.13"}


def test_it_has_a_readme_and_a_build_backend_that_reads_pep_639():
    meta = project()
    assert (ROOT / meta["readme"]).is_file()
    assert meta["description"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert "setuptools>=77" in requires
