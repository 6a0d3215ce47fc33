"""How a CSV file is read: the options real files need, named as in `pandas.read_csv`. Shared by the data
source (`data.source`, kind csv) and the delayed-labels file (`monitoring.labels.source`, kind csv), so that
one file is read the same way wherever a spec names it. Pure pydantic: validating a spec stays instant."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import List, Optional

from pydantic import Field, field_validator, model_validator

from keel.spec.base import StrictModel

# The reading options and their defaults: an option is "given" when it differs from its default.
CSV_OPTIONS = ("sep", "header", "names", "na_values", "keep_default_na", "skipinitialspace", "encoding", "comment",
               "skiprows", "decimal", "thousands")


def _one_character(value: Optional[str], key: str, example: str) -> Optional[str]:
    if value is None:
        return value
    if len(value) != 1:
        tab = (" (a tab is written with double quotes: \"\\t\")" if value in ("\\t", "tab", "TAB") else "")
        raise ValueError(f"`{key}` must be one character, e.g. {example}{tab}; found {value!r}")
    if value in ('"', "\n", "\r"):
        raise ValueError(f"`{key}` cannot be {value!r} (quotes and line ends are part of the CSV format)")
    return value


class CsvReading(StrictModel):
    """A file and how to read it. Every option keeps pandas' meaning and default."""

    kind: str
    path: Path = Field(description="The file; a relative path is read from the directory run.py is started in")
    sep: str = Field(",", description="The one character between fields, e.g. `;` or `\"\\t\"` (a tab)")
    header: bool = Field(
        True, description="The first line (after `skiprows`) holds the column names. `false`: every line is "
                          "data, and `names` gives the columns")
    names: Optional[List[str]] = Field(
        None, description="The column names in file order: required with `header: false`; with `header: true` "
                          "they replace the file's header line")
    na_values: List[str] = Field(
        default_factory=list,
        description="Cell values that mean \"missing\", e.g. [\"?\", \"NA\"], in addition to empty cells "
                    "(data files also keep pandas' defaults: NA, N/A, null, NaN, ..., unless `keep_default_na: false`)")
    keep_default_na: bool = Field(
        True, description="Also read pandas' default spellings of missing (NA, N/A, None, null, NaN, n/a, ...) "
                          "as missing in the data file. `false`: only empty cells and `na_values` are missing, "
                          "so a category spelt `NA` (North America) or `None` stays a category")
    skipinitialspace: bool = Field(
        False, description="Skip spaces after the separator: `a, b` reads `b`, not `' b'` (files written as "
                           "\"a, b, c\", e.g. the UCI adult data)")
    encoding: str = Field(
        "utf-8", description="The file's text encoding, e.g. `latin-1`, `cp1252`; `utf-8-sig` for a file "
                             "starting with a byte-order mark (utf-8 drops one too)")
    comment: Optional[str] = Field(
        None, description="One character; the rest of a line after it is ignored, and a line starting "
                          "with it is skipped, e.g. `#`")
    skiprows: int = Field(0, ge=0, description="Lines to skip at the start of the file (a title, a note)")
    decimal: str = Field(".", description="The decimal mark of numbers, e.g. `,` for `3,5` (then `sep` "
                                          "is usually `;`)")
    thousands: Optional[str] = Field(
        None, description="The mark grouping a number's thousands, e.g. `,` for `\"1,234.5\"` (quoted when it "
                          "is also `sep`) or `.` for `1.234,5`; without it such a number is text")

    @field_validator("na_values", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("sep")
    @classmethod
    def _sep(cls, value: str) -> str:
        return _one_character(value, "sep", "',' or ';'")

    @field_validator("decimal")
    @classmethod
    def _decimal(cls, value: str) -> str:
        return _one_character(value, "decimal", "'.' or ','")

    @field_validator("thousands")
    @classmethod
    def _thousands(cls, value: Optional[str]) -> Optional[str]:
        return _one_character(value, "thousands", "',' or '.'")

    @field_validator("comment")
    @classmethod
    def _comment(cls, value: Optional[str]) -> Optional[str]:
        return _one_character(value, "comment", "'#'")

    @field_validator("names")
    @classmethod
    def _names(cls, names: Optional[List[str]]) -> Optional[List[str]]:
        if names is None:
            return names
        if not names:
            raise ValueError("`names` is empty: give the column names in file order")
        empty = [position for position, name in enumerate(names) if not name.strip()]
        if empty:
            raise ValueError(f"`names` has an empty column name at position {empty[0]}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"`names` must be unique; repeated: {', '.join(map(repr, repeated))}")
        return names

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"unknown text encoding {encoding!r}; e.g. utf-8, utf-8-sig, latin-1, cp1252") from None
        return encoding

    @model_validator(mode="after")
    def _combinations(self) -> "CsvReading":
        if not self.header and self.names is None:
            raise ValueError("`header: false` needs `names`: the file has no line of column names, so give "
                             "them in file order, e.g. names: [age, workclass, ...]")
        clashes = [key for key in ("decimal", "comment") if getattr(self, key) == self.sep]
        if clashes:
            raise ValueError(f"`{clashes[0]}` and `sep` are the same character {self.sep!r}")
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError(f"`thousands` and `decimal` are the same character {self.decimal!r}")
        if self.comment is not None and self.comment == self.decimal:
            raise ValueError(f"`comment` and `decimal` are the same character {self.comment!r}")
        return self

    def given_options(self) -> dict:
        """The reading options set to something else than their default, in declaration order."""
        return {key: getattr(self, key) for key in CSV_OPTIONS
                if getattr(self, key) != type(self).model_fields[key].get_default(call_default_factory=True)}
