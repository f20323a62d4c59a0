"""The wheel carries the MJCF scenes, and the light (runtime) modules import without the heavy
simulation and training stacks."""

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            "-q",
        ],
        check=True,
        timeout=300,
    )
    (path,) = out.glob("robofail-*.whl")
    return path


def test_wheel_ships_the_scenes(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for scene in ("arena", "gripper", "pick_place", "push", "peg_insert"):
        assert f"robofail/sims/{scene}.xml" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_wheel_loads_its_own_scenes(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = textwrap.dedent(
        """
        from robofail.tasks import make_env
        from robofail.tasks.base import sims_dir
        env = make_env("pick_place")
        env.reset(seed=0)
        print(sims_dir())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == site / "robofail" / "sims"


def test_light_modules_import_without_torch_mujoco_gymnasium_h5py(tmp_path):
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        textwrap.dedent(
            """
            import sys
            class Block:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in {"torch", "mujoco", "gymnasium", "h5py", "cv2"}:
                        raise ImportError(f"{name} is blocked in this test")
            sys.meta_path.insert(0, Block())
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )

    light = run("import robofail, robofail.errors, robofail.data; print('ok')")
    assert light.returncode == 0 and light.stdout.strip() == "ok", light.stderr
    heavy = run("import robofail.tasks")  # the blocker really blocks
    assert heavy.returncode != 0 and "blocked in this test" in heavy.stderr
