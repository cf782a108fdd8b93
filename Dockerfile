# runstep-watcher as a sidecar container: config and secrets from the environment or
# mounted files; events on stdout, diagnostics on stderr; health on :9464 when [http] is set.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATE_DIRECTORY=/var/lib/runstep-watcher

WORKDIR /src
COPY pyproject.toml README.md ./
COPY watcher ./watcher
RUN pip install . && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /var/lib/runstep-watcher --create-home watcher
USER 10001
WORKDIR /var/lib/runstep-watcher

EXPOSE 9464
# Exec form: the daemon is PID 1 and installs its own SIGTERM handler at once.
ENTRYPOINT ["runstep-watcher", "run"]
CMD ["--config", "/etc/runstep-watcher/config.toml"]
