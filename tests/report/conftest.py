import pytest

from tests.report.run_data import build_run


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory):
    """A complete small run folder (about 15 s to build)."""
    return build_run(tmp_path_factory.mktemp("report") / "run")
