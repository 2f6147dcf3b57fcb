# destination-deeplake: `docker run IMAGE spec|check|write`, as Airbyte runs its connectors.
# The base defaults to Debian's python:3.11 slim image; any Debian bookworm image with
# python3, venv and pip works (CI builds one with debootstrap where no registry is reachable).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: the C extension needs a compiler, so it is built here into a wheel
FROM ${BASE_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.m[d] ./
COPY native/ native/
COPY lakeformat/ lakeformat/
COPY connectors/ connectors/
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check "setuptools>=70.1" wheel \
    && (test -f README.md || echo "destination-deeplake" > README.md) \
    && /opt/venv/bin/pip wheel --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation -w /wheels .

# --- runtime: the package, airbyte-cdk and no compiler
FROM ${BASE_IMAGE}
LABEL io.airbyte.name=airbyte/destination-deeplake \
      io.airbyte.version=0.1.0
COPY --from=build /wheels /wheels
# one pip run: the wheel, its dependencies and the Airbyte CDK
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check /wheels/*.whl "airbyte-cdk>=7.28.3,<8" "orjson>=3.10.7" \
    && rm -rf /wheels \
    && /opt/venv/bin/python -c "import lakeformat._native, connectors.destination_deeplake"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AIRBYTE_ENTRYPOINT="destination-deeplake"
WORKDIR /data
ENTRYPOINT ["destination-deeplake"]
