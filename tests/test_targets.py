"""Evaluation targets: numbers and dataset-relative multiples (`1.5max`), and the one-line errors for bad ones."""

from __future__ import annotations

import pytest

from dt.data.spec import DataSpec
from dt.errors import DTError
from dt.evaluation.targets import FORMS, Target, resolve_targets

DATA_SPEC = DataSpec((11,), 3, False, [], [], return_max=3222.36, return_mean=1508.0)


def test_targets_numbers_and_multiples() -> None:
    targets = resolve_targets([3600, "1.5max", "max", "0.5mean", "2*max", 1800.5], DATA_SPEC)
    assert [t.written for t in targets] == ["3600", "1.5max", "max", "0.5mean", "2*max", "1800.5"]
    assert [t.value for t in targets] == [3600.0, 4834.0, 3222.0, 754.0, 6445.0, 1800.5]  # 4 significant digits
    assert resolve_targets("0.25max", DATA_SPEC) == [Target("0.25max", 805.6)]  # one entry: a `-m` sweep value


@pytest.mark.parametrize("bad", [["1.5maxx"], ["x"], [], ["nan"], [True], "max1.5"])
def test_target_syntax_errors_show_the_accepted_forms(bad) -> None:
    with pytest.raises(DTError) as err:
        resolve_targets(bad, DATA_SPEC)
    assert "eval.target_returns" in str(err.value) and ("\n" not in str(err.value))
    if bad not in (["nan"],):
        assert FORMS in str(err.value)


def test_multiple_needs_dataset_stats() -> None:
    with pytest.raises(DTError, match="does not record: give the target as a number"):
        resolve_targets(["1.5max"], DataSpec((11,), 3, False, [], []))
    with pytest.raises(DTError, match="does not record"):
        resolve_targets(["max"])


def test_target_numbers_are_checked() -> None:
    assert [t.value for t in resolve_targets([3600, 1800])] == [3600.0, 1800.0]
    assert [t.value for t in resolve_targets(3600)] == [3600.0]
    for bad in ([], None, [float("nan")], [float("inf")], ["high"]):
        with pytest.raises(DTError, match="eval.target_returns"):
            resolve_targets(bad)
