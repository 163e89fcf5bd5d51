# syntax=docker/dockerfile:1
# Image of the Atoma settlement operator.
#
#   docker build -t atoma-operator:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#
# Base image: pinned by version tag here. For reproducible, tamper-evident builds pin it by
# digest as well, e.g. --build-arg PYTHON_IMAGE=python:3.11.14-slim-trixie@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11.14-slim-trixie` prints it), and let
# Renovate/Dependabot bump tag and digest together. Both stages must use the same image:
# the virtual environment's interpreter symlinks point into it.
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

# --- builder: build the project's wheel and install it (with its pinned dependencies) into
# a pip-less virtual environment. Nothing from this stage but /opt/venv reaches the image.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
# The operator package only: the Sui stand-in and the developer tooling next to it in
# operator/ are a separate distribution (operator/pyproject.toml) and stay out.
COPY operator/atoma_operator/ operator/atoma_operator/
# --prefer-binary: dependencies come as wheels (no compiler in this image); the venv gets
# no pip of its own (`pip --python` installs into it from outside).
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --prefer-binary /wheels/*.whl \
 && /opt/venv/bin/atoma-operator --help >/dev/null

# --- final: the interpreter from the same base image and the venv, running as non-root.
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="atoma-operator" \
      org.opencontainers.image.description="Kubernetes operator that settles Atoma compute stacks on the Sui blockchain" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/atoma-network/atoma-operator" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# The operator needs no package manager at run time: drop the base image's pip/setuptools.
RUN python -m pip uninstall --yes --root-user-action=ignore pip setuptools wheel \
 && rm -rf /root/.cache
COPY --from=builder /opt/venv /opt/venv
# HOME=/tmp: the chart mounts the root filesystem read-only and an emptyDir at /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# 65532 = the conventional "nonroot" uid/gid (distroless). Numeric, so the kubelet can
# verify runAsNonRoot without a runAsUser: the chart sets none, and a platform that assigns
# its own uid (OpenShift) overrides this one.
USER 65532:65532
WORKDIR /tmp
# 8080: Prometheus /metrics; 8081: kopf liveness (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["atoma-operator"]
CMD ["run"]
