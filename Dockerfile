# chatdock: Docker ChatOps for Slack.
#
#   docker build -t chatdock .
#   docker run -d --name chatdock --restart unless-stopped \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v "$PWD/policy.yml:/etc/chatdock/policy.yml:ro" -v chatdock-data:/data \
#     -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN \
#     chatdock                                   # Socket Mode: no port to publish
#
# HTTP mode instead: -e SLACK_SIGNING_SECRET (no SLACK_APP_TOKEN), -p 3000:3000, and point the app's request URLs
# at https://YOUR-HOST/slack/events (behind a TLS-terminating proxy). Several replicas: compose.yaml.
#
# The process runs as the unprivileged user `chatdock`. It reaches the engine through the mounted socket, which
# belongs to root and the host's `docker` group; `--group-add $(stat -c %g /var/run/docker.sock)` gives the
# container that group's *numeric* ID (it differs between hosts, so it cannot be baked in here).
# Anyone who controls this container controls the Docker host: chatdock's policy is what stands in between.
#
# Builds with the classic builder (Debian's docker.io has no BuildKit: no `RUN --mount` here) and with BuildKit.
# BASE: any Debian-like image with python3 (3.11+) and its venv module; the default is Docker Hub's. Without a
# registry, make one locally: `bash .ci/base-image.sh` (debootstrap) and `--build-arg BASE=local/chatdock-base:bookworm`.
# Offline or behind a TLS-inspecting proxy, build the wheels on the host first and install only those:
#   pip wheel --wheel-dir wheelhouse '.[postgres]' && docker build --build-arg PIP_NO_INDEX=1 -t chatdock .
# (`make image-check` does all of this and then tests the image.)
ARG BASE=python:3.11-slim

# ---- build: chatdock and everything it needs, in a virtualenv ------------------------------------------------
FROM ${BASE} AS builder
ARG PIP_NO_INDEX=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=/wheelhouse PIP_NO_INDEX=${PIP_NO_INDEX}
RUN python3 -m venv /opt/chatdock
WORKDIR /src
COPY wheelhouse/ /wheelhouse/
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN /opt/chatdock/bin/pip install --no-compile '.[postgres]' \
 && /opt/chatdock/bin/python -m compileall -q /opt/chatdock/lib

# ---- runtime: the virtualenv, no compilers, no pip cache, no sources --------------------------------------------
FROM ${BASE}
ENV PYTHONUNBUFFERED=1 PATH=/opt/chatdock/bin:$PATH \
    CHATDOCK_POLICY=/etc/chatdock/policy.yml CHATDOCK_DB=/data/chatdock.db
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin chatdock \
 && mkdir -p /data /etc/chatdock && chown chatdock /data
COPY --from=builder /opt/chatdock /opt/chatdock
COPY policy.example.yml /etc/chatdock/policy.example.yml
USER chatdock
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# /healthz answers in both modes: 200 while the Docker engine and the audit store answer, 503 when they do not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["chatdock", "serve"]
