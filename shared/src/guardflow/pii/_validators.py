"""Exact validators run on regex candidates: checksums and structural rules.

Each validator takes the candidate text and returns ``True`` when it is a well-formed value of
its type. They never raise on malformed input.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

__all__ = [
    "IBAN_LENGTHS",
    "card_brand_ok",
    "card_lengths",
    "digits_of",
    "is_bitcoin",
    "is_hyphenated_isbn",
    "is_iban",
    "is_ip",
    "is_ssn",
    "luhn_ok",
]

#: IBAN length per country (SWIFT IBAN registry, plus the widely used partner countries).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
    # Partner countries that use IBANs in the French / other national formats.
    "DZ": 26, "AO": 25, "BJ": 28, "BF": 28, "CM": 27, "CV": 25, "CF": 27, "TD": 27, "KM": 27,
    "CG": 27, "CI": 28, "GA": 27, "GQ": 27, "GW": 25, "HN": 28, "IR": 26, "MG": 27, "ML": 28,
    "MA": 28, "MZ": 25, "NE": 28, "SN": 28, "TG": 28,
}  # fmt: skip

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3


_NON_DIGIT = re.compile(r"[^0-9]+")


def digits_of(text: str) -> str:
    """Return the ASCII digits of ``text`` (separators dropped)."""
    return _NON_DIGIT.sub("", text)


def luhn_ok(digits: str) -> bool:
    """Return whether a digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand_ok(digits: str) -> bool:
    """Return whether a digit string has the IIN prefix and a length of a major card brand.

    Brands: Visa, Mastercard (51-55 and the 2-series 2221-2720), American Express, Discover,
    Diners Club, JCB, UnionPay, Maestro, Mir, RuPay/Troy (60, 65, 81, 82), Verve (50).
    """
    n = len(digits)
    return 12 <= n <= 19 and n in card_lengths(digits)


_ANY_12_19 = range(12, 20)
_14_19 = range(14, 20)
_16_19 = range(16, 20)


def card_lengths(digits: str) -> tuple[int, ...] | range:
    """The lengths the card brand whose IIN prefix ``digits`` starts with allows (empty: none).

    Only the first six digits count, so for a number of 12+ digits the answer holds for every
    longer or shorter number with the same start.
    """
    p2 = int(digits[:2])
    p3 = int(digits[:3])
    p4 = int(digits[:4])
    if digits[0] == "4":  # Visa (13, 16, 19), Visa Electron
        return (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return (16,)
    if p2 in (34, 37):  # American Express
        return (15,)
    if p2 in (36, 38, 39) or 300 <= p3 <= 305 or p4 == 3095:  # Diners Club
        return _14_19
    if p2 == 35:  # JCB (3528-3589; the rest of 35 is unassigned but seen in test data)
        return _16_19
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= int(digits[:6]) <= 622925:
        return _16_19  # Discover
    if p2 == 62 or p2 == 81:  # UnionPay
        return _16_19
    if 2200 <= p4 <= 2204:  # Mir
        return _16_19
    if p2 in (50, 56, 57, 58, 60, 63, 67, 68, 69) or p4 in (6304, 6759, 6761, 6762, 6763):
        return _ANY_12_19  # Maestro, Verve, RuPay, Troy (Maestro allows 12 digits)
    if p4 in (1800, 2131):  # old JCB
        return (15,)
    return ()


#: Letters as ISO 13616 numbers them (A = 10 ... Z = 35); digits stay themselves.
_BASE36_DIGITS = str.maketrans({chr(ord("A") + i): str(10 + i) for i in range(26)})


def is_iban(text: str) -> bool:
    """Return whether ``text`` (spaces allowed, any case) is an IBAN: country length and mod-97."""
    s = "".join(text.split()).upper()
    if len(s) < 15 or not s.isascii() or not s.isalnum():
        return False
    length = IBAN_LENGTHS.get(s[:2])
    if length is None or len(s) != length or not s[2:4].isdigit():
        return False
    rearranged = s[4:] + s[:4]
    return int(rearranged.translate(_BASE36_DIGITS)) % 97 == 1


def is_ssn(text: str) -> bool:
    """Return whether ``text`` is a possible US SSN.

    Area not 000, 666 or 9xx; group not 00; serial not 0000.

    Also rejects the all-same-digit and the well-known advertising numbers (078-05-1120,
    219-09-9999, 123-45-6789) that are never issued.
    """
    d = digits_of(text)
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return not (len(set(d)) == 1 or d in ("078051120", "219099999", "123456789"))


_ASCII_DIGITS = frozenset("0123456789")


def is_hyphenated_isbn(text: str) -> bool:
    """Return whether ``text`` is an ISBN-10 or ISBN-13 printed with hyphens or spaces.

    Printed ISBNs have three to five groups, the last of them the single check character, and
    a valid check (mod 11 for ISBN-10, weights 1 and 3 for ISBN-13 with a 978/979 prefix):
    such a number is a book, not a phone number.
    """
    groups = [g for g in text.replace(" ", "-").split("-") if g]
    if not 3 <= len(groups) <= 5 or len(groups[-1]) != 1:
        return False
    chars = "".join(groups)
    if not set(chars[:-1]) <= _ASCII_DIGITS or chars[-1] not in "0123456789xX":
        return False  # str.isdigit() also takes "²", which int() refuses
    if len(chars) == 10:
        total = sum((10 - i) * int(c) for i, c in enumerate(chars[:9]))
        total += 10 if chars[9] in "xX" else int(chars[9])
        return total % 11 == 0
    if len(chars) == 13 and chars[-1] not in "xX" and chars[:3] in ("978", "979"):
        return sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(chars)) % 10 == 0
    return False


