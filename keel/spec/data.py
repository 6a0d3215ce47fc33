"""The `data` and `split` sections: where the rows come from, the target, every feature with its
valid values, the sensitive attributes, and how the rows are split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple, Union

from pydantic import Field, field_validator, model_validator

from keel.spec.base import Seed, StrictModel
from keel.spec.reading import CsvReading
from keel.spec.screening import ScreeningSpec


# The generator's features that `covariate_shift` can move. Here rather than in keel.data.generator so
# that validating a spec does not import pandas and numpy (about 0.35 s of `run.py validate`'s 0.55 s).
SHIFTABLE = ("income", "loan_amount", "credit_utilization", "debt_to_income",
             "credit_history_years", "num_late_payments_2y", "savings_balance", "employment_years")


class GeneratorSource(StrictModel):
    """keel's embedded, seeded generator of credit applications."""

    kind: Literal["generator"]
    rows: int = Field(gt=0, le=50_000_000)
    seed: Seed = 0
    historical_bias: float = Field(0.0, ge=0.0, le=5.0)
    covariate_shift: float = Field(0.0, ge=0.0, le=10.0)
    shifted_features: List[str] = Field(default_factory=lambda: ["income", "credit_utilization"])
    concept_shift: float = Field(0.0, ge=0.0, le=1.0)
    missing_rate: float = Field(0.05, ge=0.0, le=0.5)
    start_date: str = "2024-01-01"


class FileSource(CsvReading):
    """A CSV file read with the options below, or Parquet: one file, a directory of partitions
    (`year=2024/...` folders become columns) or a glob such as `data/part-*.parquet`."""

    kind: Literal["csv", "parquet"]
    path: Path = Field(description="The file (parquet: also a directory or a glob of files); a relative path is "
                                   "read from the directory run.py is started in")

    @field_validator("path", mode="before")
    @classmethod
    def _a_path_given(cls, path):
        if isinstance(path, str) and not path.strip():  # Path("") is ".", the working directory itself
            raise ValueError("the path is empty: give the file, directory or glob to read")
        return path

    @model_validator(mode="after")
    def _csv_options_for_csv_only(self) -> "FileSource":
        given = list(self.given_options()) if self.kind == "parquet" else []
        if given:
            raise ValueError(f"{', '.join(f'`{key}`' for key in given)}: reading options of CSV files; a parquet "
                             "file carries its own column names, types and missing values (remove them, or "
                             "use kind: csv)")
        return self


class SqlSource(StrictModel):
    """The rows an SQL query returns, through SQLAlchemy (the database's driver must be installed)."""

    kind: Literal["sql"]
    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///applications.db")
    query: str = Field(description="Returns one row per example, with the spec's columns")


DataSource = Annotated[Union[FileSource, SqlSource, GeneratorSource], Field(discriminator="kind")]


def _column_name(name: Optional[str], what: str) -> Optional[str]:
    if name is not None and not name.strip():
        raise ValueError(f"the {what} is empty: give the name of a column of the data")
    return name


def _yaml_read(value: bool) -> str:
    """Why a class or category arrived as true/false: YAML 1.1 (what PyYAML reads) takes an unquoted yes, no,
    on, off, true or false, in any case, for a boolean. The data's spelling is lost then (`yes` and `true` are
    both True), so it is refused rather than guessed; left to pydantic, True would become the class 1."""
    spellings = "yes, on or true" if value else "no, off or false"
    return f"YAML read an unquoted {spellings} (any case) as the boolean {str(value).lower()}"


def _class_not_boolean(value: Any, key: str) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected the class as the target column holds it, text or a number; {_yaml_read(value)}: "
                         f"quote it, e.g. {key}: '{'yes' if value else 'no'}' (for a column of True/False: "
                         f"'{value}')")
    return value


def _categories_not_booleans(categories: Any) -> Any:
    found = [item for item in categories if isinstance(item, bool)] if isinstance(categories, list) else []
    if found:
        raise ValueError(f"expected every category as text; {_yaml_read(found[0])}: quote each as the data spells "
                         "it, e.g. categories: ['no', 'yes'] (for a column of True/False: ['False', 'True'])")
    return categories


# Numbers beyond this magnitude are refused wherever data enters (files, requests, batches), whatever the
# spec's bounds: their squares overflow float64 in scalers, variances and profiles (one 1e300 logged by the
# service stopped every later `monitor` run; 1e300 in a file crashed training as "Input X contains NaN").
LARGEST_MAGNITUDE = 1e150


