# destination-deeplake: `docker run IMAGE spec|check|write`, as Airbyte runs its connectors.
# BASE_IMAGE: Debian's python:3.11 slim image by default; any Debian bookworm image with
# python3, venv and pip works (CI builds one with debootstrap where no registry is reachable).
# A `.wheelhouse/` folder in the build context (optional) supplies prebuilt wheels: with the
# package's own wheel there, nothing is compiled; with a NO_INDEX file there, pip stays offline.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: the C extension needs a compiler, so it becomes a wheel here
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml setup.py README.m[d] .wheelhous[e] ./
COPY native/ native/
COPY lakeformat/ lakeformat/
COPY connectors/ connectors/
# hadolint ignore=DL3008
RUN mkdir -p /wheels \
    && find . -maxdepth 1 \( -name '*.whl' -o -name NO_INDEX \) -exec mv {} /wheels/ \; \
    && if ! ls /wheels/airbyte_destination_deeplake-*.whl >/dev/null 2>&1; then \
         apt-get update \
         && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev \
         && rm -rf /var/lib/apt/lists/* \
         && python3 -m venv /opt/build \
         && /opt/build/bin/pip install --no-cache-dir --disable-pip-version-check "setuptools>=70.1" wheel \
         && (test -f README.md || echo "destination-deeplake" > README.md) \
         && /opt/build/bin/pip wheel --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation -w /wheels . ; \
       fi

# --- runtime: the package and the Airbyte CDK, no compiler
FROM ${BASE_IMAGE}
LABEL io.airbyte.name=airbyte/destination-deeplake \
      io.airbyte.version=0.1.0
COPY --from=build /wheels /wheels
RUN python3 -m venv /opt/venv \
    && if [ -f /wheels/NO_INDEX ]; then export PIP_NO_INDEX=1; fi \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --find-links /wheels \
         airbyte-destination-deeplake "airbyte-cdk>=7.28.3,<8" "orjson>=3.10.7" \
    && rm -rf /wheels \
    && /opt/venv/bin/python -c "import lakeformat._native, connectors.destination_deeplake"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AIRBYTE_ENTRYPOINT="destination-deeplake"
WORKDIR /data
ENTRYPOINT ["destination-deeplake"]
