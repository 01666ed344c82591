# syntax=docker/dockerfile:1.7
# proctor's one image. The same image runs every long-lived part, chosen by arguments:
#   docker build -t proctor:0.1.0 .
#   docker run --rm proctor:0.1.0 worker              # the grader service (HTTP :9464)
#   docker run --rm proctor:0.1.0 collect <source>    # one collector or webhook receiver
#   docker run --rm proctor:0.1.0 publish --help      # the publisher
#   docker run --rm proctor:0.1.0 schemas register    # what the Argo CD PreSync Job runs
# Nothing secret is built in: credentials come from the environment at run time.

# One pinned Python for both stages (a bump is a one-line change here).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- builder: the project as a wheel, plus a wheel of every dependency ------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler only for dependencies that publish no binary wheel for this platform; it stays
# in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Metadata first, so a change to the code alone does not invalidate the dependency layer.
COPY pyproject.toml README.md ./
# services/contract/avsc links to ../../schemas: the wheel ships the schema files themselves.
COPY schemas/ schemas/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip wheel --wheel-dir /wheels .

# ---- runtime: a virtual environment installed from those wheels, nothing else ------------
FROM ${PYTHON_IMAGE} AS runtime
ARG PROCTOR_UID=10001
LABEL org.opencontainers.image.title="proctor" \
      org.opencontainers.image.description="Event-driven, live grading of hands-on data-platform exams" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/proctor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    PROCTOR_HTTP_HOST=0.0.0.0 \
    PROCTOR_HTTP_PORT=9464 \
    PROCTOR_STACK_DIR=/var/lib/proctor \
    PROCTOR_DATA_DIR=/var/lib/proctor/grader
# A fixed uid/gid so Kubernetes' runAsUser, fsGroup and file ownership agree with the image.
RUN groupadd --system --gid "${PROCTOR_UID}" proctor \
 && useradd --system --uid "${PROCTOR_UID}" --gid proctor --home-dir /nonexistent \
      --no-create-home --shell /usr/sbin/nologin proctor \
 && install -d -o proctor -g proctor -m 0750 /var/lib/proctor
# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/proctor \
 && /opt/proctor/bin/pip install --no-index --find-links /wheels --no-compile proctor \
 && /opt/proctor/bin/pip uninstall -y pip \
 && proctor --version
USER ${PROCTOR_UID}:${PROCTOR_UID}
WORKDIR /var/lib/proctor
EXPOSE 9464
# Liveness of the HTTP server (/healthz); readiness (/readyz) is for the orchestrator.
# The image has no curl: the standard library makes the request.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PROCTOR_HTTP_PORT', '9464'), timeout=2)"]
ENTRYPOINT ["proctor"]
CMD ["--help"]
