"""Shortcuts the detector takes must give what the full rule gives.

Each test below compares a fast path with the rule it stands in for: the IPv4 check with
``ipaddress``; the bech32 checksum table and the IBAN letter numbering with the loops they
replace; the card-brand pre-check with every leading run it stands for; the clause cut, which
scans from the last space before a boundary character, with the boundary regex run in full;
each pattern behind its first-character look-ahead with the plain pattern.
"""

from __future__ import annotations

import ipaddress
import itertools
import re

import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st

from guardflow.pii import _checks, _context, _validators
from guardflow.pii._patterns import PATTERNS, PatternSpec, python_regex
from guardflow.pii._validators import card_brand_ok, card_lengths, is_bitcoin, is_iban, is_ip

FAST = settings(max_examples=2000, deadline=None, derandomize=True)


def _ipaddress_says(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


# Octets on both sides of every IPv4 rule: leading zeros, 255/256, one to three digits.
_OCTETS = ["0", "00", "000", "01", "007", "1", "9", "10", "99", "100", "199", "249", "255",
           "256", "260", "300", "999"]  # fmt: skip


def test_ipv4_fast_path_agrees_with_ipaddress_on_every_octet_mix() -> None:
    quads = [".".join(q) for q in itertools.product(_OCTETS[::2], _OCTETS[1::2], _OCTETS, "08")]
    quads += ["255.255.255.255", "0.0.0.0", "256.1.1.1", "1.2.3.4%eth0", "01.2.3.4"]
    disagree = [q for q in quads if is_ip(q) != _ipaddress_says(q)]
    assert disagree == []
    assert is_ip("192.168.0.1") and not is_ip("192.168.00.1") and not is_ip("1.2.3.256")


@given(
    st.from_regex(
        r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(%[a-z0-9]{1,4})?", fullmatch=True
    )
)
@FAST
def test_ipv4_fast_path_agrees_with_ipaddress(text: str) -> None:
    assert is_ip(text) == _ipaddress_says(text)


@given(st.text(alphabet="0123456789", min_size=12, max_size=19))
@FAST
def test_card_lengths_say_what_card_brand_ok_says(digits: str) -> None:
    assert card_brand_ok(digits) == (len(digits) in card_lengths(digits))


@given(st.text(alphabet="0123456789", min_size=0, max_size=24))
@FAST
def test_brand_pre_check_passes_whenever_a_leading_run_fits_a_brand(digits: str) -> None:
    runs = [digits[:n] for n in range(12, min(19, len(digits)) + 1)]
    assert _checks._brand_fits(digits) == any(card_brand_ok(run) for run in runs)


def test_brand_pre_check_on_known_prefixes() -> None:
    assert _checks._brand_fits("2221000000000009")  # Mastercard 2-series, 16 digits
    assert not _checks._brand_fits("222100000000000")  # 15 digits: no Mastercard
    assert _checks._brand_fits("4111111111111")  # Visa, 13 digits
    assert not _checks._brand_fits("9999999999999999")  # no brand starts with 99


def _clause_before_in_full(text: str, start: int) -> tuple[str, int]:
    lo = max(0, start - _context.BEFORE_WINDOW)
    before = text[lo:start]
    cut = 0
    for m in _context._BOUNDARY_RE.finditer(before):
        cut = m.end()
    return before[cut:], lo + cut


@given(
    st.text(alphabet=st.sampled_from(list("ab Tel no.:;|!?\n\r5-ü/")), max_size=120),
    st.integers(min_value=0, max_value=120),
)
@FAST
def test_clause_cut_skip_agrees_with_the_full_scan(text: str, start: int) -> None:
    start = min(start, len(text))
    assert _context._clause_before(text, start) == _clause_before_in_full(text, start)


def _polymod_bit_by_bit(values: list[int]) -> int:
    # BIP 173's reference loop: one generator term per set bit of the top five.
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= gen[i]
    return chk


@given(st.lists(st.integers(min_value=0, max_value=31), max_size=100))
@FAST
def test_bech32_table_gives_the_reference_checksum(values: list[int]) -> None:
    assert _validators._bech32_polymod(values) == _polymod_bit_by_bit(values)


def test_bech32_addresses_from_bip173_and_bip350() -> None:
    assert is_bitcoin("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")  # BIP 173, witness v0
    assert is_bitcoin("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0")  # BIP 350
    assert not is_bitcoin("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5")  # one character off


def _int36(text: str) -> int:
    # ISO 13616's numbering, one int() per character: the loop str.translate replaces.
    return int("".join(str(int(c, 36)) for c in text))


@given(
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=30, max_size=30),
    st.integers(min_value=-1, max_value=1),
)
@FAST
def test_iban_letters_number_as_int36_does(chars: str, off: int) -> None:
    for country in ("DE", "GB", "FR", "NO"):
        length = _validators.IBAN_LENGTHS[country]
        bban = chars[: length - 4 + off]  # the country's length, or one character off
        good = 98 - _int36(bban + country + "00") % 97
        for check in (good, good % 97 + 1):  # right check digits, then wrong ones
            candidate = f"{country}{check:02d}{bban}"
            mod97_ok = _int36(bban + candidate[:4]) % 97 == 1
            assert mod97_ok == (check == good)
            assert is_iban(candidate) == (off == 0 and mod97_ok)


_WITH_FIRST = [spec for spec in PATTERNS if spec.first is not None]


def test_some_shapes_have_a_first_character_class() -> None:
    assert {spec.name for spec in _WITH_FIRST} >= {"phone", "card"}


@pytest.mark.parametrize("spec", _WITH_FIRST, ids=lambda spec: spec.name)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("0123456789 +()-.:xefABFK\u017f\u212a\u0300\u0663ext")),
        max_size=80,
    )
)
@FAST
def test_first_character_look_ahead_finds_the_same_matches(spec: PatternSpec, text: str) -> None:
    plain = [m.span() for m in re.finditer(spec.regex, text)]
    assert [m.span() for m in re.finditer(python_regex(spec), text)] == plain
