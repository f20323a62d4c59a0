"""Every public entry point refuses bad input with a robofail error (API) or a one-line exit-2
message (CLI): the case table of ``benchmarks/bad_inputs.py``, run in-process."""

from __future__ import annotations

import pytest

from benchmarks.bad_inputs import CASES, Case, Fixtures, run_case


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused(case: Case, sweep_files: Fixtures) -> None:
    outcome = run_case(case, sweep_files)
    assert outcome.ok, f"{case.id}: {outcome.why}; came back: {outcome.came_back}"


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
