# The deployer image: a virtualenv with the deployer and its dependencies, on a slim
# Python base, run as a non-root user. The entrypoint is the `deployer` binary itself
# (exec form: no shell is needed to run it).
#
# Build (the wheels are made first, outside the image, so the build needs no network):
#   python3 -m pip wheel --wheel-dir dist/wheels .
#   docker build -t deployer .
#
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11) and its venv module.
# GitLab's docker executor runs job scripts with the image's /bin/sh, which a slim
# Python base has; the CI template sets `entrypoint: [""]` for that.
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
COPY dist/wheels/ /wheels/
RUN python3 -m venv /opt/deployer \
 && /opt/deployer/bin/python -m pip install --no-index --find-links /wheels --no-cache-dir \
      gitlab-docker-deployer \
 && /opt/deployer/bin/python -m pip uninstall -y -q pip setuptools \
 && /opt/deployer/bin/deployer --version \
 && mkdir -p /home/deployer/.ssh

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="deployer" \
      org.opencontainers.image.description="Deploy Docker images built in GitLab CI to your own Docker hosts" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/deployer /opt/deployer
COPY --from=build --chown=10001:10001 /home/deployer /home/deployer
ENV PATH=/opt/deployer/bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/home/deployer \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/deployer
ENTRYPOINT ["/opt/deployer/bin/deployer"]
CMD ["--help"]
