"""The failure policy shared by every check step on both orchestrators."""

from __future__ import annotations

import pytest

from guardflow.checks import FAILURE_POLICIES, name_list, validate_on_failure
from guardflow.errors import ConfigurationError


@pytest.mark.parametrize("policy", ["fail", "warn", "skip"])
def test_each_documented_policy_is_accepted(policy: str) -> None:
    assert validate_on_failure(policy) == policy
    assert policy in FAILURE_POLICIES


def test_an_unknown_policy_is_a_configuration_error_listing_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"\['fail', 'warn', 'skip'\], not 'ignore'"):
        validate_on_failure("ignore")


def test_long_name_lists_are_shortened_with_a_count() -> None:
    names = [f"c{i}" for i in range(25)]

    assert name_list(names[:3]) == "c0, c1, c2"
    assert name_list(names).endswith("c19, ... and 5 more")
