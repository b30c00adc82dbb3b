"""Pattern detection per entity type: positives, hard negatives, offsets, context, overlaps."""

from __future__ import annotations

import itertools

import pytest

from guardflow.pii import Detector, Entity, EntityType, detect

T = EntityType


def luhn_complete(prefix: str, length: int) -> str:
    """Pad ``prefix`` with 0-9 cycling digits and append the Luhn check digit."""
    body = (prefix + "".join(str(i % 10) for i in range(length)))[: length - 1]
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def iban(country: str, bban: str) -> str:
    """Build an IBAN with correct mod-97 check digits."""
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


def found(text: str, **kwargs: object) -> list[tuple[str, str]]:
    """(type, matched text) pairs."""
    return [(e.type.value, text[e.start : e.end]) for e in detect(text, **kwargs)]  # type: ignore[arg-type]


def test_entity_is_frozen_with_code_point_offsets() -> None:
    e = Entity(T.EMAIL_ADDRESS, 1, 4, 0.9)
    with pytest.raises(AttributeError):
        e.start = 2  # type: ignore[misc]
    assert e.to_dict() == {"type": "EMAIL_ADDRESS", "start": 1, "end": 4, "score": 0.9}


def test_entity_type_names_match_presidio() -> None:
    assert {t.value for t in T} >= {
        "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
        "URL", "MAC_ADDRESS", "CRYPTO", "PERSON", "LOCATION", "ORGANIZATION",
    }  # fmt: skip


def test_email() -> None:
    assert found("mail jane.doe+x@mail.example.co.uk now") == [
        ("EMAIL_ADDRESS", "jane.doe+x@mail.example.co.uk")
    ]


@pytest.mark.parametrize(
    ("prefix", "length"),
    [("4", 16), ("4", 13), ("51", 16), ("2221", 16), ("2720", 16), ("37", 15), ("6011", 16),
     ("3530", 16), ("36", 14), ("62", 19), ("6759", 18)],
)  # fmt: skip
def test_card_brands(prefix: str, length: int) -> None:
    number = luhn_complete(prefix, length)
    assert found(f"paid with {number} today") == [("CREDIT_CARD", number)]


def test_card_with_spaces_and_dashes() -> None:
    n = luhn_complete("2223", 16)
    spaced = " ".join(n[i : i + 4] for i in range(0, 16, 4))
    dashed = "-".join(n[i : i + 4] for i in range(0, 16, 4))
    assert found(f"card {spaced}.") == [("CREDIT_CARD", spaced)]
    assert found(f"card {dashed}.") == [("CREDIT_CARD", dashed)]


def test_card_trailing_group_is_trimmed() -> None:
    n = luhn_complete("4", 16)
    spaced = " ".join(n[i : i + 4] for i in range(0, 16, 4))
    assert found(f"card {spaced} 12 25")[0] == ("CREDIT_CARD", spaced)


def test_luhn_invalid_card_is_not_detected() -> None:
    n = luhn_complete("4", 16)
    bad = n[:-1] + str((int(n[-1]) + 1) % 10)
    assert found(f"card {bad}") == []


def test_luhn_valid_number_without_brand_prefix_is_not_a_card() -> None:
    assert found(f"ref {luhn_complete('99', 16)}") == []


def test_iban_plain_spaced_and_lowercase() -> None:
    code = iban("GB", "WEST12345698765432")
    spaced = " ".join(code[i : i + 4] for i in range(0, len(code), 4))
    assert found(f"IBAN {code}") == [("IBAN_CODE", code)]
    assert found(f"IBAN {spaced} to my bank") == [("IBAN_CODE", spaced)]
    assert found(f"iban {code.lower()}") == [("IBAN_CODE", code.lower())]
    de = iban("DE", "370400440532013000")
    assert found(de) == [("IBAN_CODE", de)]


def test_iban_bad_checksum_or_length() -> None:
    code = iban("GB", "WEST12345698765432")
    bad = code[:2] + f"{(int(code[2:4]) + 1) % 100:02d}" + code[4:]
    assert found(f"IBAN {bad}") == []
    assert found(f"IBAN {iban('GB', 'WEST1234569876543')}") == []  # 21 chars, GB needs 22


def test_ssn_dashed_and_rules() -> None:
    assert found("SSN 536-22-1234") == [("US_SSN", "536-22-1234")]
    for bad in ("000-22-1234", "666-22-1234", "912-22-1234", "536-00-1234", "536-22-0000"):
        assert found(f"SSN {bad}") == [], bad


def test_bare_ssn_needs_context() -> None:
    assert found("my ssn is 536221234") == [("US_SSN", "536221234")]
    assert found("social security no 536 22 1234") == [("US_SSN", "536 22 1234")]
    assert found("see 536221234") == []
    assert found("order 536221234") == []


