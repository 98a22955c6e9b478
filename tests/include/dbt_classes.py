"""dbt-style classes (dbt_common's ``dbtClassMixin``: serializers compiled on first use) for
the tests of the starter's compiling of them (test_dbt_warm); each test uses its own."""

from __future__ import annotations

import dataclasses

from dbt_common.dataclass_schema import dbtClassMixin


@dataclasses.dataclass
class Tag(dbtClassMixin):
    name: str


@dataclasses.dataclass
class Point(dbtClassMixin):
    x: int
    tags: list[Tag] = dataclasses.field(default_factory=list)
    label: str | None = None


@dataclasses.dataclass
class Twin(dbtClassMixin):  # Point's fields, left to mashumaro to compile on first use
    x: int
    tags: list[Tag] = dataclasses.field(default_factory=list)
    label: str | None = None


@dataclasses.dataclass
class Lone(dbtClassMixin):
    x: int


SERIALIZED: list[int] = []


@dataclasses.dataclass
class Hooked(dbtClassMixin):
    """Says when an instance is serialized (its hook runs in ``to_dict``). Its field has a
    default, so an instance made without ``__init__`` serializes too: a compile that ran
    the serializer would show."""

    x: int = 1

    def __post_serialize__(self, data: dict, context: dict | None = None) -> dict:
        SERIALIZED.append(self.x)
        return data
