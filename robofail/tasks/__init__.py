"""The bundled tasks: gymnasium envs over the scenes in ``sims/`` and their scripted experts.

Importing this module registers ``robofail/PickPlace-v0``, ``robofail/Push-v0`` and
``robofail/PegInsert-v0`` with gymnasium.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import gymnasium as gym

from robofail.errors import InvalidInputError, UnknownNameError


@dataclass(frozen=True)
class TaskEntry:
    """Where a bundled task lives.

    Attributes:
        name: short name used on the command line (``pick_place``).
        env_id: gymnasium id (``robofail/PickPlace-v0``).
        module: module holding the env and expert classes.
        env_class: name of the env class.
        expert_class: name of the scripted expert class.
        vision_expert_class: name of the expert that perceives the object in the camera image
            instead of reading the simulator ("" when the task has none).
        observation_expert_class: name of the expert that plans from the state observation
            (faults included) instead of reading the simulator.
        description: what the task asks, in plain words (a LeRobot dataset's task string).
    """

    name: str
    env_id: str
    module: str
    env_class: str
    expert_class: str
    vision_expert_class: str = ""
    observation_expert_class: str = ""
    description: str = ""

    def env_type(self) -> type:
        return getattr(importlib.import_module(self.module), self.env_class)

    def expert_type(self, *, vision: bool = False, observation: bool = False) -> type:
        """The scripted expert class; with ``vision`` the one that perceives the object in
        the camera image (InvalidInputError when the task has none); with ``observation`` the one
        that plans from the state observation."""
        if observation:
            return getattr(importlib.import_module(self.module), self.observation_expert_class)
        if not vision:
            return getattr(importlib.import_module(self.module), self.expert_class)
        if not self.vision_expert_class:
            with_vision = [e.name for e in TASKS.values() if e.vision_expert_class]
            raise InvalidInputError(
                f"task {self.name!r} has no vision expert (source: vision_expert); "
                f"tasks with one: {', '.join(with_vision)}"
            )
        return getattr(importlib.import_module(self.module), self.vision_expert_class)


TASKS: dict[str, TaskEntry] = {
    entry.name: entry
    for entry in (
        TaskEntry(
            "pick_place",
            "robofail/PickPlace-v0",
            "robofail.tasks.pick_place",
            "PickPlaceEnv",
            "PickPlaceExpert",
            "VisionPickPlaceExpert",
            "ObservationPickPlaceExpert",
            description="pick the red cube and place it in the tray",
        ),
        TaskEntry(
            "push",
            "robofail/Push-v0",
            "robofail.tasks.push",
            "PushEnv",
            "PushExpert",
            observation_expert_class="ObservationPushExpert",
            description="push the block to the target pose",
        ),
        TaskEntry(
            "peg_insert",
            "robofail/PegInsert-v0",
            "robofail.tasks.peg_insert",
            "PegInsertEnv",
            "PegInsertExpert",
            observation_expert_class="ObservationPegInsertExpert",
            description="grasp the peg and insert it into the square socket",
        ),
    )
}


def get_task(name: str) -> TaskEntry:
    """The bundled task called ``name`` (short name or gymnasium id)."""
    for entry in TASKS.values():
        if name in (entry.name, entry.env_id):
            return entry
    raise UnknownNameError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")


def make_env(name: str, **kwargs):
    """A bundled task's env, constructed directly (no gymnasium wrappers)."""
    return get_task(name).env_type()(**kwargs)


def make_expert(env, *, vision: bool = False, observation: bool = False, **kwargs):
    """The scripted expert of ``env``'s bundled task; with ``vision`` the one that perceives the
    object in ``obs["image"]``, with ``observation`` the one that plans from ``obs["state"]``
    (both fed through its ``observe``)."""
    entry = get_task(env.unwrapped.task_name)
    return entry.expert_type(vision=vision, observation=observation)(env, **kwargs)


for _entry in TASKS.values():
    if _entry.env_id not in gym.registry:
        gym.register(id=_entry.env_id, entry_point=f"{_entry.module}:{_entry.env_class}")
