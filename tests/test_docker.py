"""The Docker deployment: static checks of Dockerfile, .dockerignore and docker-compose.yml, then
the image built once and run with --network none (skipped where no Docker engine answers)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("QA_BOT_TEST_IMAGE", "qa-bot:test")
DAMASCUS = "how many soldiers left Damascus?"
# Flags docker-compose.yml runs the bot with, so the engine tests cover them too.
HARDENED = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]

# An article the seeds know nothing about, for the mounted-corpus test.
EXTRA_ARTICLE = """\
Harbour town opens floating library

The town of Kesterwick opened a floating library in its old harbour on Saturday.
The floating library cost 3.2 million euros, paid for by the local fishermen's cooperatives.
The converted ferry holds 12,000 books and will tour four villages along the coast every summer,
Mayor Ilse Marten said. Pupils of the harbour school were the first visitors.
"""
EXTRA_NAME = "kesterwick-library.txt"
EXTRA_QUESTION = "How much did the floating library in Kesterwick cost?"
EXTRA_FACT = "3.2 million euros"


# -- static checks: no engine needed -----------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    parsed = [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]
    last_from = max(i for i, (op, _) in enumerate(parsed) if op == "FROM")
    return parsed[last_from:]


def test_dockerfile_runs_qa_bot_as_non_root_in_exec_form() -> None:
    ops = _instructions()
    assert ops[0] == ("FROM", "python:3.11-slim")
    values = {op: args for op, args in ops}
    assert json.loads(values["ENTRYPOINT"]) == ["qa-bot"], "exec form, so qa-bot gets SIGTERM"
    assert json.loads(values["CMD"]) == ["telegram"]
    assert values["USER"].split(":")[0] not in ("root", "0")
    assert "qa-bot" in values["HEALTHCHECK"] and "health" in values["HEALTHCHECK"]
    env = " ".join(args for op, args in ops if op == "ENV")
    for var in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "QA_BOT_CORPUS=", "QA_BOT_INDEX_DIR="):
        assert var in env


def test_torch_is_installed_before_the_code_is_copied() -> None:
    ops = _instructions()
    torch_step = next(i for i, (op, a) in enumerate(ops) if op == "RUN" and "torch==" in a)
    code_copy = next(i for i, (op, a) in enumerate(ops) if op == "COPY" and "qa_bot" in a)
    index_step = next(i for i, (op, a) in enumerate(ops) if op == "RUN" and "qa-bot index" in a)
    assert torch_step < code_copy < index_step


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = {
        ln.strip().rstrip("/")
        for ln in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    }
    for entry in (".git", ".venv", "embeddings", "**/__pycache__", ".pytest_cache", ".env"):
        assert entry in ignored, f"{entry} should be in .dockerignore"


def test_compose_runs_the_bot_with_both_volumes() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    service = compose["services"]["qa-bot"]
    assert "profiles" not in service  # `docker compose up` starts it, and nothing else
    assert all("profiles" in other for name, other in compose["services"].items() if name != "qa-bot")
    assert service["restart"] == "unless-stopped"
    assert service["env_file"]
    targets = {v.split(":")[-2] if v.count(":") > 1 else v.split(":")[-1] for v in service["volumes"]}
    assert {"/data/articles", "/data/index"} <= targets
    assert "qa-bot-index" in compose["volumes"]


def test_compose_profile_shares_one_database_between_a_writer_and_readers() -> None:
    yaml = pytest.importorskip("yaml")
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    assert services["index"]["environment"]["QA_BOT_DATABASE_URL"].startswith("postgresql://qa_writer@")
    bot = services["qa-bot-shared"]
    assert bot["environment"]["QA_BOT_DATABASE_URL"].startswith("postgresql://qa_reader@")
    assert bot["depends_on"]["index"]["condition"] == "service_completed_successfully"
    for name in ("db", "index", "qa-bot-shared"):  # passwords come from files, never the environment
        assert not any("PASSWORD=" in str(v) or k.endswith("_PASSWORD")
                       for k, v in (services[name].get("environment") or {}).items())


# -- the image, built once and run offline -----------------------------------------------------


def _docker_engine() -> str | None:
    """None when `docker info` works, else why not."""
    try:
        r = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired) as e:
        return str(e)
    if r.returncode == 0:
        return None
    return (r.stderr.strip().splitlines() or ["docker info failed"])[-1]


_WHY = _docker_engine()


def needs_engine(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test docker and slow (it builds/runs the image); skip it where no engine answers."""
    skip = pytest.mark.skipif(
        _WHY is not None,
        reason=f"no Docker engine ({_WHY}); start one (on the project's CI machine: "
        '`eval "$(scripts/docker-engine-if-available.sh)"`) to build and run the image',
    )
    return pytest.mark.docker(pytest.mark.slow(skip(test)))