class NumericFeature(StrictModel):
    type: Literal["numeric", "integer"] = Field(description="`integer`: whole numbers only (checked)")
    min: Optional[float] = Field(
        None, description="Smallest valid value (checked at validation and on every request; none: -1e150)")
    max: Optional[float] = Field(
        None, description="Largest valid value (checked at validation and on every request; none: 1e150)")
    nullable: bool = Field(False, description="Missing values are allowed (imputed by the feature pipeline)")

    @model_validator(mode="after")
    def _ordered(self) -> "NumericFeature":
        for bound in (self.min, self.max):
            if bound is not None and not abs(bound) <= LARGEST_MAGNITUDE:
                raise ValueError(f"min and max must be finite numbers within ±{LARGEST_MAGNITUDE:g} (larger ones "
                                 f"overflow in computation); found {bound}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    @property
    def bounds(self) -> Tuple[float, float]:
        """The range every value must lie in: min and max as declared, else ±LARGEST_MAGNITUDE."""
        return (-LARGEST_MAGNITUDE if self.min is None else self.min,
                LARGEST_MAGNITUDE if self.max is None else self.max)


class CategoricalFeature(StrictModel):
    type: Literal["categorical"]
    categories: List[str] = Field(
        min_length=1, description="Every valid value, as text exactly as in the data (spaces count); other values "
                                  "fail validation")
    nullable: bool = Field(False, description="Missing values are allowed")

    @field_validator("categories", mode="before")
    @classmethod
    def _not_booleans(cls, categories: Any) -> Any:
        return _categories_not_booleans(categories)

    @field_validator("categories")
    @classmethod
    def _unique(cls, categories: List[str]) -> List[str]:
        if len(set(categories)) != len(categories):
            raise ValueError("categories must be unique")
        if "" in categories:
            raise ValueError("an empty category: an empty cell is read as a missing value (declare "
                             "`nullable: true` instead)")
        return categories


FeatureSpec = Annotated[Union[NumericFeature, CategoricalFeature], Field(discriminator="type")]


class SensitiveAttribute(StrictModel):
    """A protected attribute, grouped by its categories or, for a number, by bins."""

    categories: Optional[List[str]] = None
    bins: Optional[List[float]] = None
    use_as_feature: bool = False
    nullable: bool = Field(
        False, description="Rows may lack the attribute (not recorded): in evaluation they form the group "
                           "\"(missing)\", reported and judged like any other group; production monitoring counts "
                           "them with the rows it has no group for (rows_without_group). For an attribute that "
                           "is also a feature, declare `nullable` on the feature")

    @field_validator("categories", mode="before")
    @classmethod
    def _not_booleans(cls, categories: Any) -> Any:
        return _categories_not_booleans(categories)

    @model_validator(mode="after")
    def _grouping(self) -> "SensitiveAttribute":
        if (self.categories is None) == (self.bins is None):
            raise ValueError("give exactly one of `categories` or `bins`")
        if self.bins is not None and (len(self.bins) < 2 or sorted(self.bins) != self.bins):
            raise ValueError("`bins` must be at least two increasing edges")
        return self


class TargetSpec(StrictModel):
    column: str
    positive: Union[int, str] = 1
    negative: Union[int, str] = 0
    positive_label: str = Field("positive", description="What the positive class means")
    favourable: Optional[Literal["negative", "positive"]] = Field(
        None, description="Which prediction benefits the person, and so whose rates fairness compares: "
                          "`negative` when predicting the positive class harms them (credit: `default` "
                          "declines the loan), `positive` when it helps (hiring: `hired`). No default: "
                          "required as soon as sensitive attributes are declared")

    @field_validator("positive", "negative", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any, info) -> Any:
        return _class_not_boolean(value, info.field_name)

    @model_validator(mode="after")
    def _two_classes(self) -> "TargetSpec":
        # Labels are compared as text and as numbers (a CSV's "1" and "1.0" are the class 1).
        same = str(self.positive) == str(self.negative)
        try:
            same = same or float(self.positive) == float(self.negative)
        except (TypeError, ValueError):
            pass
        if same:
            raise ValueError(f"positive and negative are the same class ({self.positive!r}): give the two "
                             "values the target column holds")
        return self

    def positive_meaning(self) -> str:
        """What the positive class means as the spec says it; without a `positive_label`, the class as the
        data holds it ('yes'), not the default label "positive", which names no class of the data."""
        return self.positive_label if "positive_label" in self.model_fields_set else repr(self.positive)

    def favourable_decision(self) -> str:
        """The favourable decision in words, e.g. "predicting 0 (not 'defaults within 12 months')"."""
        if self.favourable == "positive":
            return f"predicting {self.positive!r} ({self.positive_label!r})"
        return f"predicting {self.negative!r} (not {self.positive_label!r})"

    def favourable_outcome(self) -> str:
        """The actual outcome that matches the favourable decision, e.g. "actual 0"."""
        return f"actual {self.positive if self.favourable == 'positive' else self.negative!r}"


def target_mapping(target: TargetSpec) -> Dict[str, Optional[str]]:
    """What a version's scores and decisions mean: the target column, its two classes (as text) and the
    favourable one. Recorded with a version and its evaluations, compared wherever a spec uses them."""
    return {"column": target.column, "positive": str(target.positive), "negative": str(target.negative),
            "favourable": target.favourable}


def target_change(recorded: Optional[dict], target: TargetSpec) -> Optional[str]:
    """How `target` differs from a recorded mapping, in words; None when they agree or none was recorded
    (versions and evaluations from before it was)."""
    if not recorded:
        return None
    now = target_mapping(target)
    return "; ".join(f"{key} {recorded.get(key)!r} then, {value!r} now" for key, value in now.items()
                     if recorded.get(key) != value) or None


class DataSpec(StrictModel):
    source: DataSource
    target: TargetSpec
    id_column: Optional[str] = None
    time_column: Optional[str] = None
    time_format: Optional[str] = Field(
        None, min_length=2,
        description="how time_column's text spells a time, as strftime codes (e.g. '%d/%m/%Y %H:%M'). Without it "
                    "the text must be ISO 8601 (2023-01-13, 2023-01-13T05:00:00): 02/01/2023 is 2 January or "
                    "1 February, and keel does not guess which")
    features: Dict[str, FeatureSpec] = Field(min_length=1)
    sensitive_attributes: Dict[str, SensitiveAttribute] = Field(default_factory=dict)
    min_group_size: int = Field(50, ge=1, description="Smaller groups are flagged as too small to judge")
    min_group_outcomes: int = Field(
        5, ge=1, description="A group's TPR and FPR (equalized odds) are judged only with at least this many of "
                             "each actual outcome (fewer make them noise); its favourable-decision rate needs "
                             "only min_group_size rows, and the model's decisions never exclude a group. The "
                             "same rule in evaluation, mitigation, gates and reports")
    screening: ScreeningSpec = ScreeningSpec()

    @field_validator("target")
    @classmethod
    def _target_column_named(cls, target: TargetSpec) -> TargetSpec:
        _column_name(target.column, "target column (target.column)")
        return target

    @field_validator("id_column", "time_column")
    @classmethod
    def _columns_named(cls, name: Optional[str], info) -> Optional[str]:
        return _column_name(name, f"{info.field_name} name")

    @field_validator("features", "sensitive_attributes")
    @classmethod
    def _keys_named(cls, columns: dict, info) -> dict:
        if any(not name.strip() for name in columns):
            raise ValueError(f"a column name in {info.field_name} is empty: give the name of a column of the data")
        return columns

    @model_validator(mode="after")
    def _consistent_columns(self) -> "DataSpec":
        if self.sensitive_attributes and self.target.favourable is None:
            raise ValueError(
                "target.favourable is required when sensitive attributes are declared: say which prediction "
                "benefits the person, `negative` or `positive`. Fairness compares the rates of that "
                f"decision between groups. Here the positive class {self.target.positive!r} means "
                f"{self.target.positive_label!r}: if predicting it harms the person (credit: a predicted "
                "default declines the loan) write `favourable: negative`; if it helps (hiring: predicted "
                "`hired`) write `favourable: positive`")
        if self.time_format is not None and self.time_column is None:
            raise ValueError("time_format is declared but time_column is not: name the column it reads")
        reserved = {self.target.column, self.id_column, self.time_column} - {None}
        clash = reserved & set(self.features)
        if clash:
            raise ValueError(f"{sorted(clash)} is both a feature and the target/id/time column")
        unknown = sorted(set(self.screening.recorded_at) - set(self.features))
        if unknown:
            raise ValueError(f"screening.recorded_at names {unknown}, which are not features: its keys are features, "
                             "its values the columns holding when each was recorded")
        clash = (reserved | set(self.features) | set(self.sensitive_attributes)) & set(self.screening.time_columns)
        if clash:
            raise ValueError(f"screening time column(s) {sorted(clash)} are also features, sensitive attributes or "
                             "the target/id/time column: name the columns that hold recording times")
        for name, attribute in self.sensitive_attributes.items():
            if attribute.use_as_feature and name not in self.features:
                raise ValueError(
                    f"sensitive attribute `{name}` has use_as_feature: true but is not in features"
                )
            if attribute.bins is not None and not isinstance(
                self.features.get(name), NumericFeature
            ):
                raise ValueError(f"sensitive attribute `{name}` has bins but is not a numeric feature")
            feature = self.features.get(name)
            if (isinstance(feature, CategoricalFeature) and attribute.categories is not None
                    and set(attribute.categories) != set(feature.categories)):
                raise ValueError(f"sensitive attribute `{name}` lists the categories {attribute.categories}, but the "
                                 f"feature `{name}` lists {feature.categories}: the feature's are validated and "
                                 "grouped; give the same ones")
            if attribute.nullable and name in self.features:
                raise ValueError(f"sensitive attribute `{name}` is also a feature: declare `nullable: true` on "
                                 f"features.{name}, which governs its missing values")
        return self

    @property
    def model_features(self) -> List[str]:
        """Features the model sees: sensitive attributes stay out unless explicitly allowed."""
        excluded = {n for n, a in self.sensitive_attributes.items() if not a.use_as_feature}
        return [name for name in self.features if name not in excluded]


# --- split ---------------------------------------------------------------------------------------


class SplitSpec(StrictModel):
    strategy: Literal["random", "time"] = "random"
    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    stratify: bool = True
    seed: Seed = 0

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> "SplitSpec":
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("validation_fraction + test_fraction must leave at least 10% to train on")
        return self
