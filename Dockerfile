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
# at https://YOUR-HOST/slack/events (behind a TLS-terminating proxy).
#
# The process runs as the unprivileged user `chatdock`. It reaches the engine through the mounted socket, which
# belongs to root and the host's `docker` group; `--group-add $(stat -c %g /var/run/docker.sock)` gives the
# container that group's *numeric* ID (it differs between hosts, so it cannot be baked in here).
# Anyone who controls this container controls the Docker host: chatdock's policy is what stands in between.

# ---- build: a wheel of chatdock, and wheels of everything it needs ----------------------------------------------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip wheel --wheel-dir /wheels .

# ---- runtime ------------------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CHATDOCK_POLICY=/etc/chatdock/policy.yml CHATDOCK_DB=/data/chatdock.db
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels chatdock \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin chatdock \
 && mkdir -p /data /etc/chatdock && chown chatdock /data
COPY policy.example.yml /etc/chatdock/policy.example.yml
USER chatdock
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# /healthz answers in both modes: 200 while the Docker engine answers, 503 when it does not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["chatdock", "serve"]
