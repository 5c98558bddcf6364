"""docker-compose.yaml, Dockerfile and .env.example agree with the Compose specification, with each
other and with pyproject.toml's pins, without a Docker engine.

Each check is a function returning its problems (one line each), tested on the real files and on a
small bad document, so a check that cannot fail would show here.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
PYPROJECT = ROOT / "pyproject.toml"

# the services built from ./Dockerfile: Airflow's components and the Spark workers
BUILT_IMAGE = "featurepipe"
SPARK_IMAGE = "apache/spark"
AIRFLOW_IMAGE = "apache/airflow"

# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`, `$NAME`;
# `$$` is Compose's escaped dollar (the container's shell sees one `$`), removed before matching
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?+])[^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")
_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}")


# ---------------------------------------------------------------- readers


def load_compose(text: str) -> dict:
    """The Compose document with anchors and `<<` merges resolved (as Compose resolves them)."""
    return yaml.safe_load(text)


def pinned_versions(pyproject: dict) -> dict[str, str]:
    """`name==version` dependencies of pyproject.toml, by lower-case name (extras dropped)."""
    pins = {}
    for requirement in pyproject["project"]["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;,]+)\s*(?:;.*)?", requirement)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def strings(node) -> list[str]:
    """Every string value of a YAML tree (Compose interpolates values, not keys or comments)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


def variables(doc: dict) -> set[str]:
    """Names of every variable Compose would interpolate in the document."""
    names = set()
    for text in strings(doc):
        for match in _VARIABLE.finditer(text.replace("$$", "")):
            names.add(match.group(1) or match.group(2))
    return names


def env_file_names(text: str) -> set[str]:
    """Names assigned in an env file (`NAME=value`; comments and blank lines skipped)."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, _ = line.removeprefix("export ").partition("=")
            if sep:
                names.add(name.strip())
    return names


def resolve_defaults(text: str) -> str:
    """`${NAME:-default}` -> `default`, for reading an image reference that has a variable in it."""
    return _DEFAULT.sub(lambda m: m.group(1), text)


def split_image(reference: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/name:tag@sha256:…` -> (name, tag, digest)."""
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def dockerfile_args(text: str) -> dict[str, str]:
    """Default values of the ARGs declared before the first FROM (the ones FROM lines can use)."""
    args = {}
    for line in _logical_lines(text):
        if re.match(r"(?i)FROM\s", line):
            break
        match = re.match(r"(?i)ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?", line)
        if match:
            args[match.group(1)] = (match.group(2) or "").strip("\"'")
    return args


def dockerfile_bases(text: str) -> list[tuple[str, str | None]]:
    """(image reference with global ARGs substituted, stage name) of every FROM line."""
    args = dockerfile_args(text)
    bases = []
    for line in _logical_lines(text):
        match = re.match(r"(?i)FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line)
        if match:
            reference = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), match.group(1))
            bases.append((reference, match.group(2)))
    return bases


def _logical_lines(text: str) -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    return [line for line in lines if line]


# ---------------------------------------------------------------- checks


def unpinned_images(doc: dict) -> list[str]:
    """Services whose image has no tag (Docker's implicit `latest`) or the tag `latest`."""
    problems = []
    for name, service in (doc.get("services") or {}).items():
        reference = service.get("image")
        if reference is None:
            if "build" not in service:
                problems.append(f"{name}: neither image nor build")
            continue
        image, tag, digest = split_image(resolve_defaults(str(reference)))
        if "$" in image or (tag and "$" in tag):
            problems.append(f"{name}: image {reference!r} depends on a variable without a default")
        elif digest is None and tag is None:
            problems.append(f"{name}: image {reference!r} has no tag (means latest)")
        elif tag == "latest":
            problems.append(f"{name}: image {reference!r} is tagged latest")
    return problems


def unpinned_bases(bases: list[tuple[str, str | None]]) -> list[str]:
    """FROM lines on an untagged or `latest` image (earlier stages of the same file excepted)."""
    stages, problems = set(), []
    for reference, stage in bases:
        if reference not in stages:
            _, tag, digest = split_image(reference)
            if "$" in reference:
                problems.append(f"FROM {reference}: an ARG without a default")
            elif digest is None and tag in (None, "latest"):
                problems.append(f"FROM {reference}: not pinned (no tag or latest)")
        if stage:
            stages.add(stage)
    return problems


