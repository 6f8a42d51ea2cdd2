"""A Hopper episode from an exported policy alone: numpy, onnxruntime and Gymnasium, no torch and no dt.

    python -m dt.export ckpt=outputs/<run>/checkpoints/last.ckpt format=onnx out=hopper.onnx
    python examples/onnx_hopper.py hopper.onnx [--target 3600] [--seed 0]

The graph takes the last K steps, oldest first, with the number of real ones (`length`); state statistics,
return scale, timestep clamp and action bounds are inside it. This loop keeps the window and the
return-to-go (target minus the rewards so far, or fixed in delayed mode), as `dt.Policy` does.
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np
import onnxruntime as ort


def load(path: str) -> tuple[ort.InferenceSession, dict]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = {key[3:]: json.loads(value) for key, value in session.get_modelmeta().custom_metadata_map.items()}
    return session, meta  # meta: env_id, context_len, delayed, return_max, ... (the "dt." keys)


def run_episode(path: str, target: float, seed: int, max_steps: int | None = None) -> dict[str, np.ndarray]:
    """One episode; its observations, rewards and actions, step by step."""
    session, meta = load(path)
    K, S, A = meta["context_len"], len(meta["state_mean"]), len(meta["action_low"])
    env = gym.make(meta["env_id"], max_episode_steps=max_steps or meta["max_ep_len"])
    window = {  # a batch of one env; row i < length holds step t - length + 1 + i
        "states": np.zeros((1, K, S), np.float32),
        "actions": np.zeros((1, K, A), np.float32),
        "returns_to_go": np.zeros((1, K), np.float32),
        "timesteps": np.zeros((1, K), np.int64),
    }
    obs, _ = env.reset(seed=seed)
    rtg, done, t = np.float32(target), False, 0
    record: dict[str, list] = {"observations": [], "rewards": [], "actions": []}
    while not done:
        i = min(t, K - 1)  # the newest step's row
        if t >= K:  # full: drop the oldest step
            for name in window:
                window[name][0, :-1] = window[name][0, 1:].copy()
        window["states"][0, i], window["returns_to_go"][0, i], window["timesteps"][0, i] = obs, rtg, t
        window["actions"][0, i] = 0.0  # not known yet; the graph never reads it
        (action,) = session.run(["action"], {**window, "length": np.array([i + 1], np.int64)})
        window["actions"][0, i] = action[0]
        record["observations"].append(obs)
        obs, reward, terminated, truncated, _ = env.step(action[0])
        record["actions"].append(action[0])
        record["rewards"].append(reward)
        if not meta["delayed"]:
            rtg = np.float32(rtg - np.float32(reward))
        done, t = terminated or truncated, t + 1
    return {name: np.asarray(values) for name, values in record.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", help="a file written by python -m dt.export ... format=onnx")
    parser.add_argument("--target", type=float, default=None, help="target return (default: the data's best)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None, help="episode length limit (default: the model's)")
    parser.add_argument("--save", default=None, help="write the episode's observations, rewards, actions (.npz)")
    args = parser.parse_args()
    target = args.target if args.target is not None else load(args.onnx)[1]["return_max"]
    episode = run_episode(args.onnx, target, args.seed, args.max_steps)
    if args.save:
        np.savez(args.save, **episode)
    print(f"target {target:g}: return {episode['rewards'].sum():.1f} over {len(episode['rewards'])} steps")


if __name__ == "__main__":
    main()
