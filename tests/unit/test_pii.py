"""shared.pii: GB 11643-1999 ID numbers, phone numbers, masking and the PII cipher."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from shared.pii import (
    PiiCipher,
    age_on,
    id_check_char,
    mask_id_number,
    mask_phone,
    normalize_phone,
    parse_id_number,
)
from shared.regions import PROVINCES

# These tests match on the English wording; both languages: test_i18n, test_errors.
pytestmark = pytest.mark.usefixtures("english")

TODAY = date(2025, 6, 15)

# The standard's own examples (GB 11643-1999 appendix).
SAMPLE_X = "11010519491231002X"
SAMPLE_4 = "440524188001010014"


def with_check(first17: str) -> str:
    return first17 + id_check_char(first17)


# --- id_check_char -------------------------------------------------------------------------


def test_check_char_computed_by_hand_gives_x():
    digits = [1, 1, 0, 1, 0, 5, 1, 9, 4, 9, 1, 2, 3, 1, 0, 0, 2]
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(d * w for d, w in zip(digits, weights, strict=True))
    assert total == 167
    assert total % 11 == 2
    assert "10X98765432"[2] == "X"
    assert id_check_char("11010519491231002") == "X"


def test_check_char_computed_by_hand_gives_digit():
    # 4*7+4*9+0*10+5*5+2*8+4*4+1*2+8*1+8*6+0*3+0*7+1*9+0*10+1*5+0*8+0*4+1*2 = 195; 195 % 11 = 8
    assert "10X98765432"[195 % 11] == "4"
    assert id_check_char("44052418800101001") == "4"


@pytest.mark.parametrize(
    ("remainder", "char"),
    [(0, "1"), (1, "0"), (2, "X"), (3, "9"), (4, "8"), (10, "2")],
)
def test_check_char_mapping(remainder, char):
    # Only the last weight (2) is used; digit d at position 16 gives 2*d.
    # Find a 17-digit body whose weighted sum mod 11 is `remainder`.
    for d in range(10):
        for e in range(10):
            body = "0" * 15 + str(e) + str(d)  # weights 4 and 2
            if (4 * e + 2 * d) % 11 == remainder:
                assert id_check_char(body) == char
                return
    raise AssertionError("no body found")


def test_check_char_requires_17_digits():
    with pytest.raises(ValueError):
        id_check_char("1101051949123100")


# --- parse_id_number -----------------------------------------------------------------------


def test_parse_standard_sample():
    card = parse_id_number(SAMPLE_X, today=TODAY)
    assert card.number == SAMPLE_X
    assert card.region == "110105"
    assert card.birth_date == date(1949, 12, 31)
    assert card.gender == "female"  # 17th digit 2 is even


def test_parse_lowercase_x_is_uppercased_and_whitespace_stripped():
    card = parse_id_number("  11010519491231002x \n", today=TODAY)
    assert card.number == SAMPLE_X


def test_parse_1880_is_accepted_1879_is_not():
    card = parse_id_number(SAMPLE_4, today=TODAY)
    assert card.birth_date == date(1880, 1, 1)
    assert card.gender == "male"  # 17th digit 1 is odd
    with pytest.raises(ValueError, match="implausibly early"):
        parse_id_number(with_check("44052418791231001"), today=TODAY)


@pytest.mark.parametrize(
    ("digit17", "gender"),
    [("0", "female"), ("1", "male"), ("2", "female"), ("7", "male"), ("8", "female")],
)
def test_gender_from_17th_digit(digit17, gender):
    card = parse_id_number(with_check("3502121945010112" + digit17), today=TODAY)
    assert card.gender == gender


def test_wrong_check_digit_rejected():
    with pytest.raises(ValueError, match="check digit"):
        parse_id_number("110105194912310021", today=TODAY)
    with pytest.raises(ValueError, match="check digit"):
        parse_id_number("440524188001010015", today=TODAY)


@pytest.mark.parametrize("birth", ["19450230", "19450229", "19451301", "19450001", "19450100"])
def test_unreal_birth_date_rejected(birth):
    with pytest.raises(ValueError, match="not a real date"):
        parse_id_number(with_check("350212" + birth + "123"), today=TODAY)


def test_leap_day_birth_accepted():
    card = parse_id_number(with_check("35021219440229123"), today=TODAY)
    assert card.birth_date == date(1944, 2, 29)


def test_future_birth_date_rejected_today_accepted():
    tomorrow = TODAY + timedelta(days=1)
    with pytest.raises(ValueError, match="future"):
        parse_id_number(with_check("350212" + tomorrow.strftime("%Y%m%d") + "001"), today=TODAY)
    card = parse_id_number(with_check("350212" + TODAY.strftime("%Y%m%d") + "001"), today=TODAY)
    assert card.birth_date == TODAY


@pytest.mark.parametrize("province", ["00", "10", "19", "20", "39", "47", "55", "66", "72", "99"])
def test_unknown_province_rejected(province):
    assert province not in PROVINCES
    with pytest.raises(ValueError, match="unknown province"):
        parse_id_number(with_check(province + "0212194501011234"[:15]), today=TODAY)


def test_fifteen_character_numbers_rejected():
    with pytest.raises(ValueError, match="18 characters"):
        parse_id_number("110105491231002", today=TODAY)


@pytest.mark.parametrize(
    "raw",
    [
        "1101051949123100XX",  # X before the last position
        "11010519491231A02X",
        "11010519491231002Y",
        "1101051949 231002X",
        "-1010519491231002X",
        "",
        "11010519491231002X1",
    ],
)
def test_malformed_rejected(raw):
    with pytest.raises(ValueError):
        parse_id_number(raw, today=TODAY)


def test_fullwidth_digits_are_folded_to_the_same_number():
    # Chinese input methods type full-width digits; they must not make a second identity.
    raw = SAMPLE_X[:6] + "１９４９" + SAMPLE_X[10:-1] + "ｘ"
    assert parse_id_number(raw, today=TODAY).number == SAMPLE_X


def test_other_scripts_digits_rejected():
    raw = SAMPLE_X[:6] + "١٩٤٩" + SAMPLE_X[10:]
    with pytest.raises(ValueError):
        parse_id_number(raw, today=TODAY)


# --- hypothesis: ID numbers ----------------------------------------------------------------

_REGIONS = sorted(PROVINCES)


@st.composite
def valid_id_numbers(draw) -> str:
    province = draw(st.sampled_from(_REGIONS))
    rest = draw(st.text("0123456789", min_size=4, max_size=4))
    born = draw(st.dates(min_value=date(1880, 1, 1), max_value=TODAY))
    seq = draw(st.text("0123456789", min_size=3, max_size=3))
    return with_check(province + rest + born.strftime("%Y%m%d") + seq)


@given(valid_id_numbers())
def test_any_valid_number_parses(number):
    card = parse_id_number(number, today=TODAY)
    assert card.number == number
    assert card.region == number[:6]
    assert card.birth_date.strftime("%Y%m%d") == number[6:14]
    assert card.gender == ("male" if int(number[16]) % 2 else "female")
    assert parse_id_number(number.lower(), today=TODAY) == card


@given(valid_id_numbers(), st.integers(0, 17), st.data())
def test_any_single_character_mutation_rejected(number, pos, data):
    alphabet = "0123456789X" if pos == 17 else "0123456789"
    new = data.draw(st.sampled_from([c for c in alphabet if c != number[pos]]))
    mutated = number[:pos] + new + number[pos + 1 :]
    with pytest.raises(ValueError):
        parse_id_number(mutated, today=TODAY)


@given(st.text(max_size=30))
def test_arbitrary_text_raises_only_value_error(raw):
    try:
        card = parse_id_number(raw, today=TODAY)
    except ValueError:
        return
    assert len(card.number) == 18


# --- age_on --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (date(1945, 6, 15), date(2025, 6, 14), 79),
        (date(1945, 6, 15), date(2025, 6, 15), 80),
        (date(1945, 6, 15), date(2025, 6, 16), 80),
        (date(1945, 12, 31), date(2025, 1, 1), 79),
        (date(1945, 1, 1), date(2024, 12, 31), 79),
        (date(1944, 2, 29), date(2025, 2, 28), 80),
        (date(1944, 2, 29), date(2025, 3, 1), 81),
        (date(1944, 2, 29), date(2024, 2, 28), 79),
        (date(1944, 2, 29), date(2024, 2, 29), 80),
        (date(2025, 6, 15), date(2025, 6, 15), 0),
    ],
)
def test_age_on(birth, day, age):
    assert age_on(birth, day) == age


# --- masking and phones --------------------------------------------------------------------


def test_mask_id_number():
    assert mask_id_number("350212194501011234") == "3502**********1234"
    assert mask_id_number(SAMPLE_X) == "1101**********002X"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("13812345678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("199 0000 1111", "19900001111"),
        ("0592-1234567", "0592-1234567"),
        ("(0592) 1234567", "05921234567"),
        ("010-12345678", "010-12345678"),
    ],
)
def test_normalize_phone_accepts(raw, normal):
    assert normalize_phone(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "12812345678",  # second digit must be 3-9
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "+8713812345678",
        "0592-12345",
        "592-1234567",
        "abc",
        "",
    ],
)
def test_normalize_phone_rejects(raw):
    with pytest.raises(ValueError):
        normalize_phone(raw)


def test_normalize_phone_rejects_fullwidth_digits():
    try:
        result = normalize_phone("138１２３４５６７８")
    except ValueError:
        return
    assert result == "13812345678"


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("010-12345678") == "010-****5678"
    assert mask_phone("1234567") == "*******"
    assert mask_phone("") == ""


def test_mask_phone_keeps_four_digit_area_code():
    assert mask_phone("0592-1234567").startswith("0592")


# --- PiiCipher -----------------------------------------------------------------------------


@pytest.fixture
def cipher() -> PiiCipher:
    return PiiCipher("enc-secret", "hash-secret")


def test_cipher_round_trip_and_layout(cipher):
    blob = cipher.encrypt(SAMPLE_X, context=b"elder:1")
    assert blob[:1] == b"\x01"
    assert len(blob) == 1 + 12 + len(SAMPLE_X) + 16
    assert SAMPLE_X.encode() not in blob
    assert cipher.decrypt(blob, context=b"elder:1") == SAMPLE_X


def test_cipher_round_trip_unicode(cipher):
    assert cipher.decrypt(cipher.encrypt("张三 13812345678")) == "张三 13812345678"


def test_cipher_context_binding(cipher):
    blob = cipher.encrypt(SAMPLE_X, context=b"elder:1")
    with pytest.raises(InvalidTag):
        cipher.decrypt(blob, context=b"elder:2")
    with pytest.raises(InvalidTag):
        cipher.decrypt(blob)


def test_cipher_other_key_fails(cipher):
    blob = cipher.encrypt(SAMPLE_X)
    with pytest.raises(InvalidTag):
        PiiCipher("other-secret", "hash-secret").decrypt(blob)


def test_cipher_tamper_and_version(cipher):
    blob = bytearray(cipher.encrypt(SAMPLE_X))
    blob[-1] ^= 1
    with pytest.raises(InvalidTag):
        cipher.decrypt(bytes(blob))
    with pytest.raises(ValueError, match="version"):
        cipher.decrypt(b"\x02" + bytes(blob[1:]))


def test_cipher_ciphertexts_differ_for_same_value(cipher):
    blobs = {cipher.encrypt(SAMPLE_X) for _ in range(5)}
    assert len(blobs) == 5
    assert {cipher.decrypt(b) for b in blobs} == {SAMPLE_X}


def test_lookup_hash_deterministic_and_key_dependent(cipher):
    h = cipher.lookup_hash(SAMPLE_X)
    assert len(h) == 32
    assert h == cipher.lookup_hash(SAMPLE_X)
    assert h == PiiCipher("another-enc-secret", "hash-secret").lookup_hash(SAMPLE_X)
    assert h != PiiCipher("enc-secret", "other-hash-secret").lookup_hash(SAMPLE_X)
    assert h != cipher.lookup_hash(SAMPLE_4)


@given(st.text(max_size=50), st.binary(max_size=16))
def test_cipher_round_trip_property(value, context):
    c = PiiCipher("k1", "k2")
    assert c.decrypt(c.encrypt(value, context=context), context=context) == value
