"""The reference flow-matching policy: shapes, batching, determinism, save/load safety."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from robofail.errors import CorruptFileError, InvalidInputError
from robofail.policy.flow import FlowChunkModel, FlowChunkPolicy, FlowPolicyConfig
from robofail.policy.protocol import ChunkPolicy, ObservationWindow
from robofail.policy.rollout import policy_episode
from robofail.policy.train import TrainConfig, chunk_pairs, policy_config_for, train_flow_policy
from robofail.tasks import make_env
from robofail.tasks.demos import dataset_info, run_expert_episode

SMALL = {"hidden": 64, "blocks": 1, "embed_dim": 16, "horizon": 8, "exec_horizon": 4}


@pytest.fixture(scope="module")
def demos():
    env = make_env("pick_place")
    episodes = [run_expert_episode(env, seed=0, index=i, action_noise=0.1) for i in range(4)]
    return env, episodes


@pytest.fixture(scope="module")
def trained(demos):
    env, episodes = demos
    config = policy_config_for(dataset_info(env), env.position_action_dims, **SMALL)
    return train_flow_policy(episodes, config, TrainConfig(epochs=3, batch_size=64), progress=False)


def window(env, policy, seed=0):
    obs, _ = env.reset(seed=seed)
    w = ObservationWindow(policy.obs_horizon)
    w.reset(obs)
    return w.window()


def test_policy_satisfies_the_protocol(trained):
    assert isinstance(trained.policy, ChunkPolicy)
    assert trained.losses[-1] < trained.losses[0]


def test_sample_shapes_and_embedding(demos, trained):
    env, _ = demos
    policy = trained.policy
    obs = window(env, policy)
    chunks = policy.sample_chunks(obs, 5, seed=1)
    assert chunks.shape == (5, 8, 5) and chunks.dtype == np.float32
    assert np.all(np.isfinite(chunks))
    embedding = policy.embed(obs)
    assert embedding.shape == (16,) and embedding.dtype == np.float32


def test_same_seed_same_samples_other_seed_other_samples(demos, trained):
    env, _ = demos
    obs = window(env, trained.policy)
    a = trained.policy.sample_chunks(obs, 4, seed=3)
    np.testing.assert_array_equal(a, trained.policy.sample_chunks(obs, 4, seed=3))
    assert not np.array_equal(a, trained.policy.sample_chunks(obs, 4, seed=4))


def test_sampling_n_chunks_is_one_batched_pass_per_euler_step(demos, trained):
    env, _ = demos
    policy = trained.policy
    obs = window(env, policy)
    calls = []
    handle = policy.model.inp.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        policy.sample_chunks(obs, 32, seed=0)
    finally:
        handle.remove()
    assert calls == [32] * policy.config.inference_steps


def test_save_load_round_trip_gives_identical_samples(demos, trained, tmp_path):
    env, _ = demos
    trained.policy.save(tmp_path / "policy")
    loaded = FlowChunkPolicy.load(tmp_path / "policy")
    obs = window(env, loaded, seed=9)
    np.testing.assert_array_equal(
        trained.policy.sample_chunks(obs, 6, seed=2), loaded.sample_chunks(obs, 6, seed=2)
    )
    assert loaded.fingerprint == trained.policy.fingerprint


def test_weights_for_another_config_are_refused(trained, tmp_path):
    trained.policy.save(tmp_path / "p")
    other = FlowPolicyConfig(**{**trained.policy.config.__dict__, "hidden": 32})
    FlowChunkPolicy(FlowChunkModel(other)).save(tmp_path / "q")
    (tmp_path / "q" / "config.json").replace(tmp_path / "p" / "config.json")
    with pytest.raises(InvalidInputError, match="do not fit the config"):
        FlowChunkPolicy.load(tmp_path / "p")


class Boom:
    def __reduce__(self):
        return (exec, ("open('/tmp/robofail_pwned', 'w').write('x')",))


def test_pickle_planted_as_weights_is_refused_without_running(trained, tmp_path):
    trained.policy.save(tmp_path / "p")
    (tmp_path / "p" / "model.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CorruptFileError, match="not a safetensors file"):
        FlowChunkPolicy.load(tmp_path / "p")
    assert not Path("/tmp/robofail_pwned").exists()


def test_observation_of_wrong_shape_is_refused(demos, trained):
    env, _ = demos
    obs = window(env, trained.policy)
    with pytest.raises(InvalidInputError, match=r"obs\['state'\]"):
        trained.policy.sample_chunks({"state": obs["state"][:, :3]}, 2, seed=0)
    bad = obs["state"].copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="finite"):
        trained.policy.embed({"state": bad})


def test_chunk_pairs_pad_with_a_hold_action(demos):
    _, episodes = demos
    states, chunks, images = chunk_pairs(
        episodes[:1], obs_horizon=2, horizon=8, position_dims=[0, 1, 2]
    )
    steps = episodes[0].length
    assert states.shape == (steps, 2, episodes[0].obs["state"].shape[1]) and images is None
    np.testing.assert_array_equal(states[0, 0], states[0, 1])  # first window padded
    np.testing.assert_array_equal(chunks[-1, 1:, :3], 0.0)  # hold: no motion past the end
    np.testing.assert_array_equal(chunks[-1, 1:, 4], episodes[0].actions[-1, 4])  # grip kept


def test_rollout_records_the_monitor_inputs(demos, trained):
    env, _ = demos
    episode = policy_episode(env, trained.policy, seed=5, samples=6)
    k = len(episode.extras["inference_steps"])
    assert k == -(-episode.length // 4)  # one inference per 4 executed actions
    assert episode.extras["sampled_chunks"].shape == (k, 6, 8, 5)
    assert episode.extras["embeddings"].shape == (k, 16)
    assert episode.extras["executed_chunks"].shape == (k, 4, 5)
    executed = episode.extras["executed_chunks"].reshape(-1, 5)[: episode.length]
    np.testing.assert_allclose(episode.actions, np.clip(executed, -1, 1))


def test_image_policy_trains_and_samples():
    env = make_env("pick_place", obs_image=True, image_size=(32, 32))
    episodes = [run_expert_episode(env, seed=1, index=i) for i in range(2)]
    config = policy_config_for(
        dataset_info(env), env.position_action_dims, image_size=[32, 32], **SMALL
    )
    result = train_flow_policy(
        episodes, config, TrainConfig(epochs=2, batch_size=32), progress=False
    )
    policy = result.policy
    obs = window(env, policy)
    assert obs["image"].shape == (2, 32, 32, 3)
    assert policy.sample_chunks(obs, 3, seed=0).shape == (3, 8, 5)
    with pytest.raises(InvalidInputError, match="image"):
        policy.embed({"state": obs["state"]})
