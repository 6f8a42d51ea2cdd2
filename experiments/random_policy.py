"""The uniformly random policy through dt's own rollout: the reference row beside trained policies.

    python experiments/random_policy.py env=key_to_door [eval.episodes=1000] [seed=0] [--out DIR] [--experiment NAME]

Same env construction, env seeds (seed + i), lockstep rollout and success rate as the training callback and
`dt.evaluate`; the policy draws each discrete action uniformly from the episode's own random stream (Box
actions: uniform in the space's bounds). With `--out`, writes `DIR/results.json` (kind `evaluate`, model
`random`) for `dt.report`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from dt.config import compose_conf
from dt.console import format_table
from dt.envs import action_size, make_env, make_env_fn, make_vector_env
from dt.errors import report_errors
from dt.evaluation.rollout import rollout_batched
from dt.evaluation.spec import RolloutSpec
from dt.evaluation.targets import resolve_targets
from dt.results import FILENAME, dataset_info, eval_entry, run_info, write_evaluation


class UniformPolicy:
    """Uniform actions: discrete ones from the rollout's per-episode draws, Box ones from a seeded generator."""

    def __init__(self, spec: RolloutSpec, low: np.ndarray | None, high: np.ndarray | None, seed: int) -> None:
        self.spec, self.low, self.high = spec, low, high
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, rtg, states, actions, timesteps, uniform: torch.Tensor | None = None) -> torch.Tensor:
        if self.spec.discrete:
            assert uniform is not None, "sampling is on for discrete actions"
            return (uniform * self.spec.act_dim).long().clamp_(max=self.spec.act_dim - 1)  # (B,)
        draws = torch.rand((len(rtg), self.spec.act_dim), generator=self.generator)
        return torch.as_tensor(self.low) + draws * torch.as_tensor(self.high - self.low)  # (B, A)


def spec_from_config(cfg) -> tuple[RolloutSpec, np.ndarray | None, np.ndarray | None]:
    """A RolloutSpec for the env config alone (no checkpoint): sizes from the env itself."""
    env = make_env(cfg.env.id, factory=cfg.env.get("factory"))
    discrete, act_dim = action_size(env.action_space)
    low = None if discrete else env.action_space.low.astype(np.float32)
    high = None if discrete else env.action_space.high.astype(np.float32)
    state_dim = int(np.prod(env.observation_space.shape))
    env.close()
    spec = RolloutSpec(
        env_id=cfg.env.id,
        state_dim=state_dim,
        act_dim=act_dim,
        discrete=discrete,
        context_len=1,
        max_ep_len=int(cfg.eval.max_ep_len),
        timestep_limit=int(cfg.env.max_ep_len),
        ref_min_score=cfg.env.get("ref_min_score"),
        ref_max_score=cfg.env.get("ref_max_score"),
        env_factory=cfg.env.get("factory"),
        action_selection="sample",  # the uniform draws come from the rollout's per-episode sampling streams
        success_return=cfg.env.get("success_return"),
    )
    return spec, low, high


@report_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="train config overrides, e.g. env=key_to_door eval.episodes=1000")
    parser.add_argument("--out", type=Path, default=None, help="folder for results.json")
    parser.add_argument("--experiment", default=None, help="the experiment name to file the row under in dt.report")
    args = parser.parse_args(argv)
    cfg = compose_conf(args.overrides)
    spec, low, high = spec_from_config(cfg)
    target = resolve_targets(cfg.eval.target_returns)[0]  # a random policy ignores it: reported under the first
    envs = make_vector_env(make_env_fn(spec), int(cfg.eval.episodes), cfg.eval.vectorization)
    try:
        policy = UniformPolicy(spec, low, high, cfg.seed)
        (result,) = rollout_batched(policy, envs, spec, target_returns=[target.value], seed=cfg.seed)
    finally:
        envs.close()
    print(f"uniformly random policy on {spec.env_id}, {len(result.returns)} episodes, seed {cfg.seed}:")
    print(format_table([result]))
    if args.out is not None:
        # The run block as a training run's (`results.run_info`), from a run config with no data and no model.
        run_config = {
            "run_name": f"random-{cfg.env.name}-s{cfg.seed}",
            "env": OmegaConf.to_container(cfg.env, resolve=True),
            "model": {"name": "random"},
            "seed": cfg.seed,
            "overrides": args.overrides,
        }
        write_evaluation(
            args.out / FILENAME,
            run_info(run_config, experiment=args.experiment),
            # No training data: the `dataset` block describes the random episodes themselves.
            dataset_info(result.returns, int(result.lengths.sum()), spec.normalize),
            [eval_entry(result, step=0, epoch=0, target=target.written)],
        )
        print(f"results: {args.out / FILENAME}")


if __name__ == "__main__":
    main()