def test_context_raises_score() -> None:
    plain = Detector([T.US_SSN]).detect("x 536-22-1234")
    hot = Detector([T.US_SSN]).detect("ssn 536-22-1234")
    assert hot[0].score > plain[0].score
    off = Detector([T.US_SSN], context=False).detect("ssn 536221234")
    assert off == []


def test_ipv4_and_ipv6() -> None:
    assert found("from 192.168.10.254:") == [("IP_ADDRESS", "192.168.10.254")]
    assert found("peer 2001:db8::8a2e:370:7334.") == [("IP_ADDRESS", "2001:db8::8a2e:370:7334")]
    assert found("host fe80:0:0:0:202:b3ff:fe1e:8329 up") == [
        ("IP_ADDRESS", "fe80:0:0:0:202:b3ff:fe1e:8329")
    ]


@pytest.mark.parametrize(
    "text",
    ["version 1.2.3.4", "v1.2.3.4", "1.2.3.4.5", "999.1.1.1", "at 10:20:30", "std::vector a::b",
     "at 10:20::"],
)  # fmt: skip
def test_ip_hard_negatives(text: str) -> None:
    assert [t for t, _ in found(text)] == []


def test_valid_ip_is_never_a_phone() -> None:
    assert found("call 203.0.113.45") == [("IP_ADDRESS", "203.0.113.45")]


def test_url_and_www() -> None:
    assert found("see https://example.com/a?b=c).") == [("URL", "https://example.com/a?b=c")]
    assert found("at www.example.org/page, ok") == [("URL", "www.example.org/page")]
    assert found("file notes.txt and config.yaml") == []


def test_url_wins_over_contained_email_or_ip() -> None:
    text = "http://192.168.1.1/login?u=jane@example.org"
    assert found(text) == [("URL", text)]


def test_mac() -> None:
    for mac in ("00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e"):
        assert found(f"mac {mac}") == [("MAC_ADDRESS", mac)]


def test_bitcoin_addresses() -> None:
    for addr in (
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
    ):
        assert found(f"send to {addr}") == [("CRYPTO", addr)]
    assert found("send to 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3") == []
    assert found("send to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr") == []


def test_secrets() -> None:
    jwt = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END RSA PRIVATE KEY-----"
    samples = [
        "AKIA" + "ABCDEFGHIJKLMNOP",
        "ghp_" + "a1" * 18,
        "github_pat_" + "A" * 30,
        "xoxb-" + "1234567890-abcdefghij",
        jwt,
        pem,
    ]
    for s in samples:
        assert found(f"key: {s} end") == [("SECRET", s)], s[:8]


def test_secret_lookalikes() -> None:
    assert found("AKIA123") == []
    assert found("eyJhbGciOi.notjwt.x") == []
    assert found("ghp_short") == []


def test_phone_formats() -> None:
    for p in ("(415) 555-2671", "415-555-2671", "+1 415 555 2671", "+44 20 7946 0958",
              "+49 30 12345678", "+33 1 42 68 53 00"):  # fmt: skip
        assert found(f"reach me: {p}") == [("PHONE_NUMBER", p)], p


def test_bare_phone_needs_context() -> None:
    assert found("Fax: 4155552671") == [("PHONE_NUMBER", "4155552671")]
    assert found("id 4155552671") == []


@pytest.mark.parametrize(
    "text",
    ["on 2024-01-15 10:30:00", "born 12/05/1990", "ISBN 978-3-16-148410-0", "ts 1700000000000",
     "order 4155552671", "price 1,234,567.89", "build 20240115.1", "zip 94105-1234"],
)  # fmt: skip
def test_numeric_hard_negatives(text: str) -> None:
    assert found(text) == []


def test_offsets_are_code_points_after_non_ascii() -> None:
    text = "Grüße 👋🏽 из Москвы: jane@example.org ☎ +44 20 7946 0958"
    ents = detect(text)
    assert [text[e.start : e.end] for e in ents] == ["jane@example.org", "+44 20 7946 0958"]
    assert ents[0].start == text.index("jane")


def test_entities_filter_and_min_score() -> None:
    text = "jane@example.org 10.0.0.1"
    assert [e.type for e in Detector([T.IP_ADDRESS]).detect(text)] == [T.IP_ADDRESS]
    assert Detector(min_score=1.01).detect(text) == []


def test_results_sorted_and_non_overlapping() -> None:
    n = luhn_complete("4", 16)
    text = f"card {n} ip 10.1.2.3 mail a@b.io ssn 536-22-1234 url https://x.io/{n}"
    ents = detect(text)
    assert ents == sorted(ents, key=lambda e: e.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(ents))
    assert [e.type for e in ents][-1] is T.URL