def undeclared_variables(doc: dict, env_example: str) -> list[str]:
    """Variables the compose file uses that .env.example does not list, and the reverse."""
    used, listed = variables(doc), env_file_names(env_example)
    return [f"${{{name}}} is used but not in .env.example" for name in sorted(used - listed)] + [
        f"{name} is in .env.example but docker-compose.yaml never uses it" for name in sorted(listed - used)
    ]


ONE_SHOT_RESTARTS = {None, "no", "on-failure"}


def dependency_problems(doc: dict) -> list[str]:
    """Every depends_on waits for health or for a one-shot job's success, on a service that can give it.

    `service_healthy` needs a healthcheck on the dependency; `service_completed_successfully` needs a
    job that ends (not restarted forever); a bare list or `service_started` waits for nothing.
    """
    services = doc.get("services") or {}
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        for dep, spec in depends.items():
            condition = (spec or {}).get("condition", "service_started")
            target = services.get(dep)
            if target is None:
                problems.append(f"{name} depends on {dep}, which is not a service")
            elif dep == name:
                problems.append(f"{name} depends on itself")
            elif condition == "service_healthy":
                check = target.get("healthcheck")
                if not check or check.get("disable") or not check.get("test") or check.get("test") == ["NONE"]:
                    problems.append(f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")
            elif condition == "service_completed_successfully":
                if target.get("restart") not in ONE_SHOT_RESTARTS:
                    problems.append(f"{name} waits for {dep} to complete, but {dep} restarts {target.get('restart')}")
            else:
                problems.append(f"{name} depends on {dep} with {condition}: wait for service_healthy "
                                f"or service_completed_successfully")
    return problems


def version_problems(doc: dict, dockerfile: str, pyproject: dict) -> list[str]:
    """Airflow and Spark versions in the compose file and the Dockerfile equal pyproject.toml's pins."""
    pins = pinned_versions(pyproject)
    airflow, pyspark, project = pins.get("apache-airflow"), pins.get("pyspark"), pyproject["project"]["version"]
    problems = []
    if not airflow or not pyspark:
        return ["pyproject.toml must pin apache-airflow==… and pyspark==…"]

    args = dockerfile_args(dockerfile)
    if args.get("AIRFLOW_VERSION") != airflow:
        problems.append(f"Dockerfile ARG AIRFLOW_VERSION={args.get('AIRFLOW_VERSION')}, pyproject pins apache-airflow=={airflow}")
    bases = [reference for reference, _ in dockerfile_bases(dockerfile)]
    airflow_bases = [b for b in bases if split_image(b)[0] == AIRFLOW_IMAGE]
    if len(airflow_bases) != 1:
        problems.append(f"Dockerfile must build FROM {AIRFLOW_IMAGE} once, has {airflow_bases}")
    for base in airflow_bases:
        tag = split_image(base)[1] or ""
        match = re.fullmatch(r"(?:slim-)?(\d+\.\d+\.\d+)-python(\d+\.\d+)", tag)
        if not match or match.group(1) != airflow:
            problems.append(f"Dockerfile FROM {base}: Airflow must be {airflow}, tagged <version>-python<x.y>")
        elif not _python_allowed(match.group(2), pyproject["project"].get("requires-python", "")):
            problems.append(f"Dockerfile FROM {base}: Python {match.group(2)} outside requires-python "
                            f"{pyproject['project'].get('requires-python')}")

    services = doc.get("services") or {}
    built = {name: s for name, s in services.items() if "build" in s}
    expected_image = f"{BUILT_IMAGE}:{project}-airflow{airflow}"
    for name, service in built.items():
        if service.get("image") != expected_image:
            problems.append(f"{name}: built image should be tagged {expected_image} (project {project}, "
                            f"Airflow {airflow}), is {service.get('image')}")
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                 "airflow-worker", "airflow-init", "spark-worker"):
        if name not in built:
            problems.append(f"{name}: must be built from the Dockerfile (the pinned Airflow and pyspark)")

    masters = {name: s["image"] for name, s in services.items() if split_image(str(s.get("image", "")))[0] == SPARK_IMAGE}
    if not masters:
        problems.append(f"no service runs the {SPARK_IMAGE} image (the Spark master)")
    java = args.get("JAVA_VERSION")
    for name, reference in masters.items():
        tag = split_image(reference)[1] or ""
        match = re.match(r"(\d+\.\d+\.\d+)(?:-scala[\d.]+)?(?:-java(\d+))?", tag)
        if not match or match.group(1) != pyspark:
            problems.append(f"{name}: {reference} must be Spark {pyspark} (pyproject pins pyspark=={pyspark})")
        elif match.group(2) and java and match.group(2) != java:
            problems.append(f"{name}: {reference} runs Java {match.group(2)}, the Dockerfile's drivers Java {java}")
    return problems


