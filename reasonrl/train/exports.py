"""``--checkpoint`` resolution: a Hugging Face checkpoint directory, or a reasonrl workdir.

Rules, first match wins:

1. ``path/config.json`` exists: ``path`` is the checkpoint.
2. ``path/export/config.json`` exists (a stage directory): its ``export/``.
3. ``path`` is a workdir: among its stages ``path/<stage>/export/config.json`` the newest wins,
   ordered by the modification time of the stage's ``DONE.json`` (written when the stage
   finished; a stage without one, i.e. interrupted after exporting, falls back to the mtime of
   its ``export/config.json``), ties broken by stage name. That is the last stage the job ran.
"""

from __future__ import annotations

from pathlib import Path

from reasonrl.errors import ReasonRLError

HF_CONFIG = "config.json"
EXPORT_DIR = "export"
DONE_FILE = "DONE.json"


class CheckpointNotFoundError(ReasonRLError, FileNotFoundError):
    """``--checkpoint`` names neither a checkpoint directory nor a workdir holding one."""


def _finish_time(stage_dir: Path) -> float:
    done = stage_dir / DONE_FILE
    marker = done if done.is_file() else stage_dir / EXPORT_DIR / HF_CONFIG
    return marker.stat().st_mtime


def resolve_checkpoint(path: str | Path) -> Path:
    """The Hugging Face checkpoint directory that ``path`` designates (rules above)."""
    path = Path(path)
    if (path / HF_CONFIG).is_file():
        return path
    if (path / EXPORT_DIR / HF_CONFIG).is_file():
        return path / EXPORT_DIR
    if not path.is_dir():
        raise CheckpointNotFoundError(f"--checkpoint {str(path)!r} does not exist")
    stages = [child for child in path.iterdir() if (child / EXPORT_DIR / HF_CONFIG).is_file()]
    if not stages:
        raise CheckpointNotFoundError(
            f"--checkpoint {str(path)!r} has no {HF_CONFIG} and no <stage>/{EXPORT_DIR}/"
            f"{HF_CONFIG}: pass a Hugging Face checkpoint directory or a reasonrl workdir"
        )
    last = max(stages, key=lambda stage: (_finish_time(stage), stage.name))
    return last / EXPORT_DIR
