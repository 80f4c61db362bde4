"""Dockerfile, .dockerignore and docker-compose.yml: the essentials, checked by reading them.

No Docker engine runs in CI, so these tests parse the files and assert what a review would:
non-root numeric USER, a HEALTHCHECK that runs a script the image really contains, an exec-form
ENTRYPOINT naming the package's console script, the audit-log volume, nothing secret baked in.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = "/var/log/aegis-mcp"
STATE_DIR = "/var/lib/aegis-mcp"  # the OAuth store: writable and persistent on a read-only root


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    result, pending = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return result


def stages(items):
    """The instruction lists of each build stage, keyed by position."""
    out = []
    for name, args in items:
        if name == "FROM":
            out.append([])
        assert out, "instruction before the first FROM"
        out[-1].append((name, args))
    return out


def env_pairs(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args))


@pytest.fixture(scope="module")
def dockerfile():
    return instructions(ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def final(dockerfile):
    return stages(dockerfile)[-1]


def only(stage, name):
    found = [args for n, args in stage if n == name]
    assert len(found) == 1, f"expected one {name}, found {found}"
    return found[0]


def test_multi_stage_from_python_slim(dockerfile):
    froms = [args for name, args in dockerfile if name == "FROM"]
    assert len(froms) == 2
    assert froms[0].split()[0] == froms[1].split()[0] == "python:3.11-slim"
    assert froms[0].split()[1:] == ["AS", "builder"]
    builder = stages(dockerfile)[0]
    runs = " ".join(args for name, args in builder if name == "RUN")
    assert "python -m venv /opt/venv" in runs and "pip install ." in runs
    copied = [args for name, args in builder if name == "COPY"]
    assert any("setup.py" in c and "README.m" in c for c in copied)
    assert any(c.startswith("aegis_tornado/") for c in copied)


def test_runtime_copies_the_venv_and_sets_env(final):
    assert any(
        args == "--from=builder /opt/venv /opt/venv" for name, args in final if name == "COPY"
    )
    env = {}
    for name, args in final:
        if name == "ENV":
            env.update(env_pairs(args))
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["MCP_HOST"] == "0.0.0.0"
    assert env["MCP_PORT"] == "8080"
    assert env["AUDIT_LOG_PATH"] == f"{LOG_DIR}/audit.log"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert only(final, "EXPOSE") == "8080"


def test_runs_as_fixed_non_root_user(final):
    user = only(final, "USER")
    assert re.fullmatch(r"\d+:\d+", user), "numeric UID:GID, so runAsNonRoot can verify it"
    uid, gid = (int(x) for x in user.split(":"))
    assert uid >= 1000 and gid >= 1000
    runs = " ".join(args for name, args in final if name == "RUN")
    assert f"--uid {uid}" in runs and f"--gid {gid}" in runs
    # The log directory exists and belongs to that user before it becomes a volume.
    assert f"mkdir -p {LOG_DIR}" in runs
    assert f"chown {uid}:{gid} {LOG_DIR}" in runs
    names = [name for name, _ in final]
    assert names.index("USER") > max(i for i, n in enumerate(names) if n == "RUN"), (
        "USER after the last RUN"
    )


def test_log_volume(final):
    assert json.loads(only(final, "VOLUME")) == [LOG_DIR, STATE_DIR]


def test_healthcheck_runs_a_script_the_image_contains(final):
    args = only(final, "HEALTHCHECK")
    options, _, command = args.partition(" CMD ")
    assert set(options.split()) == {
        "--start-period=10s",
        "--interval=30s",
        "--timeout=5s",
        "--retries=3",
    }
    cmd = json.loads(command)  # exec form: a JSON array
    assert cmd[0] == "python"
    target = cmd[1]
    copies = [
        args.split() for name, args in final if name == "COPY" and not args.startswith("--from")
    ]
    sources = {dest: src for src, dest in (c for c in copies if len(c) == 2)}
    assert target in sources, f"{target} is not copied into the image"
    assert (ROOT / sources[target]).is_file()
    # The probe must be stdlib-only: the runtime has the venv, but keep the probe independent of it.
    imports = re.findall(r"^(?:from|import) (\w+)", (ROOT / sources[target]).read_text(), re.M)
    assert set(imports) <= {"__future__", "http", "os", "sys"}


VERIFY_IN_CONTAINER = "python scripts/verify_audit.py /var/log/aegis-mcp/audit.log"


def test_the_audit_checker_ships_where_the_docs_run_it(final):
    copies = [
        args.split() for name, args in final if name == "COPY" and not args.startswith("--from")
    ]
    assert ["scripts/verify_audit.py", "/app/scripts/verify_audit.py"] in copies
    assert only(final, "WORKDIR") == "/app"  # the documented relative path starts there
    # Run with the image's python, it imports the package from the venv the image copies.
    assert re.search(r"^from aegis_tornado\.", (ROOT / "scripts/verify_audit.py").read_text(), re.M)
    operations = (ROOT / "docs/OPERATIONS.md").read_text()
    assert f"docker compose exec aegis-mcp {VERIFY_IN_CONTAINER}" in operations
    assert LOG_DIR + "/audit.log" == env_pairs(only(final, "ENV"))["AUDIT_LOG_PATH"]


def test_the_audit_checker_runs_laid_out_as_in_the_image(tmp_path):
    # /app/scripts/verify_audit.py with no checkout beside it: the package comes from the
    # environment, as from /opt/venv in the image. An intact log passes, an edited one fails.
    from ..hardening.test_audit_chain import write_log

    app = tmp_path / "app"
    (app / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/verify_audit.py", app / "scripts/verify_audit.py")
    log = tmp_path / "audit.log"
    lines = write_log(log, 4)
    command = [sys.executable, *VERIFY_IN_CONTAINER.split()[1:2], str(log)]
    intact = subprocess.run(command, cwd=app, capture_output=True, text=True, timeout=30)
    assert intact.returncode == 0, intact.stderr
    lines[2] = lines[2].replace('"success"', '"denied"')
    log.write_text("\n".join(lines) + "\n")
    edited = subprocess.run(command, cwd=app, capture_output=True, text=True, timeout=30)
    assert edited.returncode == 1 and f"{log}:3:" in edited.stdout + edited.stderr


def test_entrypoint_is_exec_form_console_script(final):
    entrypoint = json.loads(only(final, "ENTRYPOINT"))
    setup = (ROOT / "setup.py").read_text()
    scripts = re.findall(r'"(\S+) = aegis_tornado[\w.]*:\w+"', setup)
    assert entrypoint == ["aegis-mcp"]
    assert entrypoint[0] in scripts


def test_copied_sources_exist(dockerfile):
    for name, args in dockerfile:
        if name == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                if any(ch in source for ch in "*?["):
                    continue  # optional by design (README.m[d])
                assert (ROOT / source).exists(), source


def test_no_secrets_baked_in(dockerfile):
    secretish = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.I)
    for name, args in dockerfile:
        if name in ("ENV", "ARG"):
            for pair in shlex.split(args):
                assert not secretish.search(pair.split("=", 1)[0]), f"{name} {pair}"
        if name in ("COPY", "ADD"):
            assert ".env" not in args.split() and ".key-metadata" not in args
        assert not re.search(r"\b[0-9a-f]{32,}\b", args), "a key-like literal in the Dockerfile"


def test_dockerignore_keeps_secrets_and_clutter_out():
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for must in (
        ".env",
        ".env.*",
        "*.bak",
        ".key-metadata.jsonl",
        ".git",
        ".venv",
        "venv",
        ".pytest_cache",
    ):
        assert must in patterns, must
    # Nothing the build copies may be ignored.
    for needed in (
        "setup.py",
        "README.md",
        "aegis_tornado",
        "scripts",
        "scripts/healthcheck.py",
        "scripts/verify_audit.py",
    ):
        assert needed not in patterns


# --------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def service():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "version" not in compose  # obsolete in the Compose specification
    assert list(compose["services"]) == ["aegis-mcp"]
    assert compose["volumes"] is not None and len(compose["volumes"]) == 2
    return compose, compose["services"]["aegis-mcp"]


def test_compose_service_basics(service):
    _, svc = service
    assert svc["container_name"] == "aegis-gitea-mcp"
    assert svc["build"] == "."
    assert svc["env_file"] == ".env"
    # Bounded: a configuration error (exit 2) must end in a visible 'Exited (2)', not a loop.
    assert svc["restart"].startswith("on-failure:")
    assert 1 <= int(svc["restart"].split(":")[1]) <= 10


def test_compose_port_is_loopback_only(service):
    _, svc = service
    assert svc["ports"] == ["127.0.0.1:8080:8080"]
    text = (ROOT / "docker-compose.yml").read_text()
    assert "TLS" in text and "reverse" in text  # the comment that says what to put in front


def test_compose_log_volume_is_named(service):
    compose, svc = service
    mounts = [v.split(":") for v in svc["volumes"]]
    logs = [m for m in mounts if m[1] == LOG_DIR]
    assert len(logs) == 1
    assert logs[0][0] in compose["volumes"], "a named volume, not a host path"


def test_compose_oauth_state_is_on_a_named_volume(service):
    compose, svc = service
    mounts = {m[1]: m[0] for m in (v.split(":") for v in svc["volumes"])}
    assert mounts.get(STATE_DIR) in compose["volumes"]
    assert svc["environment"]["OAUTH_STATE_PATH"].startswith(STATE_DIR + "/")


def test_compose_hardening(service):
    _, svc = service
    assert svc["read_only"] is True
    assert any(t == "/tmp" or t.startswith("/tmp:") for t in svc["tmpfs"])
    assert svc["security_opt"] == ["no-new-privileges:true"]
    assert svc["cap_drop"] == ["ALL"]
    assert "cap_add" not in svc and "privileged" not in svc


def test_compose_environment_holds_no_secrets_and_matches_image(service):
    _, svc = service
    env = svc.get("environment", {})
    assert not any(re.search(r"KEY|TOKEN|SECRET|PASSWORD", name) for name in env)
    assert env.get("AUDIT_LOG_PATH", f"{LOG_DIR}/audit.log").startswith(LOG_DIR + "/")
    assert str(env.get("MCP_PORT", "8080")) == "8080"  # the published container port


def test_readme_container_section_works_from_a_fresh_clone():
    """compose's env_file: .env must exist: the README says to create it, what to fill, and how
    a configuration error shows (the container stops, it does not loop)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## In a container", 1)[1].split("\n## ", 1)[0]
    assert "cp .env.example .env" in section
    for key in ("GITEA_URL", "GITEA_TOKEN", "MCP_API_KEYS"):
        assert key in section
    assert "docker compose up -d" in section
    assert "Exited (2)" in section and "on-failure" in section
    example = (ROOT / ".env.example").read_text()
    for key in ("GITEA_URL", "GITEA_TOKEN", "MCP_API_KEYS"):
        assert re.search(rf"^{key}=", example, re.M), f"{key} is not left to fill in .env.example"