def _python_allowed(version: str, requires: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(requires).contains(f"{version}.0")


def shell_scripts(doc: dict) -> list[tuple[str, str, str]]:
    """(service, shell, script) of every `sh -c`/`bash -c` script, `$$` unescaped as the container sees it."""
    found = []
    for name, service in (doc.get("services") or {}).items():
        argv = []
        for key in ("entrypoint", "command"):
            value = service.get(key)
            argv += value if isinstance(value, list) else ([] if value is None else str(value).split())
        for i, arg in enumerate(argv[:-1]):
            if arg == "-c" and i > 0 and Path(str(argv[i - 1])).name in ("sh", "bash"):
                found.append((name, Path(argv[i - 1]).name, str(argv[i + 1]).replace("$$", "$")))
    return found


def schema_errors(path: Path) -> str:
    """check-jsonschema's verdict on a file against the Compose specification ('' when valid)."""
    tool = Path(sys.executable).with_name("check-jsonschema")
    command = [str(tool)] if tool.exists() else [sys.executable, "-m", "check_jsonschema"]
    result = subprocess.run([*command, "--builtin-schema", "vendor.compose-spec", str(path)],
                            check=False, capture_output=True, text=True, timeout=120)
    return "" if result.returncode == 0 else (result.stdout + result.stderr).strip() or f"exit {result.returncode}"


# ---------------------------------------------------------------- the real files


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose(COMPOSE.read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(COMPOSE) == ""


def test_every_image_is_pinned(compose) -> None:
    assert unpinned_images(compose) == []
    assert unpinned_bases(dockerfile_bases(DOCKERFILE.read_text())) == []


def test_every_variable_is_in_env_example(compose) -> None:
    assert variables(compose), "no ${VAR} found: the variable reader is broken"
    assert undeclared_variables(compose, ENV_EXAMPLE.read_text()) == []


def test_every_dependency_waits_for_health_or_completion(compose) -> None:
    assert dependency_problems(compose) == []


def test_versions_equal_the_pinned_python_packages(compose, pyproject) -> None:
    assert version_problems(compose, DOCKERFILE.read_text(), pyproject) == []


def test_shell_scripts_parse(compose) -> None:
    scripts = shell_scripts(compose)
    assert {name for name, _, _ in scripts} >= {"redis", "minio-init", "airflow-init"}
    for name, shell, script in scripts:
        # bash -n for both: a POSIX sh script is valid bash; the Airflow image's init script is bash
        result = subprocess.run(["bash", "-n", "-c", script], check=False, capture_output=True, text=True)
        assert result.returncode == 0, f"{name}'s {shell} script: {result.stderr}"


def test_no_secret_has_a_default(compose) -> None:
    """A secret comes from .env or fails the start (`${VAR:?…}`), never from a default in the file."""
    secret = re.compile(r"PASSWORD|SECRET|FERNET", re.IGNORECASE)
    for text in strings(compose):
        for match in re.finditer(r"\$\{([A-Za-z_]\w*)(:?[-?+])?", text.replace("$$", "")):
            if secret.search(match.group(1)):
                assert match.group(2) in (":?", "?"), f"${{{match.group(1)}}} must be required (:?), in {text!r}"


def test_airflow_api_requires_authentication(compose) -> None:
    env = compose["services"]["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${")
    assert "AUTH_BACKEND" not in " ".join(env)  # no Airflow 2 style "allow everyone" backends


def test_env_is_git_ignored_and_never_sent_to_docker() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], check=False, cwd=ROOT)
    assert ignored.returncode == 0, ".env must be listed in .gitignore"
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


