"""eval.compile: the acting call compiled at bucketed batch sizes gives eager's actions and episodes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from dt.errors import DTError
from dt.evaluation.compiled import CompiledPolicy, bucket_sizes, compile_backend, pad_rows
from dt.evaluation.precision import module_policy
from dt.evaluation.settings import EvalSettings
from dt.evaluation.setup import Evaluation
from dt.models.dt_module import DTModule
from tests.helpers import compose_config

K, S, A = 4, 5, 3


def small_module(discrete: bool) -> DTModule:
    torch.manual_seed(0)
    spec = {"state_dim": S, "act_dim": A, "discrete": discrete, "state_mean": [0.5] * S, "state_std": [2.0] * S}
    net = {"embed_dim": 32, "n_layer": 2, "n_head": 2, "dropout": 0.1}
    return DTModule(net, {}, spec, context_len=K, max_ep_len=50, return_scale=10.0).eval()


def window(M: int, T: int, discrete: bool, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    actions = torch.randint(0, A, (M, T), generator=g) if discrete else torch.rand(M, T, A, generator=g) * 2 - 1
    timesteps = torch.arange(10, 10 + T).expand(M, -1)  # expanded, as the rollout passes them
    return torch.randn(M, T, generator=g) * 10, torch.randn(M, T, S, generator=g), actions, timesteps


def test_buckets_halve_from_the_env_count_down_to_one() -> None:
    assert bucket_sizes(200) == [1, 2, 4, 7, 13, 25, 50, 100, 200]
    assert bucket_sizes(8) == [1, 2, 4, 8] and bucket_sizes(1) == [1]
    padded = pad_rows(torch.ones(3, 2).expand(3, 2), 5)
    assert padded.is_contiguous() and padded.tolist() == [[1, 1]] * 3 + [[0, 0]] * 2


def test_compile_setting_is_checked() -> None:
    assert compile_backend(False) is None and compile_backend(True) == "inductor"
    assert compile_backend("aot_eager") == "aot_eager"
    with pytest.raises(DTError, match="eval.compile=fast must be false, true"):
        compile_backend("fast")


def check_against_eager(backend: str, discrete: bool) -> None:
    module = small_module(discrete)
    eager = module_policy(module, "32")
    compiled = CompiledPolicy(module, "32", K, max_batch=8, backend=backend)
    for M, T in ((8, K), (5, K), (3, 2), (1, K), (8, K)):  # padded to 8, 4 (eager: T < K), 1, 8 again
        inputs = window(M, T, discrete, seed=M + T)
        uniform = torch.rand(M, dtype=torch.float64, generator=torch.Generator().manual_seed(M)) if discrete else None
        sampling = {} if uniform is None else {"uniform": uniform}
        with torch.inference_mode():  # as in the rollouts
            got, want = compiled(*inputs, **sampling), eager(*inputs, **sampling)
        assert got.shape == want.shape
        if discrete:
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        else:
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert compiled.compiled_calls == 4  # the T < K call ran eager


@pytest.mark.parametrize("discrete", [False, True])
def test_compiled_calls_equal_eager_aot_eager(discrete: bool) -> None:
    """The bucketing and padding, through a compiler that keeps eager's kernels (fast)."""
    check_against_eager("aot_eager", discrete)


@pytest.mark.slow
@pytest.mark.parametrize("discrete", [False, True])
def test_compiled_calls_equal_eager_inductor(discrete: bool) -> None:
    """What eval.compile=true runs on a CPU: inductor's fused kernels, within 1e-5 of eager (a minute or more)."""
    check_against_eager("inductor", discrete)


def test_compiled_rollout_gives_the_eager_episodes(tiny_module) -> None:  # noqa: F811
    """An Evaluation with eval.compile: the same episodes as eager, most calls compiled, graphs kept across runs."""
    run_config = tiny_module.hparams.run_config
    settings = EvalSettings.for_run(run_config, {"episodes": 3, "target_returns": [3600, 500], "max_ep_len": 40})
    with Evaluation(tiny_module, settings) as evaluation:
        eager = evaluation.run(tiny_module)
    with Evaluation(tiny_module, replace(settings, compile="aot_eager")) as evaluation:
        compiled = evaluation.run(tiny_module)
        policy = evaluation.policy(tiny_module)
        assert isinstance(policy, CompiledPolicy) and policy.compiled_calls > 0
        assert evaluation.policy(tiny_module) is policy  # the next epoch's evaluation reuses its graphs
    assert max(r.lengths.max() for r in eager) > evaluation.spec.context_len  # full windows were reached
    for a, b in zip(compiled, eager, strict=True):
        np.testing.assert_array_equal(a.lengths, b.lengths)
        np.testing.assert_allclose(a.returns, b.returns, rtol=0, atol=1e-4)


def test_eval_compile_reaches_the_callback(tmp_path) -> None:
    cfg = compose_config(["eval.compile=aot_eager"], output_dir=tmp_path)
    assert cfg.callbacks.rollout_eval.compile == "aot_eager"
    assert compose_config([], output_dir=tmp_path).eval.compile is False  # the default: eager
