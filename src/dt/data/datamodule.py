"""Offline RL data for the Decision Transformer: preprocessing, length-K windows, the DataModule.

Layout (see shared DESIGN.md): every step of every episode lives in one flat array; a window is a gather
`start + arange(K)`, right-padded and masked where it runs past its episode's end.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dt.data.dqn_replay import load_dqn_replay
from dt.data.frames import FrameStacks
from dt.data.sources import Trajectories, concat, load_d4rl_hdf5, load_minari, minari_local
from dt.data.spec import DataSpec
from dt.errors import DTError
from dt.lookup import import_function


def returns_to_go(rewards: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Undiscounted sum of rewards from each step to its episode's end, (N,) float32."""
    cumulative = np.cumsum(rewards, dtype=np.float64)  # (N,)
    cumulative_at_end = np.repeat(cumulative[starts[1:] - 1], np.diff(starts))  # (N,) at own episode's end
    # rtg[i] = r[i] + ... + r[end - 1] = cum[end - 1] - cum[i] + r[i]
    return (cumulative_at_end - cumulative + rewards).astype(np.float32)


def delay_rewards(traj: Trajectories) -> Trajectories:
    """Delayed-reward mode: each episode's whole return moved onto its last step."""
    rewards = np.zeros_like(traj.rewards)
    rewards[traj.starts[1:] - 1] = traj.returns
    return replace(traj, rewards=rewards)


def top_trajectories(traj: Trajectories, pct_traj: float) -> Trajectories:
    """%BC: keep the highest-return episodes whose lengths sum to at most pct_traj of all steps.

    As the official code: the best episode is always kept, then the next best while the budget allows.
    """
    if not 0.0 < pct_traj <= 1.0:
        raise DTError(f"dataset.pct_traj={pct_traj} must lie in (0, 1]: it is the fraction of steps kept")
    if pct_traj == 1.0:
        return traj
    budget = max(int(pct_traj * traj.num_steps), 1)
    best_first = np.argsort(-traj.returns, kind="stable")
    cumulative_steps = np.cumsum(traj.lengths[best_first])
    num_kept = max(int(np.searchsorted(cumulative_steps, budget, side="right")), 1)
    return traj.select(best_first[:num_kept])


