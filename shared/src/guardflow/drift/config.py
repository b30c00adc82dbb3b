"""Configuration of a drift check: which columns, which test, which threshold.

One :class:`DriftConfig` serves the native engine, the Evidently engine, the CLI (``--config``) and
both orchestrators. Everything left unset follows Evidently's defaults: the test is chosen per
column from its type, its number of unique values and the reference size, with that test's default
threshold.

Examples:
    >>> config = DriftConfig(per_column={"age": ColumnOverride(method="psi", threshold=0.2)})
    >>> config.override_for("age").method
    'psi'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guardflow.errors import ConfigurationError

__all__ = ["METHODS", "ColumnOverride", "DriftConfig", "MethodName"]

MethodName = Literal[
    "ks",
    "chisquare",
    "z",
    "wasserstein",
    "jensenshannon",
    "psi",
    "hellinger",
    "chisquare_2sample",
]
"""Test names: Evidently's registry names, plus ``chisquare_2sample`` (ours)."""

METHODS: tuple[str, ...] = (
    "ks",
    "chisquare",
    "z",
    "wasserstein",
    "jensenshannon",
    "psi",
    "hellinger",
    "chisquare_2sample",
)


class ColumnOverride(BaseModel):
    """Test and threshold for one column; ``None`` keeps the config-wide or default choice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: MethodName | None = Field(None, description="Test to run on this column.")
    threshold: float | None = Field(None, ge=0, description="Threshold of that test.")


class DriftConfig(BaseModel):
    """What a drift check compares and how.

    Attributes:
        columns: Columns to compare. ``None`` compares the columns both inputs have (a column
            present on one side only is then skipped and named in the report's ``skipped``);
            a list makes every named column required on both sides.
        categorical: Columns forced to categorical, whatever their type.
        numerical: Columns forced to numerical (their values must be numbers).
        method: Test for every column (unless ``per_column`` says otherwise).
        threshold: Threshold for every column (unless ``per_column`` says otherwise).
        per_column: Per-column test and threshold overrides.
        drift_share: The dataset drifts when at least this share of columns drifted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str] | None = Field(None, description="Columns to compare (default: common).")
    categorical: list[str] = Field(default_factory=list, description="Force categorical.")
    numerical: list[str] = Field(default_factory=list, description="Force numerical.")
    method: MethodName | None = Field(None, description="Test for every column.")
    threshold: float | None = Field(None, ge=0, description="Threshold for every column.")
    per_column: dict[str, ColumnOverride] = Field(
        default_factory=dict, description="Per-column method/threshold overrides."
    )
    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted columns for drift.")

    @model_validator(mode="after")
    def _disjoint_types(self) -> DriftConfig:
        both = sorted(set(self.categorical) & set(self.numerical))
        if both:
            raise ValueError(f"columns listed as both categorical and numerical: {both}")
        return self

    def override_for(self, column: str) -> ColumnOverride:
        """Return the effective method/threshold override of ``column`` (fields may be None)."""
        own = self.per_column.get(column)
        return ColumnOverride(
            method=own.method if own and own.method else self.method,
            threshold=own.threshold if own and own.threshold is not None else self.threshold,
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> DriftConfig:
        """Load a config from a YAML file (the same keys as the constructor).

        Raises:
            ConfigurationError: The file is missing or does not validate.

        Examples:
            A file ``drift.yaml``::

                columns: [age, income, country]
                threshold: 0.2
                per_column:
                  country: {method: chisquare_2sample, threshold: 0.01}
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            return cls.model_validate(data)
        except FileNotFoundError as exc:
            raise ConfigurationError(f"drift config file {str(path)!r} not found") from exc
        except ValidationError as exc:
            raise ConfigurationError.from_validation(
                exc, what=f"drift config {str(path)!r}"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"invalid drift config {str(path)!r}: {exc}") from exc
