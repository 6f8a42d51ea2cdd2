"""`make bench` (experiments/bench.py) runs end to end on the tiny dataset: every row, finite positive figures.

No timing assertions: the figures only have to exist. Row 1b (Hugging Face's DecisionTransformerModel) needs the
`bench` extra; without it the bench prints a hint and leaves the row out.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from experiments import bench
from tests.helpers import require_transformers


@pytest.mark.parametrize("with_hf", [True, False], ids=["with-transformers", "without"])
def test_bench_prints_every_row(
    with_hf: bool,
    tiny_minari: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if with_hf:
        require_transformers()  # skipped without the bench extra; CI (DT_REQUIRE_TRANSFORMERS=1) fails instead
    if not with_hf:
        monkeypatch.setattr(bench, "transformers_version", lambda: None)  # as without the bench extra
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only waits on a busy core (CI shares its 2 cores)
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    argv = ["--dataset", tiny_minari, "--device", "cpu", "--K", "5", "--batch-size", "8", "--steps", "2"]
    argv += ["--rounds", "2", "--warmup", "1", "--sampler-batches", "2", "--preprocess-steps", "5000"]
    argv += ["--fresh", "--episodes", "2", "--max-ep-len", "10", "--compile-backend", "aot_eager"]  # 3d: quick
    rows = bench.main(argv)

    expected = {"load": 2, "1a": 1, "1b": int(with_hf), "1c": 1, "2a": 1, "2b": 1, "3a": 2, "3b": 1, "3c": 1, "3d": 1}
    expected["3"] = 1
    expected |= {"4": 4, "5": 2}  # RSS after load, training, sampler, evaluation; train and eval profiles
    assert Counter(r.key for r in rows) == Counter({k: n for k, n in expected.items() if n})
    for r in rows:
        assert math.isfinite(r.value) and r.value > 0, r
    assert [r.key for r in rows if r.ratio == "reference"] == ["1b"] * with_hf + ["2b", "3b"]

    out = capsys.readouterr().out
    assert "CPU native bf16: " in out and "torch " in out and "evaluation model: a freshly initialized" in out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(rows)  # the header line and one line per row
    assert (bench.HF_HINT in out) != with_hf
