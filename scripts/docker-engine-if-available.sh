#!/bin/sh
# Points the docker CLI at a Docker engine where one can be had, for the Docker tests:
#
#   eval "$(scripts/docker-engine-if-available.sh)"
#
# - `docker info` already answers (Docker installed and running): prints nothing, changes nothing.
# - the machine provides the shared `docker-engine` tool (the project's CI machine: a podman-based
#   Docker-compatible engine, see ../shared/tools/README.md) and this runs as root: starts it
#   (up to ~90 s the first time, ~1 s when running) and prints its `export DOCKER_HOST=...` lines.
# - otherwise: prints nothing, and tests/test_docker.py skips its engine tests with a message.
# It never fails, so `set -e` callers go on; the project itself does not need the tool.
set -u

if docker info >/dev/null 2>&1; then
    exit 0
fi
repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
tool=${DOCKER_ENGINE_TOOL:-$repo/../shared/tools/docker-engine}
if [ ! -x "$tool" ] || [ "$(id -u)" != 0 ]; then
    echo "docker-engine-if-available: no Docker engine here; the Docker tests will skip" >&2
    exit 0
fi
echo "docker-engine-if-available: starting $tool (up to ~90 s the first time)" >&2
# One retry against an unreachable extra index (download.pytorch.org) instead of five.
# Started from /: the engine's service keeps the working directory it was started in, and its
# containers fail to start ("Failed to get working directory") once that folder is deleted, as a
# CI clone or a scratch checkout is.
if exports=$(cd / && DOCKER_ENGINE_PIP_RETRIES="${DOCKER_ENGINE_PIP_RETRIES:-1}" "$tool" up); then
    case $exports in
        *DOCKER_HOST=*) printf '%s\n' "$exports" ;;
    esac
else
    echo "docker-engine-if-available: $tool up failed; the Docker tests will skip" >&2
fi
exit 0
