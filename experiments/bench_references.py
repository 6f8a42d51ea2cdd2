"""The references `make bench` (experiments/bench.py) times dt against, written as their authors run them.

- `TrainStep`: a training step in its timed parts, shared by ours (bench.py) and the reference below.
- `HFTrainer`: Hugging Face's `transformers.DecisionTransformerModel` (the official architecture, GPT-2 inside)
  trained as the official code trains it.
- `official_get_batch`: the official gym sampler, a Python loop per sample.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch

from dt.data.sources import Trajectories
from dt.models.dt_module import DTModule


class TrainStep:
    """One training step in the three parts the profile row times: `forward` (+ loss), `backward`, `update` (the
    trainer's gradient clip, the optimizer, the warmup schedule). Subclasses set `parameters`, `optimizer`,
    `scheduler`, `clip` and define `forward`; `inputs` turns a dt batch into what `forward` takes, outside the
    timed loop."""

    parameters: list[torch.nn.Parameter]
    clip: float  # conf/trainer's gradient_clip_val
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    def inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return batch

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()

    def update(self) -> None:
        torch.nn.utils.clip_grad_norm_(self.parameters, self.clip)
        self.optimizer.step()
        self.scheduler.step()

    def step(self, inputs: dict[str, torch.Tensor]) -> float:
        loss = self.forward(inputs)
        self.backward(loss)
        self.update()
        return loss.item()  # the finiteness check of training_step reads the loss too


def transformers_version() -> str | None:
    try:
        import transformers
    except ImportError:
        return None
    return transformers.__version__


class HFTrainer(TrainStep):
    """Hugging Face's DecisionTransformerModel trained as the official code's SequenceTrainer.train_step does
    (kzl/decision-transformer gym/decision_transformer/training/seq_trainer.py, experiment.py): MSE on the
    action predictions at unmasked steps, AdamW with weight decay on every parameter, the gradient clip, the
    warmup LambdaLR stepped every step; sizes, dropout and optimizer settings are those `module` was built with
    (conf/model/dt.yaml).

    forward(states (B, T, S), actions (B, T, A), rewards, returns_to_go (B, T, 1), timesteps (B, T),
    attention_mask (B, T), return_dict=False) -> (state_preds, action_preds, return_preds), as in
    transformers/models/decision_transformer/modeling_decision_transformer.py (4.x and 5.x); `rewards` is unused.
    """

    def __init__(self, module: DTModule, device: torch.device, bf16: bool, clip: float) -> None:
        import transformers
        from transformers import DecisionTransformerConfig, DecisionTransformerModel

        transformers.logging.set_verbosity_error()  # GPT-2's bos/eos ids outside a vocabulary of 1: harmless
        spec, net, optim = module.data_spec, module.hparams.net, module.hparams.optim
        config = DecisionTransformerConfig(
            state_dim=spec.state_dim,
            act_dim=spec.act_dim,
            hidden_size=net["embed_dim"],
            n_layer=net["n_layer"],
            n_head=net["n_head"],
            n_inner=4 * net["embed_dim"],
            activation_function=net["activation"],
            max_ep_len=module.hparams.max_ep_len,
            resid_pdrop=net["dropout"],
            embd_pdrop=net["dropout"],
            attn_pdrop=net["dropout"],
            action_tanh=True,
            use_cache=False,  # training: no key/value cache to build and throw away
        )
        self.model = DecisionTransformerModel(config).to(device).train()
        self.parameters = list(self.model.parameters())
        self.attention = getattr(self.model.config, "_attn_implementation", None) or "?"
        self.stats = module  # state statistics and return scale: the same normalized tensors as ours
        self.device, self.bf16, self.clip = device, bf16, clip
        self.optimizer = torch.optim.AdamW(self.parameters, lr=optim["lr"], weight_decay=optim["weight_decay"])
        warmup = optim["warmup_steps"]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda steps: min((steps + 1) / warmup, 1))

    @torch.no_grad()
    def inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Our batch as the official code feeds it: states normalized, returns-to-go scaled, mask as 0/1."""
        return {
            "states": self.stats.normalize_states(batch["states"]),
            "actions": batch["actions"],
            "returns_to_go": (batch["returns_to_go"] / self.stats.return_scale)[..., None],
            "timesteps": batch["timesteps"],
            "attention_mask": batch["mask"].long(),
        }

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            _, action_preds, _ = self.model(rewards=None, return_dict=False, **inputs)
            act_dim = action_preds.shape[2]
            keep = inputs["attention_mask"].reshape(-1) > 0
            action_preds = action_preds.reshape(-1, act_dim)[keep]
            action_target = inputs["actions"].reshape(-1, act_dim)[keep]
            return torch.mean((action_preds - action_target) ** 2)


def discount_cumsum(x: np.ndarray, gamma: float) -> np.ndarray:
    """Returns-to-go as the official code computes them: a Python loop backwards over the rest of the episode."""
    out = np.zeros_like(x)
    out[-1] = x[-1]
    for t in range(len(x) - 2, -1, -1):
        out[t] = x[t] + gamma * out[t + 1]
    return out


def official_get_batch(
    traj: Trajectories,
    state_mean: np.ndarray,
    state_std: np.ndarray,
    max_ep_len: int,
    scale: float,
    seed: int,
    device: str = "cpu",
) -> Callable[[int, int], tuple[torch.Tensor, ...]]:
    """The official gym sampler re-implemented operation for operation, so that it costs what the original costs:
    `get_batch` and the data setup before it in kzl/decision-transformer, gym/experiment.py.

    Setup: the episodes as a list of dicts of arrays (the D4RL pickles); episodes ranked by return and kept from
    the best down while their steps stay below pct_traj (= 1 here) of all steps (a strict comparison: at 100%
    the worst episode is left out, as there); sampling weights proportional to episode length. Per batch: the
    episodes drawn by np.random.choice with those weights, then for each sample in a Python loop a start drawn
    by random.randint, slices of states, actions, rewards and dones, timesteps clipped at max_ep_len - 1,
    returns-to-go from `discount_cumsum` over the whole rest of the episode (K + 1 of them, zero-extended),
    left padding by np.concatenate (zeros; actions -10, dones 2), normalized states and scaled returns; then
    one np.concatenate per field and torch.from_numpy(...).to(device). `random` and `np.random` are seeded
    generators here instead of the global ones.
    """
    episodes = []
    for begin, end in zip(traj.starts[:-1], traj.starts[1:], strict=True):
        dones = np.zeros(end - begin, dtype=bool)
        dones[-1] = True
        episodes.append(
            {
                "observations": traj.observations[begin:end].copy(),
                "actions": traj.actions[begin:end].copy(),
                "rewards": traj.rewards[begin:end].copy(),
                "terminals": dones,
            }
        )
    S, A = traj.observations.shape[1], traj.actions.shape[1]
    lengths = np.array([len(e["observations"]) for e in episodes])
    budget = max(int(1.0 * lengths.sum()), 1)  # pct_traj = 1
    ranked = np.argsort(np.array([e["rewards"].sum() for e in episodes]))  # lowest return first
    kept, steps = 1, lengths[ranked[-1]]
    while kept < len(ranked) and steps + lengths[ranked[-1 - kept]] < budget:
        steps += lengths[ranked[-1 - kept]]
        kept += 1
    ranked = ranked[-kept:]
    weights = lengths[ranked] / sum(lengths[ranked])
    np_random, py_random = np.random.RandomState(seed), random.Random(seed)

    def one_sample(episode: dict[str, np.ndarray], start: int, K: int) -> list[np.ndarray]:
        """(states, actions, rewards, dones, returns-to-go, timesteps, mask) of one window, each (1, K, ...)."""
        states = episode["observations"][start : start + K].reshape(1, -1, S)
        n = states.shape[1]
        actions = episode["actions"][start : start + K].reshape(1, -1, A)
        rewards = episode["rewards"][start : start + K].reshape(1, -1, 1)
        dones = episode["terminals"][start : start + K].reshape(1, -1)
        timesteps = np.arange(start, start + n).reshape(1, -1)
        timesteps[timesteps >= max_ep_len] = max_ep_len - 1
        rtg = discount_cumsum(episode["rewards"][start:], gamma=1.0)[: n + 1].reshape(1, -1, 1)
        if rtg.shape[1] <= n:
            rtg = np.concatenate([rtg, np.zeros((1, 1, 1))], axis=1)
        pad = K - n
        states = (np.concatenate([np.zeros((1, pad, S)), states], axis=1) - state_mean) / state_std
        return [
            states,
            np.concatenate([np.ones((1, pad, A)) * -10.0, actions], axis=1),
            np.concatenate([np.zeros((1, pad, 1)), rewards], axis=1),
            np.concatenate([np.ones((1, pad)) * 2, dones], axis=1),
            np.concatenate([np.zeros((1, pad, 1)), rtg], axis=1) / scale,
            np.concatenate([np.zeros((1, pad)), timesteps], axis=1),
            np.concatenate([np.zeros((1, pad)), np.ones((1, n))], axis=1),
        ]

    def get_batch(batch_size: int = 256, K: int = 20) -> tuple[torch.Tensor, ...]:
        picks = np_random.choice(np.arange(kept), size=batch_size, replace=True, p=weights)
        fields: list[list[np.ndarray]] = [[] for _ in range(7)]
        for i in range(batch_size):
            episode = episodes[int(ranked[picks[i]])]
            start = py_random.randint(0, episode["rewards"].shape[0] - 1)
            for field, array in zip(fields, one_sample(episode, start, K), strict=True):
                field.append(array)
        dtypes = (torch.float32, torch.float32, torch.float32, torch.long, torch.float32, torch.long, None)
        return tuple(
            torch.from_numpy(np.concatenate(field, axis=0)).to(dtype=dtype, device=device)
            for field, dtype in zip(fields, dtypes, strict=True)
        )

    return get_batch