def state_stats(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std of vector states; empty for pixel frames (the encoder scales them by 1/255)."""
    if observations.dtype == np.uint8:
        return np.zeros(0, dtype=np.float32), np.ones(0, dtype=np.float32)
    mean = observations.mean(axis=0, dtype=np.float64)
    std = observations.std(axis=0, dtype=np.float64) + 1e-6
    return mean.astype(np.float32), std.astype(np.float32)


class WindowDataset(Dataset):
    """Length-K windows starting at any step; `__getitems__` gathers a whole batch at once.

    Items are raw (unnormalized states, unscaled returns-to-go): the module owns normalization. Pixel states
    are gathered as (4, 84, 84) uint8 stacks from single stored frames (`dt.data.frames.FrameStacks`).
    """

    def __init__(self, traj: Trajectories, context_len: int, max_ep_len: int) -> None:
        self.context_len = context_len
        episode_ids = traj.episode_ids
        if traj.pixels:
            episode_start = torch.from_numpy(traj.starts[:-1][episode_ids])  # (N,)
            self.states = FrameStacks(torch.from_numpy(traj.observations), episode_start)  # (N, 4, 84, 84)
        else:
            self.states = torch.from_numpy(traj.observations)  # (N, S)
        self.actions = torch.from_numpy(traj.actions)  # (N, A) or (N,)
        self.returns_to_go = torch.from_numpy(returns_to_go(traj.rewards, traj.starts))  # (N,)
        step_in_episode = np.arange(traj.num_steps) - traj.starts[episode_ids]
        self.timesteps = torch.from_numpy(np.minimum(step_in_episode, max_ep_len - 1))  # (N,)
        self.episode_end = torch.from_numpy(traj.starts[1:][episode_ids])  # (N,) one past the last step

    def __len__(self) -> int:
        return len(self.states)

    @property
    def device(self) -> torch.device:
        return self.actions.device

    def to(self, device: torch.device | str) -> WindowDataset:
        """Every array onto `device`, in place: batches are then gathered there (data.gather_device)."""
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
        if isinstance(self.states, FrameStacks):
            self.states = self.states.to(device)
        return self

    def __getitem__(self, start: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([start]).items()}

    def __getitems__(self, starts: list[int]) -> dict[str, torch.Tensor]:
        start = torch.as_tensor(starts, dtype=torch.long, device=self.device)  # (B,)
        index = start[:, None] + torch.arange(self.context_len, device=self.device)  # (B, K)
        mask = index < self.episode_end[start][:, None]  # (B, K): real steps; right padding after
        return self._gather(torch.where(mask, index, start[:, None]), mask)  # padded slots read a real step

    def _gather(self, index: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The steps at `index` (B, K), zeroed where `mask` (B, K) is False."""
        actions = self.actions[index]  # (B, K, A) or (B, K)
        action_mask = mask[..., None] if actions.ndim == 3 else mask
        states = self.states[index]  # (B, K, S) or (B, K, 4, 84, 84)
        return {
            # in place: the gather is a fresh tensor, and a second 100 MB copy per Atari batch costs time
            "states": states.masked_fill_(~mask.view(*mask.shape, *[1] * (states.ndim - 2)), 0),
            "actions": actions * action_mask,
            "returns_to_go": self.returns_to_go[index] * mask,  # (B, K)
            "timesteps": self.timesteps[index] * mask,  # (B, K)
            "mask": mask,
        }


class HistoryWindowDataset(WindowDataset):
    """Length-K windows that end at any step: that step and the K - 1 before it, left-padded (masked, zeroed)
    before the episode's start. What BC trains on: every step is a target, with the history a rollout gives it.
    """

    def __init__(self, traj: Trajectories, context_len: int, max_ep_len: int) -> None:
        super().__init__(traj, context_len, max_ep_len)
        self.episode_start = torch.from_numpy(traj.starts[:-1][traj.episode_ids])  # (N,)

    def __getitems__(self, ends: list[int]) -> dict[str, torch.Tensor]:
        end = torch.as_tensor(ends, dtype=torch.long, device=self.device)  # (B,)
        index = end[:, None] - torch.arange(self.context_len - 1, -1, -1, device=self.device)  # (B, K), last: `end`
        mask = index >= self.episode_start[end][:, None]  # (B, K): real steps; left padding before
        return self._gather(torch.where(mask, index, end[:, None]), mask)


WINDOWS = {"forward": WindowDataset, "history": HistoryWindowDataset}


class UniformStepSampler(DistributedSampler):
    """Window starts drawn uniformly over all steps.

    Equivalent to CORL/official sampling (episode drawn with probability proportional to its length, then
    a uniform start inside it), without a per-episode loop. Seeded by (seed, epoch) so runs and resumed
    runs see the same batches; `skip` drops the first draws of the next epoch iterated (a mid-epoch resume).

    Data-parallel training (`world_size` W > 1, `trainer=ddp`): rank r draws its `num_samples` starts,
    seeded by (seed, epoch, rank), uniformly among the steps r, r + W, r + 2W, ...: no two ranks ever draw the
    same window, and together they still draw every step with equal probability (to within W / num_steps
    when W does not divide num_steps). World size 1 is the single-process stream above, unchanged.
    A DistributedSampler, so that Lightning uses it as it is instead of wrapping it in one of its own.
    """

    def __init__(
        self,
        num_steps: int,
        num_samples: int,
        seed: int,
        epoch: int = 0,
        skip: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_steps < world_size:
            raise DTError(f"the dataset's {num_steps} steps cannot be split over {world_size} ranks: use fewer devices")
        super().__init__(range(num_steps), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.num_steps, self.num_samples, self.seed = num_steps, num_samples, seed  # num_samples: per rank
        self.total_size = num_samples * world_size
        self.epoch, self.skip = epoch, skip

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        if self.num_replicas == 1:
            rng = np.random.default_rng([self.seed, self.epoch])
            starts = rng.integers(0, self.num_steps, size=self.num_samples)  # the whole epoch's stream, always
        else:
            rng = np.random.default_rng([self.seed, self.epoch, self.rank])
            own_steps = len(range(self.rank, self.num_steps, self.num_replicas))  # steps rank, rank + W, ...
            starts = self.rank + self.num_replicas * rng.integers(0, own_steps, size=self.num_samples)
        skip, self.skip = self.skip, 0  # only the resumed epoch skips
        yield from starts[skip:].tolist()


def _batch_as_is(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch  # WindowDataset.__getitems__ already returns a collated batch


class DTDataModule(L.LightningDataModule):
    """Loads one dataset (or several ids as one), computes its statistics and serves length-K training windows."""

    def __init__(
        self,
        dataset_id: str | list[str] | None,
        dataset_path: str | None = None,
        download: bool = True,
        pct_traj: float = 1.0,
        delayed: bool = False,
        context_len: int = 20,
        max_ep_len: int = 1000,
        batch_size: int = 64,
        batches_per_epoch: int = 10_000,
        num_workers: int = 0,
        seed: int = 0,
        window: str = "forward",
        replay_steps: int = 500_000,
        trajectories_per_buffer: int = 10,
        generator: str | None = None,
        gather_device: str = "auto",
    ) -> None:
        super().__init__()
        if dataset_id is not None and not isinstance(dataset_id, str):
            dataset_id = [str(i) for i in dataset_id]  # several ids: their episodes as one dataset
        if window not in WINDOWS:
            raise DTError(f"data.window={window} must be one of {', '.join(WINDOWS)}")
        if gather_device not in ("auto", "cpu"):
            raise DTError(f"data.gather_device={gather_device} must be auto (the GPU when training on one) or cpu")
        if context_len < 1 or context_len > max_ep_len:
            raise DTError(f"K={context_len} must lie in [1, max_ep_len={max_ep_len}]")
        if not isinstance(batches_per_epoch, int) or batches_per_epoch < 1:
            raise DTError(
                f"trainer.limit_train_batches={batches_per_epoch} must be a positive integer: it is the epoch length"
            )
        self.save_hyperparameters(logger=False)
        self.trajectories: Trajectories | None = None
        self.train_set: WindowDataset | None = None  # `window`: forward (DT) or history (BC) windows

    def load(self) -> Trajectories:
        hp = self.hparams
        if hp.dataset_path and Path(hp.dataset_path).is_dir():  # a DQN-replay run folder (Dopamine logs)
            return load_dqn_replay(hp.dataset_path, hp.replay_steps, hp.trajectories_per_buffer, hp.seed)
        if hp.dataset_path:
            return load_d4rl_hdf5(hp.dataset_path)
        if not hp.dataset_id:
            raise DTError(
                "no dataset given: set dataset.id=<minari id> or dataset.path=<file.hdf5 | DQN-replay folder>"
            )
        ids = [hp.dataset_id] if isinstance(hp.dataset_id, str) else list(hp.dataset_id)
        for dataset_id in ids:
            if hp.generator and not minari_local(dataset_id):
                # Datasets dt makes itself (Key-to-Door): `generator(dataset_id)` writes it into MINARI_DATASETS_PATH.
                import_function(hp.generator, "dataset.generator")(dataset_id)
        if isinstance(hp.dataset_id, str):
            return load_minari(hp.dataset_id, download=hp.download)
        return concat([load_minari(i, download=hp.download) for i in ids], ids)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        traj = self.load()
        # Statistics over the whole dataset (as the official code), before %BC filtering.
        self.state_mean, self.state_std = state_stats(traj.observations)
        self.trajectories = traj
        if hp.delayed:
            traj = delay_rewards(traj)
        windows = WINDOWS[hp.window]
        self.train_set = windows(top_trajectories(traj, hp.pct_traj), hp.context_len, hp.max_ep_len)

    @property
    def spec(self) -> DataSpec:
        """What the module must remember to act later: shapes, state statistics, reference scores."""
        traj = self.trajectories
        assert traj is not None, "call setup() first"
        return DataSpec(
            state_shape=tuple(self.train_set.states.shape[1:]),  # (S,), or (4, 84, 84) for pixel stacks
            act_dim=self._action_count(traj),
            discrete=traj.discrete,
            state_mean=self.state_mean.tolist(),
            state_std=self.state_std.tolist(),
            env_id=traj.env_id,
            ref_min_score=traj.ref_min_score,
            ref_max_score=traj.ref_max_score,
            num_episodes=traj.num_episodes,
            num_steps=traj.num_steps,
            max_timestep=int(traj.lengths.max()) - 1,  # evaluation clamps timesteps here, as the official Atari code
            return_mean=float(traj.returns.mean()),
            return_max=float(traj.returns.max()),
        )

    @staticmethod
    def _action_count(traj: Trajectories) -> int:
        """Action dims, or the number of discrete actions: the dataset's action space `n` when recorded.

        Without it (HDF5 files) `max + 1` is a lower bound; `dt.train` raises it to the env's `n`.
        """
        if not traj.discrete:
            return int(traj.actions.shape[1])
        low, high = int(traj.actions.min()), int(traj.actions.max())
        if low < 0 or (traj.num_actions is not None and high >= traj.num_actions):
            raise DTError(
                f"dataset actions span [{low}, {high}], outside its action space of {traj.num_actions}: "
                "discrete actions must be indices 0..n-1"
            )
        return traj.num_actions if traj.num_actions is not None else high + 1

    def gather_device(self) -> torch.device:
        """Where batches are gathered. `auto`: the training GPU, when there is one and data.num_workers=0: the
        whole dataset then lives there and only the batch's start indices cross per step (no pinned copies)."""
        root = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        if self.hparams.gather_device == "cpu" or root.type != "cuda" or self.hparams.num_workers > 0:
            return torch.device("cpu")
        return root

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        self.train_set.to(self.gather_device())
        # Exact resume: a restored run continues the sampler's stream at the restored step (Lightning restores the
        # step counter and skips the batches done, but not a plain sampler's position).
        # Every rank does the same number of batches, so each skips the same count of its own stream.
        steps_done = self.trainer.global_step * self.trainer.accumulate_grad_batches if self.trainer else 0
        epoch, batches_done = divmod(steps_done, hp.batches_per_epoch)
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler = UniformStepSampler(  # batch_size and batches_per_epoch are per rank
            len(self.train_set),
            hp.batch_size * hp.batches_per_epoch,
            hp.seed,
            epoch,
            batches_done * hp.batch_size,
            rank=rank,
            world_size=world_size,
        )
        return DataLoader(
            self.train_set,
            batch_size=hp.batch_size,
            sampler=sampler,
            collate_fn=_batch_as_is,
            # Its own generator: iterating must not draw from the global torch RNG that dropout uses.
            generator=torch.Generator().manual_seed(hp.seed),
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            pin_memory=torch.cuda.is_available() and self.train_set.device.type == "cpu",
            drop_last=True,
        )
