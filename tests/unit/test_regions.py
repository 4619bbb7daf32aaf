"""shared.regions: GB/T 2260 division codes."""

from __future__ import annotations

import pytest

from shared.regions import PROVINCES, is_known_county, region_name, validate_region

# These tests match on the English wording; both languages: test_i18n, test_errors.
pytestmark = pytest.mark.usefixtures("english")


def test_known_county():
    assert validate_region("350212") == "350212"
    assert region_name("350212") == "同安区"
    assert region_name("110101") == "东城区"
    assert is_known_county("350212")
    assert not is_known_county("350212001")
    assert not is_known_county("359999")


def test_region_name_uses_first_six_digits():
    assert region_name("350212001001") == "同安区"
    assert region_name("359999") is None
    assert region_name("") is None


def test_provinces():
    assert {"11", "35", "44", "65", "71", "81", "82"} <= PROVINCES
    assert "00" not in PROVINCES
    assert "99" not in PROVINCES


@pytest.mark.parametrize("code", ["35021", "3502120", "350212001", "", "3502"])
def test_default_length_is_six(code):
    with pytest.raises(ValueError, match="6-digit"):
        validate_region(code)


@pytest.mark.parametrize("code", ["35021a", "35 212", "-35021", "350212 "])
def test_non_digits_rejected(code):
    with pytest.raises(ValueError, match="division code"):
        validate_region(code)


@pytest.mark.parametrize("code", ["359999", "000000", "999999", "350299"])
def test_unknown_codes_rejected(code):
    with pytest.raises(ValueError, match=f"unknown administrative division code {code}"):
        validate_region(code)


def test_longer_codes_when_allowed():
    lengths = (6, 9, 12)
    assert validate_region("350212", lengths=lengths) == "350212"
    assert validate_region("350212001", lengths=lengths) == "350212001"
    assert validate_region("350212001001", lengths=lengths) == "350212001001"
    with pytest.raises(ValueError, match="6/9/12-digit"):
        validate_region("3502120010", lengths=lengths)
    with pytest.raises(ValueError, match="unknown administrative division code 359999"):
        validate_region("359999001", lengths=lengths)


def test_nine_digits_only_when_allowed():
    with pytest.raises(ValueError, match="9-digit"):
        validate_region("350212", lengths=(9,))
    assert validate_region("350212001", lengths=(9,)) == "350212001"


def test_non_ascii_digits_rejected():
    with pytest.raises(ValueError):
        validate_region("350212００１", lengths=(6, 9))
