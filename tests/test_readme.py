"""The README's Python examples: the self-contained ones run as written; the others, which need
the user's policy, robot or artifacts, must at least compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
SELF_CONTAINED = ('gym.make("robofail/PickPlace-v0"', "make_perturbation(")
"""A marker of each example that runs with nothing but robofail installed."""


def test_readme_has_its_examples():
    assert len(EXAMPLES) >= 5
    for marker in SELF_CONTAINED:
        assert sum(marker in example for example in EXAMPLES) == 1, marker


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example(index, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo logs HalfCheetah's compiler warning to MUJOCO_LOG.TXT
    example = EXAMPLES[index]
    code = compile(example, f"README.md, python example {index}", "exec")
    if any(marker in example for marker in SELF_CONTAINED):
        exec(code, {"__name__": f"readme_example_{index}"})
        if "print(info" in example:  # the perturbation example shows what it applied
            assert "'kind': 'friction'" in capsys.readouterr().out
