"""Entity types and detected entities of :mod:`guardflow.pii`.

Type names are Presidio's, so a user can switch engines without renaming anything in a policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["NER_TYPES", "PATTERN_TYPES", "Entity", "EntityType"]


class EntityType(str, Enum):
    """A kind of personal or sensitive data, named as Presidio names it.

    The pattern types are detected by the regex engine; ``PERSON``, ``LOCATION`` and
    ``ORGANIZATION`` need the optional NER stage (``ner`` extra).

    Examples:
        >>> EntityType("US_SSN") is EntityType.US_SSN
        True
    """

    EMAIL_ADDRESS = "EMAIL_ADDRESS"
    PHONE_NUMBER = "PHONE_NUMBER"
    CREDIT_CARD = "CREDIT_CARD"
    IBAN_CODE = "IBAN_CODE"
    US_SSN = "US_SSN"
    IP_ADDRESS = "IP_ADDRESS"
    URL = "URL"
    MAC_ADDRESS = "MAC_ADDRESS"
    CRYPTO = "CRYPTO"
    SECRET = "SECRET"
    PERSON = "PERSON"
    LOCATION = "LOCATION"
    ORGANIZATION = "ORGANIZATION"

    def __str__(self) -> str:
        return self.value


#: Types found by the pattern engine (no NER needed).
PATTERN_TYPES: tuple[EntityType, ...] = (
    EntityType.EMAIL_ADDRESS,
    EntityType.PHONE_NUMBER,
    EntityType.CREDIT_CARD,
    EntityType.IBAN_CODE,
    EntityType.US_SSN,
    EntityType.IP_ADDRESS,
    EntityType.URL,
    EntityType.MAC_ADDRESS,
    EntityType.CRYPTO,
    EntityType.SECRET,
)

#: Types found only by the optional NER stage.
NER_TYPES: tuple[EntityType, ...] = (
    EntityType.PERSON,
    EntityType.LOCATION,
    EntityType.ORGANIZATION,
)


@dataclass(frozen=True, slots=True)
class Entity:
    """One detected entity: its type and where it is in the text.

    Attributes:
        type: The entity type.
        start: Offset of the first character, in Unicode code points (Python ``str`` indices).
        end: Offset one past the last character (exclusive), in code points.
        score: Confidence in ``[0, 1]``.

    Examples:
        >>> text = "mail me: a@b.io"
        >>> e = Entity(EntityType.EMAIL_ADDRESS, 9, 15, 1.0)
        >>> text[e.start : e.end]
        'a@b.io'
    """

    type: EntityType
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, object]:
        """Return the entity as a JSON-ready dict (``type`` as its string name).

        Returns:
            ``{"type": ..., "start": ..., "end": ..., "score": ...}``.
        """
        return {"type": self.type.value, "start": self.start, "end": self.end, "score": self.score}
