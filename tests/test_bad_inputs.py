"""Every public entry point refuses bad input with a robofail error (API) or a one-line exit-2
message (CLI): the case table of ``benchmarks/bad_inputs.py``, run in-process."""

from __future__ import annotations

import pytest

from benchmarks.bad_inputs import CASES, Case, Fixtures, run_case


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return Fixtures(tmp_path_factory.mktemp("bad_inputs"))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused(case: Case, fixtures: Fixtures) -> None:
    outcome = run_case(case, fixtures)
    assert outcome.ok, f"{case.id}: {outcome.why}; came back: {outcome.came_back}"


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