_DOTTED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


def is_ip(text: str) -> bool:
    """Return whether ``text`` is a valid IPv4 or IPv6 address (IPv6 may carry a zone id)."""
    addr = text.split("%", 1)[0]
    if _DOTTED.fullmatch(addr):  # the IPv4 rules of ``ipaddress``, without its objects
        return all(len(o) == 1 or (o[0] != "0" and int(o) <= 255) for o in addr.split("."))
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        return False
    return True


def _b58decode(text: str) -> bytes | None:
    num = 0
    for c in text:
        i = _B58_INDEX.get(c)
        if i is None:
            return None
        num = num * 58 + i
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\x00" * pad + body


def _is_base58check_address(text: str) -> bool:
    raw = _b58decode(text)
    if raw is None or len(raw) != 25 or raw[0] not in (0x00, 0x05, 0x6F, 0xC4):
        return False
    payload, check = raw[:-4], raw[-4:]
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == check


_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_terms() -> tuple[int, ...]:
    """For each value of the checksum's top five bits, the XOR of the generator terms it adds."""
    terms = []
    for top in range(32):
        term = 0
        for i, gen in enumerate(_BECH32_GEN):
            if top >> i & 1:
                term ^= gen
        terms.append(term)
    return tuple(terms)


_BECH32_TERMS = _bech32_terms()


def _bech32_polymod(values: list[int]) -> int:
    chk = 1
    terms = _BECH32_TERMS
    for v in values:
        chk = ((chk & 0x1FFFFFF) << 5) ^ v ^ terms[chk >> 25]
    return chk


def _is_segwit_address(text: str) -> bool:
    if text.lower() != text and text.upper() != text:
        return False
    s = text.lower()
    pos = s.rfind("1")
    hrp, data_part = s[:pos], s[pos + 1 :]
    if hrp not in ("bc", "tb") or not 6 <= len(data_part) <= 87:
        return False
    data = [_BECH32_INDEX.get(c, -1) for c in data_part]
    if min(data) < 0:
        return False
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    const = _bech32_polymod(expanded + data)
    version = data[0]
    if version > 16:
        return False
    # Witness v0 uses bech32 (BIP 173); v1+ (taproot) uses bech32m (BIP 350).
    return const == (_BECH32_CONST if version == 0 else _BECH32M_CONST)


def is_bitcoin(text: str) -> bool:
    """Return whether ``text`` is a Bitcoin address with a valid checksum.

    Legacy P2PKH/P2SH (base58check, main and test net) and segwit (bech32 for witness v0,
    bech32m for v1+).
    """
    if not 14 <= len(text) <= 90:
        return False
    if text[:3].lower() in ("bc1", "tb1"):
        return _is_segwit_address(text)
    return _is_base58check_address(text)
