"""CommaList: one comma-separated variable is a tuple, each part validated as its type."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from opsmesh.settings import CommaList, CommonSettings


class ListSettings(CommonSettings):
    names: CommaList[str] = Field((), alias="OPSMESH_TEST_NAMES")
    sizes: CommaList[float] = Field((10.0,), alias="OPSMESH_TEST_SIZES")


@pytest.mark.parametrize(
    ("value", "names"),
    [("a,b", ("a", "b")), (" a , b ,, c,", ("a", "b", "c")), ("", ()), ("  ", ())],
)
def test_parts_are_stripped_and_empty_ones_dropped(
    monkeypatch: pytest.MonkeyPatch, value: str, names: tuple[str, ...]
) -> None:
    monkeypatch.setenv("OPSMESH_TEST_NAMES", value)
    assert ListSettings().names == names


def test_each_part_is_validated_as_the_item_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSMESH_TEST_SIZES", "10, 60.5")
    assert ListSettings().sizes == (10.0, 60.5)
    monkeypatch.setenv("OPSMESH_TEST_SIZES", "10,fast")
    with pytest.raises(ValidationError, match=r"OPSMESH_TEST_SIZES\.1"):
        ListSettings()


def test_defaults_and_values_given_in_code_are_kept() -> None:
    assert ListSettings().sizes == (10.0,)
    assert ListSettings(OPSMESH_TEST_NAMES=["x", "y"]).names == ("x", "y")