def _docker(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(
            f"docker {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result


def _run(
    image: str, *args: str, mounts: tuple[str, ...] = (), check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm --network none` with the compose file's hardening flags."""
    volumes = [arg for mount in mounts for arg in ("-v", mount)]
    return _docker(
        "run", "--rm", "--network", "none", *HARDENED, *volumes, image, *args, timeout=timeout, check=check
    )


@pytest.fixture(scope="module")
def image() -> str:
    """Build the image once for the whole module (a warm cache makes this a few seconds)."""
    started = time.monotonic()
    _docker("build", "-t", IMAGE, str(REPO), timeout=2400)
    print(f"\nbuilt {IMAGE} in {time.monotonic() - started:.0f} s")
    return IMAGE


@pytest.fixture
def index_volume() -> Iterator[str]:
    """A fresh named volume for /data/index, removed afterwards."""
    name = f"qa-bot-test-index-{uuid.uuid4().hex[:8]}"
    _docker("volume", "create", name)
    yield name
    _docker("volume", "rm", "-f", name, check=False)


def _ask(image: str, question: str, mounts: tuple[str, ...] = ()) -> tuple[dict, str]:
    result = _run(image, "ask", "--json", question, mounts=mounts)
    return json.loads(result.stdout), result.stderr


def _quoted_with_source(reply: dict, fact: str) -> dict:
    """The passage that carries `fact` in the answer, asserting the reply quotes it with a source."""
    assert reply["answered"], reply
    assert fact in reply["answer"], reply["answer"]
    passage = next((p for p in reply["passages"] if fact in p["text"]), None)
    assert passage is not None, f"no passage quotes {fact!r}: {reply['passages']}"
    assert passage["source"], passage
    return passage


@needs_engine
def test_image_is_configured_for_deployment(image: str) -> None:
    (info,) = json.loads(_docker("image", "inspect", image).stdout)
    config = info["Config"]
    assert config["Entrypoint"] == ["qa-bot"]
    assert config["Cmd"] == ["telegram"]
    assert config["User"] and config["User"].split(":")[0] not in ("root", "0")
    assert "HF_HUB_OFFLINE=1" in config["Env"]
    # Docker reports the healthcheck in Config; podman's Docker API leaves it out, so fall back
    # to the build history.
    healthcheck = json.dumps(config.get("Healthcheck")) if config.get("Healthcheck") else ""
    if not healthcheck:
        history = _docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
        healthcheck = next((ln for ln in history.splitlines() if "HEALTHCHECK" in ln), "")
    assert "qa-bot" in healthcheck and "health" in healthcheck.replace("HEALTHCHECK", "")
    size_gb = info["Size"] / 1e9
    print(f"\nimage size {size_gb:.2f} GB")
    # CPU torch ~0.7 GB, the other packages ~0.95 GB, and the model exported to ONNX when the seed
    # index is built (0.09 GB, with ONNX Runtime and onnx ~0.09 GB): indexing in the container runs
    # at twice torch's speed for those 0.18 GB (1.74 GB before).
    assert size_gb < 2.0


@needs_engine
def test_ask_answers_offline_from_the_built_in_index(image: str) -> None:
    # Read-only root file system and no volume: only an index built into the image can answer.
    started = time.monotonic()
    reply, _ = _ask(image, DAMASCUS)
    print(f"\nanswered in {time.monotonic() - started:.1f} s: {json.dumps(reply, ensure_ascii=False)[:300]}")
    assert reply["question"] == DAMASCUS
    _quoted_with_source(reply, "400")


@needs_engine
def test_health_exits_0(image: str) -> None:
    result = _run(image, "health", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_engine
def test_mounted_corpus_is_indexed_at_start_and_kept_in_the_volume(
    image: str, index_volume: str, tmp_path: Path
) -> None:
    corpus = tmp_path / "articles"
    corpus.mkdir()
    corpus.chmod(0o755)  # the container's user (UID 1000) reads it
    for seed in (REPO / "seeds").glob("*.txt"):
        (corpus / seed.name).write_bytes(seed.read_bytes())
    (corpus / EXTRA_NAME).write_text(EXTRA_ARTICLE, encoding="utf-8")
    mounts = (f"{corpus}:/data/articles:ro", f"{index_volume}:/data/index")

    # The new volume starts as a copy of the image's seed index; only the new article is embedded.
    reply, stderr = _ask(image, EXTRA_QUESTION, mounts)
    assert EXTRA_NAME in stderr, f"no index update reported for the new article: {stderr}"
    counts = re.search(r"(\d+) texts embedded, (\d+) reused", stderr)
    if counts:
        embedded, reused = map(int, counts.groups())
        assert 0 < embedded < reused, stderr
    assert _quoted_with_source(reply, EXTRA_FACT)["source"] == EXTRA_NAME

    # A restart finds the index in the volume up to date, the seeds answered as before.
    reply, stderr = _ask(image, DAMASCUS, mounts)
    assert EXTRA_NAME not in stderr, f"the index was updated again: {stderr}"
    _quoted_with_source(reply, "400")


@needs_engine
@pytest.mark.skipif(sys.platform != "linux", reason="needs --network host to reach the fake API")
def test_telegram_bot_answers_and_stops_on_sigterm(image: str) -> None:
    """The default command against a fake Telegram Bot API on this host, then `docker stop`."""
    fake_api = pytest.importorskip("tests.fake_telegram_api")
    name = f"qa-bot-test-telegram-{uuid.uuid4().hex[:8]}"
    with fake_api.FakeTelegramAPI() as fake:
        _docker("run", "-d", "--name", name, "--network", "host", *HARDENED,
                "-e", f"TELEGRAM_BOT_TOKEN={fake_api.VALID_TOKEN}",
                "-e", f"TELEGRAM_API_BASE_URL={fake.base_url}",
                "-e", "NO_PROXY=127.0.0.1,localhost", "-e", "no_proxy=127.0.0.1,localhost",
                image)  # fmt: skip
        try:
            fake.wait_for(lambda calls: any(c.method == "getUpdates" for c in calls), 180)
            sent = time.monotonic()
            fake.send_text(1001, DAMASCUS)
            (reply,) = fake.wait_for_messages(1001, after=sent, timeout=60)
            assert "400" in reply.params["text"], reply.params
            assert _stops_on_sigterm(name) == 0
        except BaseException:
            print(_docker("logs", name, check=False).stderr[-3000:])
            raise
        finally:
            _docker("rm", "-f", name, check=False)


@needs_engine
def test_sigterm_stops_the_console_too(image: str) -> None:
    """qa-bot is PID 1, which ignores SIGTERM unless it handles it: `docker stop` must not wait."""
    name = f"qa-bot-test-stop-{uuid.uuid4().hex[:8]}"
    _docker("run", "-d", "-i", "--name", name, "--network", "none", image, "chat")
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            logs = _docker("logs", name)
            if "ask about" in logs.stdout + logs.stderr:  # the chat banner: the model is loaded
                break
            time.sleep(1)
        assert _stops_on_sigterm(name) != 137
    finally:
        _docker("rm", "-f", name, check=False)


def _stops_on_sigterm(name: str) -> int:
    """`docker stop` the container, assert it took a few seconds, return its exit code."""
    started = time.monotonic()
    _docker("stop", "--time", "20", name, timeout=60)
    took = time.monotonic() - started
    code = int(json.loads(_docker("inspect", name).stdout)[0]["State"]["ExitCode"])
    assert code != 137, "SIGTERM was ignored: the container was killed after the grace period"
    assert took < 10, f"docker stop took {took:.1f} s"
    return code
