"""The maturity model in extensions/ is consistent, complete, and what copier.yml offers."""

from __future__ import annotations

import pytest
import yaml

from extensions import maturity
from tests.conftest import ROOT, TEMPLATE

from .paths import template_output_paths


def test_levels_are_numbered_zero_to_four_in_order() -> None:
    assert [level.number for level in maturity.LEVELS] == [0, 1, 2, 3, 4]


def test_capability_keys_are_unique() -> None:
    keys = [cap.key for level in maturity.LEVELS for cap in level.capabilities]
    assert len(keys) == len(set(keys))


def test_copier_level_choices_show_the_model_names() -> None:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    choices = config["level"]["choices"]
    assert sorted(choices.values()) == list(maturity.LEVEL_NUMBERS)
    for label, number in choices.items():
        assert label.startswith(maturity.get_level(number).label), label
    assert config["level"]["default"] == maturity.DEFAULT_LEVEL


def test_every_template_file_belongs_to_a_level_or_is_shared() -> None:
    for path in template_output_paths(TEMPLATE, package_name="pkg"):
        maturity.owner_of(path)  # raises LookupError for an unowned file


def test_every_level_pattern_matches_some_template_file() -> None:
    paths = template_output_paths(TEMPLATE, package_name="pkg")
    for level in maturity.LEVELS:
        if not any(maturity.owner_of(p) is level for p in paths):
            continue  # a level whose files are not in the template yet
        for pattern in level.paths:
            assert any(maturity._matches(p, pattern) for p in paths), (level.number, pattern)


@pytest.mark.parametrize("number", [-1, 5, 1.5, "1"])
def test_unknown_level_is_refused(number: object) -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        maturity.get_level(number)  # type: ignore[arg-type]


def test_excluded_paths_grow_as_the_level_falls() -> None:
    counts = [len(maturity.excluded_paths(n)) for n in maturity.LEVEL_NUMBERS]
    assert counts[0] > counts[-1]
    assert "requirements.txt" in maturity.excluded_paths(1)
    assert "requirements.txt" not in maturity.excluded_paths(0)


def test_template_context_flags_capabilities_cumulatively() -> None:
    level0, level1 = maturity.template_context(0), maturity.template_context(1)
    assert level0["has_notebook"]
    assert not level0["has_package"]
    assert level1["has_notebook"]
    assert level1["has_package"]
    assert not level1["has_serving"]
    assert maturity.template_context(4)["next_maturity_level"] is None


@pytest.mark.parametrize(
    ("text", "identifier"),
    [
        ("Taxi Trip Duration", "taxi_trip_duration"),
        ("My 2nd Model!", "my_2nd_model"),
        ("42 answers", "_42_answers"),
    ],
)
def test_to_identifier_makes_package_names(text: str, identifier: str) -> None:
    assert maturity.to_identifier(text) == identifier
    assert maturity.is_package_name(identifier)