# ---------------------------------------------------------------- the checks can fail

BAD_COMPOSE = """
x-common: &common
  image: example/app
services:
  db:
    image: postgres
  cache:
    image: redis:latest
    restart: always
  app:
    <<: *common
    environment:
      A: ${UNLISTED}
      B: ${WITH_DEFAULT:-x}
      C: ${REQUIRED:?set it}
      D: $$NOT_A_VARIABLE
      E: $BARE
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_completed_successfully
      ghost:
        condition: service_healthy
  worker:
    image: example/worker:1.0@sha256:0123
    depends_on: [app]
"""


def test_checks_catch_a_bad_document(tmp_path) -> None:
    doc = load_compose(BAD_COMPOSE)
    assert unpinned_images(doc) == [
        "db: image 'postgres' has no tag (means latest)",
        "cache: image 'redis:latest' is tagged latest",
        "app: image 'example/app' has no tag (means latest)",
    ]
    assert variables(doc) == {"UNLISTED", "WITH_DEFAULT", "REQUIRED", "BARE"}
    assert undeclared_variables(doc, "# a comment\nWITH_DEFAULT=1\nREQUIRED=2\nBARE=3\nSTALE=4\n") == [
        "${UNLISTED} is used but not in .env.example",
        "STALE is in .env.example but docker-compose.yaml never uses it",
    ]
    assert dependency_problems(doc) == [
        "app waits for db to be healthy, but db has no healthcheck",
        "app waits for cache to complete, but cache restarts always",
        "app depends on ghost, which is not a service",
        "worker depends on app with service_started: wait for service_healthy or service_completed_successfully",
    ]
    bad = tmp_path / "docker-compose.yaml"
    bad.write_text("services:\n  app:\n    image: 5\n    depends_on:\n      db:\n        condition: whenever\n")
    assert "condition" in schema_errors(bad) or "whenever" in schema_errors(bad)


def test_version_check_catches_drift(compose, pyproject) -> None:
    dockerfile = DOCKERFILE.read_text()
    moved = {**pyproject, "project": {**pyproject["project"], "dependencies": [
        "apache-airflow==9.9.9" if d.startswith("apache-airflow==") else
        "pyspark==9.8.7" if d.startswith("pyspark==") else d
        for d in pyproject["project"]["dependencies"]]}}
    problems = "\n".join(version_problems(compose, dockerfile, moved))
    assert "AIRFLOW_VERSION=3" in problems and "apache-airflow==9.9.9" in problems
    assert "must be Spark 9.8.7" in problems
    assert "airflow9.9.9" in problems  # the built image's tag

    old_python = dockerfile.replace("ARG PYTHON_VERSION=", "ARG PYTHON_VERSION=3.9 #")
    assert any("outside requires-python" in p for p in version_problems(compose, old_python, pyproject))
    assert unpinned_bases(dockerfile_bases("ARG V=1\nFROM base:${V} AS one\nFROM one\nFROM other\nFROM x:latest\n")) == [
        "FROM other: not pinned (no tag or latest)",
        "FROM x:latest: not pinned (no tag or latest)",
    ]


def test_shell_check_sees_a_broken_script() -> None:
    doc = load_compose("services:\n  job:\n    image: a:1\n    entrypoint: [/bin/sh, -c]\n    command: ['if true; then echo $$HOME']\n")
    [(name, shell, script)] = shell_scripts(doc)
    assert (name, shell, script) == ("job", "sh", "if true; then echo $HOME")
    assert subprocess.run(["bash", "-n", "-c", script], check=False, capture_output=True).returncode != 0
