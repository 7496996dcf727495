"""A plain (non-editable) install carries the recipes: the embedded default job and
`reasonrl.paths.recipe` work without the source tree."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHECK = """
import os, sys
from pathlib import Path
from reasonrl.paths import CONFIGS_DIR, recipe
import reasonrl.job
from reasonrl.train import validate_job
assert Path(CONFIGS_DIR).resolve().is_relative_to(Path(sys.argv[1]).resolve()), CONFIGS_DIR
for name in ("demo", "grpo", "drgrpo", "dapo", "dpo", "reward_model"):
    validate_job(recipe(name).get_config(), 1, name)
from reasonrl.main import DEFAULT_CONFIG
assert DEFAULT_CONFIG.is_file() and DEFAULT_CONFIG.resolve().is_relative_to(
    Path(sys.argv[1]).resolve()), DEFAULT_CONFIG
"""


@pytest.mark.slow
def test_plain_install_ships_recipes_and_default_job(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("reasonrl", "configs"):
        shutil.copytree(
            REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
    )
    shutil.rmtree(source)  # nothing may still point at a source tree
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    demo = site / "reasonrl" / "configs" / "demo.py"
    assert demo.is_file()
