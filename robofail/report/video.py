"""``robofail render``: one stored episode as an MP4 video, optionally with the monitor's scores.

Frames come from the simulator when the episode is of a bundled task: every stored full
simulator state is restored into the task's env (with the episode's environment-level
perturbation applied to the model, so edited sizes and masses show) and rendered offscreen
(MuJoCo's EGL backend by default), one frame per control step plus the final state. Episodes of
other envs use their stored ``obs/image`` frames. Beneath each frame: the step, the phase and the
episode's label, and with a calibration artifact the monitor's verdict and a strip of its scores
over their thresholds with a cursor at the frame's step (:mod:`robofail.report.strip`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from robofail.data.episode import DatasetInfo, Episode
from robofail.errors import InvalidInputError, OutputPathError, RobofailError, UnknownNameError
from robofail.folders import check_writable
from robofail.report.episode_ref import load_episode, parse_episode_ref
from robofail.report.strip import MonitorTrack, ScoreStrip, score_episode

MIN_WIDTH = 480
"""Smaller frames (stored camera images) are enlarged to at least this width."""
LINE_HEIGHT = 21
FONT, FONT_SCALE = 0, 0.5  # cv2.FONT_HERSHEY_SIMPLEX
GOOD_RGB, BAD_RGB, TEXT_RGB = (120, 220, 120), (255, 110, 100), (235, 235, 235)


@dataclass(frozen=True)
class RenderSummary:
    """What :func:`render_episode` wrote."""

    out: Path
    episode: str
    frames: int
    width: int
    height: int
    fps: float
    source: str  # "simulator" or "stored images"


def check_video_output(out: Path, overwrite: bool) -> None:
    """Raise :class:`OutputPathError` unless ``out`` is a writable ``.mp4`` file name that is
    new or may be replaced (``overwrite``)."""
    if out.suffix.lower() != ".mp4":
        raise OutputPathError(f"--out {out}: give a file name ending in .mp4")
    if out.is_dir():
        raise OutputPathError(f"--out {out} is a folder; give a file name ending in .mp4")
    if out.exists() and not overwrite:
        raise OutputPathError(f"{out} already exists; pass --overwrite to replace it")
    check_writable(out, "--out")


def render_episode(
    episode: str,
    out: str | Path,
    *,
    monitor: str | Path | None = None,
    method: str | None = None,
    camera: str | None = None,
    fps: float | None = None,
    overwrite: bool = False,
) -> RenderSummary:
    """Render the episode named ``episode`` (``PATH:EPISODE``, see
    :mod:`robofail.report.episode_ref`) to the MP4 file ``out``.

    Args:
        monitor: calibration artifact folder; adds the monitor's verdicts and score strip.
        method: which calibrated method (default: the artifact's default); needs ``monitor``.
        camera: camera of the task's scene (simulator frames only; default the env's).
        fps: frames per second (default: the dataset's control rate).
        overwrite: replace an existing ``out``.

    Raises:
        InvalidInputError: a bad episode name, ``method`` without ``monitor``, a camera for
            stored frames, an episode with nothing to render or without monitor inputs.
        UnknownNameError: an unknown episode, filter, camera or method.
        OutputPathError: ``out`` cannot be written.
    """
    out = Path(out)
    if method is not None and monitor is None:
        raise InvalidInputError("--method chooses among a calibration's methods: add --monitor")
    if fps is not None and not 1 <= fps <= 1000:
        raise InvalidInputError(f"--fps must be in [1, 1000], got {fps}")
    ref = parse_episode_ref(episode)
    check_video_output(out, overwrite)
    record, info, name = load_episode(ref)
    track = score_episode(record, info, monitor, method) if monitor is not None else None
    frames, source = episode_frames(record, info, camera)
    rate = float(fps or info.control_hz)
    composed = _compose(frames, record, info, f"{ref.path.name}:{name}", track)
    count, (height, width) = write_video(composed, out, rate)
    return RenderSummary(out, str(ref), count, width, height, rate, source)


# --------------------------------------------------------------------------- frames
def episode_frames(
    episode: Episode, info: DatasetInfo, camera: str | None
) -> tuple[Iterator[np.ndarray], str]:
    """RGB frames (H, W, 3) uint8 of the episode, one per control step (the simulator adds the
    final state), and where they come from (``"simulator"`` or ``"stored images"``)."""
    env = _scene(episode, info, camera)
    if env is not None:
        return _simulated(env, episode), "simulator"
    if camera is not None:
        raise InvalidInputError(
            f"--camera needs the simulator, and {info.task!r} is not a bundled task whose "
            "states fit this episode; its stored images are the only frames"
        )
    if "image" in episode.obs:
        return iter(episode.obs["image"]), "stored images"
    raise InvalidInputError(
        f"nothing to render: task {info.task!r} is not a bundled task and the episode has no "
        "obs/image frames (record them with --image)"
    )


def _scene(episode: Episode, info: DatasetInfo, camera: str | None):
    """The bundled task's env, rendering ``camera``, with the episode's model edits; None when
    the dataset is not of a bundled task or its states do not fit the task's simulator."""
    from robofail.tasks import TASKS, make_env

    entry = next((e for e in TASKS.values() if info.task in (e.name, e.env_id)), None)
    if entry is None:
        return None
    env = make_env(entry.name, render_mode="rgb_array", **({"camera": camera} if camera else {}))
    if episode.states.shape[1] != env.state_size:
        env.close()
        return None
    cameras = [env.model.camera(i).name for i in range(env.model.ncam)]
    if env.camera not in cameras:
        env.close()
        raise UnknownNameError(
            f"--camera {camera!r}: the {entry.name} scene has cameras {', '.join(cameras)}"
        )
    _apply_model_edits(env, episode)
    return env


def _apply_model_edits(env, episode: Episode) -> None:
    """Apply the episode's environment-level perturbation (sizes, masses...) to ``env``'s model,
    as the generator did at reset; kinds this version does not know leave the nominal scene."""
    from robofail.failgen.perturbation import make_perturbation, perturbation_type
    from robofail.failgen.wrappers import PerturbationWrapper

    spec = episode.label.perturbation
    if not spec:
        return
    try:
        if perturbation_type(spec["kind"]).level != "env":
            return
        params = {key: value for key, value in spec.items() if key != "kind"}
        wrapper = PerturbationWrapper(env, make_perturbation(spec["kind"], **params))
        wrapper.reset(seed=episode.label.seed)
    except RobofailError:
        return


def _simulated(env, episode: Episode) -> Iterator[np.ndarray]:
    try:
        for state in chain(episode.states, [episode.final_state]):
            env.set_state(state)
            yield env.render()
    finally:
        env.close()


# --------------------------------------------------------------------------- layout
def _compose(
    frames: Iterator[np.ndarray],
    episode: Episode,
    info: DatasetInfo,
    name: str,
    track: MonitorTrack | None,
) -> Iterator[np.ndarray]:
    """Each frame (enlarged to :data:`MIN_WIDTH`), the caption lines and the score strip."""
    first = next(frames)
    width = _even(max(first.shape[1], MIN_WIDTH))
    height = _even(round(first.shape[0] * width / first.shape[1]))
    label = episode.label
    strip = None
    if track is not None:
        strip = ScoreStrip(
            track,
            length=episode.length,
            width=width,
            onset_step=label.onset_step,
            failure_step=label.failure_step,
        )
    outcome = _outcome(episode)

    def caption(step: int) -> list[tuple[str, tuple[int, int, int]]]:
        lines = [(_progress(name, step, episode, info), TEXT_RGB), outcome]
        if track is not None:
            text, alarmed = track.status(step)
            lines.append((text, BAD_RGB if alarmed else GOOD_RGB))
        return [(part, color) for text, color in lines for part in _wrap(text, width - 16)]

    rows = max(len(caption(step)) for step in range(episode.length + 1))  # one size for all
    for step, frame in enumerate(chain([first], frames)):
        parts = [_resized(frame, width, height), _caption(caption(step), width, rows)]
        if strip is not None:
            parts.append(strip.at(step))
        yield np.vstack(parts)


def _progress(name: str, step: int, episode: Episode, info: DatasetInfo) -> str:
    index = int(episode.phases[min(step, episode.length - 1)])
    phase = info.phase_names[index] if index < len(info.phase_names) else str(index)
    failing = 0 <= episode.label.failure_step <= step
    return f"{name}  step {step}/{episode.length}  phase {phase}" + ("  FAILED" if failing else "")


def _outcome(episode: Episode) -> tuple[str, tuple[int, int, int]]:
    label = episode.label
    if label.success:
        return "success", GOOD_RGB
    text = f"failure: {label.failure_type}"
    if label.perturbation:
        text += f" (perturbation {label.perturbation['kind']}, onset step {label.onset_step})"
    if label.failure_step >= 0:
        text += f", failure step {label.failure_step}"
    return text, BAD_RGB


def _caption(lines: list[tuple[str, tuple[int, int, int]]], width: int, rows: int) -> np.ndarray:
    """A dark band ``rows`` lines high with the (already wrapped) lines of text."""
    import cv2

    band = np.full((_even(LINE_HEIGHT * rows + 8), width, 3), 30, dtype=np.uint8)
    for row, (text, color) in enumerate(lines):
        origin = (8, LINE_HEIGHT * (row + 1))
        cv2.putText(band, text, origin, FONT, FONT_SCALE, color, 1, cv2.LINE_AA)
    return band


def _wrap(text: str, width: int) -> list[str]:
    """``text`` split at spaces into lines at most ``width`` pixels wide (a longer word stays
    whole on its own line)."""
    import cv2

    lines: list[str] = []
    for word in text.split(" "):
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and cv2.getTextSize(candidate, FONT, FONT_SCALE, 1)[0][0] <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def _resized(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    if frame.shape[:2] == (height, width):
        return frame
    enlarge = width > frame.shape[1]
    interpolation = cv2.INTER_NEAREST if enlarge else cv2.INTER_AREA
    return cv2.resize(frame, (width, height), interpolation=interpolation)


def _even(n: int) -> int:
    return n + n % 2


# --------------------------------------------------------------------------- writing
def write_video(frames: Iterable[np.ndarray], out: Path, fps: float) -> tuple[int, tuple[int, int]]:
    """Write RGB frames (all one size) to ``out`` as MP4 (OpenCV, ``mp4v``) under a temporary
    name, renamed when complete; returns (frame count, (height, width)).

    Raises:
        OutputPathError: OpenCV cannot open the file for writing.
        InvalidInputError: no frames.
    """
    import cv2

    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    writer, count, size = None, 0, (0, 0)
    try:
        for frame in frames:
            if writer is None:
                size = frame.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                writer = cv2.VideoWriter(str(partial), fourcc, fps, (size[1], size[0]))
                if not writer.isOpened():
                    raise OutputPathError(f"cannot write {out}: OpenCV could not open it (mp4v)")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            count += 1
        if writer is None:
            raise InvalidInputError("the episode gave no frames to write")
        writer.release()
        writer = None
        partial.replace(out)
    finally:
        if writer is not None:
            writer.release()
        partial.unlink(missing_ok=True)
    return count, size
