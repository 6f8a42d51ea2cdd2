"""Token embeddings at initialization: ours (GPT-2 init, N(0, 0.02), on every layer) vs the official code's
(PyTorch defaults for the embeddings, which live outside HF's GPT2Model and so escape its init).

    python experiments/init_scale.py

Prints the mean norm of the state, return-to-go and timestep embeddings for Hopper-sized inputs
(11 normalized state dims, return-to-go 3600 / 1000, timesteps 0..999). See RESULTS.md.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from dt.models.transformer import DecisionTransformer, DTConfig


def main() -> None:
    torch.manual_seed(0)
    config = DTConfig(state_dim=11, act_dim=3, context_len=20, max_ep_len=1000)
    ours = DecisionTransformer(config)
    official = DecisionTransformer(replace(config, embed_init="pytorch"))  # model.net.embed_init=pytorch
    states = torch.randn(4096, 11)  # normalized states
    returns_to_go = torch.full((4096, 1), 3.6)  # target 3600, return scale 1000
    timesteps = torch.randint(0, 1000, (4096,))
    for name, model in (("ours", ours), ("official", official)):
        state = model.embed_state(states).norm(dim=1).mean()
        ret = model.embed_return(returns_to_go).norm(dim=1).mean()
        time = model.embed_timestep(timesteps).norm(dim=1).mean()
        print(f"{name:>8}: |state| {state:.2f}  |return-to-go| {ret:.2f}  |timestep| {time:.2f}")


if __name__ == "__main__":
    with torch.no_grad():
        main()
