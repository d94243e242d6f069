"""deploy/ validated offline: Kubernetes schemas, the compose spec, hadolint, dask-jobqueue."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S_VERSION = "1.30.0"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_extract_job_manifests_validate() -> None:
    docs = _docs(DEPLOY / "kubernetes" / "extract-job.yaml")
    assert [d["kind"] for d in docs] == ["Namespace", "ServiceAccount", "Job"]
    for doc in docs:
        _validate(doc)
    job = docs[-1]["spec"]["template"]["spec"]
    container = job["containers"][0]
    assert job["securityContext"]["runAsNonRoot"] is True
    assert container["envFrom"][0]["secretRef"]["name"] == "s3-credentials"
    text = (DEPLOY / "kubernetes" / "extract-job.yaml").read_text()
    assert "AWS_SECRET_ACCESS_KEY=" not in text.replace("AWS_SECRET_ACCESS_KEY=...", "")


def test_daskcluster_pod_specs_validate_as_pods() -> None:
    (cluster,) = _docs(DEPLOY / "kubernetes" / "daskcluster.yaml")
    assert cluster["kind"] == "DaskCluster" and cluster["apiVersion"] == "kubernetes.dask.org/v1"
    meta = {"name": "x", "namespace": "audio-pipeline"}
    for role in ("scheduler", "worker"):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": cluster["spec"][role]["spec"]}
        _validate(pod)
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": cluster["spec"]["scheduler"]["service"]}
    _validate(service)


def test_a_broken_manifest_is_caught() -> None:
    (doc,) = [d for d in _docs(DEPLOY / "kubernetes" / "extract-job.yaml") if d["kind"] == "Job"]
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(doc)


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is not installed: `make test` installs it (pip install -e '.[test]')")
    return path


def test_compose_file_validates_against_the_compose_spec() -> None:
    compose = DEPLOY / "docker" / "compose.yaml"
    proc = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    services = yaml.safe_load(compose.read_text())["services"]
    assert {"scheduler", "worker", "minio", "extract"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_dockerfile_lints_clean_and_runs_as_non_root() -> None:
    dockerfile = DEPLOY / "docker" / "Dockerfile"
    proc = subprocess.run([_tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line.split() for line in dockerfile.read_text().splitlines() if line and not line.startswith("#")]
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert not any("SECRET" in " ".join(words) or "AWS_ACCESS_KEY" in " ".join(words) for words in lines)


def test_slurm_cluster_builds_the_expected_job_script() -> None:
    sys.path.insert(0, str(DEPLOY / "slurm"))
    try:
        import cluster as slurm
    finally:
        sys.path.pop(0)
    with slurm.make_cluster(jobs=0, queue="cpu", walltime="01:00:00", memory="4GB", interface=None, host="127.0.0.1") as c:
        script = c.job_script()
    assert "#SBATCH -p cpu" in script
    assert "#SBATCH --cpus-per-task=1" in script
    assert "--nthreads 1" in script
    assert "OPENBLAS_NUM_THREADS=1" in script
