"""`make install TORCH=...`: the commands each kind of machine gets (`make -n`, nothing installed), and the CUDA
path's resolution, done by uv against PyPI for Linux x86_64: PyPI's torch is a CUDA build there, and every other
package must come out at its locked version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
TORCH_VERSION = "2.13.0"
EXTRAS = re.search(r"^EXTRAS \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)[1]  # what `make install` adds


def make_install(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    """`make -n install ...`: the commands, printed, none run."""
    env = {**os.environ, **({"PATH": path} if path else {})}
    return subprocess.run(
        ["make", "-n", "install", "PYTHON=python", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line of a lock file."""
    return {m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def test_cpu_install_is_the_lock() -> None:
    out = make_install("TORCH=cpu").stdout
    assert re.search(r"pip install\s+(--find-links \S+ )?-c requirements.lock -e ", out)
    assert f'-e ".[{EXTRAS}]"' in out
    assert "===" not in out and "index-url" not in out
    assert f"torch=={TORCH_VERSION}+cpu" in LOCK.read_text()
    assert not re.search(r"^nvidia-", LOCK.read_text(), re.M)  # CI's lock stays CPU-only


def test_cuda_install_takes_torch_from_pypi_and_the_rest_from_the_lock() -> None:
    out = make_install("TORCH=cuda").stdout
    assert "grep -v '^torch==' requirements.lock > .requirements-without-torch.lock" in out
    assert f'-c .requirements-without-torch.lock "torch==={TORCH_VERSION}" -e ".[{EXTRAS}]"' in out
    assert "--find-links" not in out  # its +cpu wheel would win over PyPI's CUDA build


def test_cu_nnn_install_takes_only_torch_from_pytorchs_index() -> None:
    out = make_install("TORCH=cu128").stdout
    assert f'--no-deps --index-url https://download.pytorch.org/whl/cu128 "torch=={TORCH_VERSION}+cu128"' in out
    assert f'-c .requirements-without-torch.lock "torch=={TORCH_VERSION}" -e ".[{EXTRAS}]"' in out


def test_auto_follows_nvidia_smi(tmp_path: Path) -> None:
    no_driver = make_install(path="/usr/bin:/bin").stdout
    assert "cpu build (TORCH=auto)" in no_driver and "-c requirements.lock" in no_driver
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    driver = make_install(path=f"{tmp_path}:/usr/bin:/bin").stdout
    assert "cuda build (TORCH=auto)" in driver and "torch===" in driver


def test_unknown_torch_build_is_one_line_error() -> None:
    result = make_install("TORCH=rocm")
    assert result.returncode != 0
    assert "TORCH=rocm: use auto, cpu, cuda or cu<NNN> (e.g. cu128)" in result.stderr


def pypi_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/torch/", timeout=10).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_cuda_path_resolves_to_cuda_torch_and_the_locked_rest(tmp_path: Path) -> None:
    """What `make install TORCH=cuda` asks pip for, resolved (metadata only, no wheels downloaded) for Linux x86_64."""
    if not pypi_reachable():
        pytest.skip("PyPI is not reachable: the CUDA resolution needs its index")
    constraints = tmp_path / "without-torch.lock"
    constraints.write_text(
        "".join(line for line in LOCK.read_text().splitlines(True) if not line.startswith("torch=="))
    )
    resolved = tmp_path / "cuda.lock"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}  # PyPI only: no local wheels
    extras = [f"--extra={extra}" for extra in EXTRAS.split(",")]
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "compile", "pyproject.toml", "-", *extras, "-c", str(constraints),
         "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28", "--no-config", "--quiet",
         "-o", str(resolved)],
        input=f"torch==={TORCH_VERSION}\n", cwd=ROOT, env=env, check=True, text=True, timeout=600,
    )  # fmt: skip
    cuda, locked = pins(resolved.read_text()), pins(LOCK.read_text())
    assert cuda["torch"] == TORCH_VERSION
    assert any(name.startswith("nvidia-") for name in cuda), "PyPI's torch should pull CUDA (nvidia-*) wheels"
    added = {name for name in cuda if name not in locked}
    assert all(name.startswith(("nvidia-", "cuda-", "triton")) for name in added), added
    changed = {name: (locked[name], v) for name, v in cuda.items() if name in locked and v != locked[name]}
    assert changed == {"torch": (f"{TORCH_VERSION}+cpu", TORCH_VERSION)}
