"""What the Dockerfiles promise, read without building them (CI has no container engine; the real
build and one analysis are scripts/docker-smoke.sh): multi-stage, a non-root runtime user, the locks
installed as they are, the project without its dependencies, offline model hubs, and every COPY source
present and not excluded by .dockerignore. The code the Serve configs import is in the image."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"Dockerfile": "requirements.lock", "Dockerfile.gpu": "requirements-gpu.lock"}


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(path: Path) -> list[Stage]:
    """The stages of a Dockerfile: (INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)", args, re.IGNORECASE)
            stages.append(Stage(match.group(1) if match else str(len(stages))))
        elif stages:
            stages[-1].instructions.append((keyword, " ".join(args.split())))
    return stages


def ignored(name: str) -> bool:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(name.split("/")[0], p) for p in patterns)


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_multi_stage_non_root_from_the_lock(dockerfile: str) -> None:
    stages = parse(ROOT / dockerfile)
    assert [s.name for s in stages] == ["builder", "runtime"]
    builder, runtime = stages
    lock = DOCKERFILES[dockerfile]
    runs = " ".join(builder.all("RUN"))
    assert f"uv pip sync --python /opt/venv/bin/python {lock}" in runs
    assert re.search(r"uv pip install --python /opt/venv/bin/python --no-deps -e \.", runs)
    # The runtime stage only copies what the builder made: no installer runs there.
    assert not any("pip install" in r or "uv " in r for r in runtime.all("RUN"))
    assert {a.split()[0] for a in runtime.all("COPY")} == {"--from=builder"}
    (user,) = runtime.all("USER")
    assert user not in ("root", "0")
    assert any("useradd" in r and user in r for r in runtime.all("RUN"))
    env = " ".join(runtime.all("ENV"))
    assert "HF_HUB_OFFLINE=1" in env and "PATH=/opt/venv/bin:" in env


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_copy_sources_exist_and_are_not_ignored(dockerfile: str) -> None:
    builder = parse(ROOT / dockerfile)[0]
    sources = [s for args in builder.all("COPY") for s in args.split()[:-1] if not s.startswith("--")]
    assert DOCKERFILES[dockerfile] in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_the_serve_configs_code_is_copied(dockerfile: str) -> None:
    copied = {args.split()[0].rstrip("/") for args in parse(ROOT / dockerfile)[0].all("COPY")}
    assert {"configs", "models", "deployments", "platform", "pyproject.toml"} <= copied
    for config in sorted((ROOT / "configs").glob("serve.*.yaml")):
        for app in yaml.safe_load(config.read_text())["applications"]:
            module = app["import_path"].split(":")[0]
            top = module.split(".")[0]
            assert top in copied and (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_gpu_image_finds_cuda_12_cublas() -> None:
    runtime = parse(ROOT / "Dockerfile.gpu")[1]
    env = " ".join(runtime.all("ENV"))
    match = re.search(r"LD_LIBRARY_PATH=(\S+)", env)
    assert match, "ctranslate2 needs libcublas.so.12 on the loader path"
    assert "/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib" in match.group(1).split(":")
    assert "nvidia-cublas-cu12==" in (ROOT / "requirements-gpu.lock").read_text()


def test_ray_cluster_images_are_the_ones_the_dockerfiles_build() -> None:
    cluster = yaml.safe_load((ROOT / "ray-cluster.yaml").read_text())
    built = {
        dockerfile: re.findall(r"docker build (?:-f \S+ )?-t (\S+) \.", (ROOT / dockerfile).read_text())
        for dockerfile in DOCKERFILES
    }
    assert cluster["docker"]["image"] in built["Dockerfile"]
    for node in cluster["available_node_types"].values():
        image = (node.get("docker") or {}).get("worker_image")
        if image:
            assert image in built["Dockerfile.gpu"], image
    # The cluster's paths are under the image user's home (Ray's images use `ray`, /home/ray).
    for dockerfile in DOCKERFILES:
        assert parse(ROOT / dockerfile)[1].all("USER") == ["ray"]
