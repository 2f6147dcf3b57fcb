# One place for set-up, the demo and the tests. `make test` is what CI runs (.ci/run).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
REF := .venvs/deeplake3

.PHONY: setup demo demo-images test test-fast test-long fuzz-long bench clean lint

setup: $(VENV)/.installed $(REF)/.installed

# the project and its test tools; torch pinned to the local CPU build (a range pulls CUDA)
$(VENV)/.installed: Makefile pyproject.toml setup.py $(wildcard native/*.c native/*.h)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[all,test]"
	$(BIN)/python -c "import lakeformat._native"
	touch $@

# deeplake 3.9.52, the reference implementation of the layout, in its own environment
$(REF)/.installed:
	test -x $(REF)/bin/python || $(PY) -m venv $(REF)
	$(REF)/bin/pip install -q "deeplake==3.9.52" "numpy<2"
	touch $@

# the main job: Airbyte's faker source synced into ./lake by destination-deeplake
demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/sync_faker_demo.py --lake ./lake

demo-images: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

# the Airbyte sources' own venvs install in the background (about 3 minutes of downloads)
# while services start and the tests run; their fixtures wait for them (flock in the scripts)
test: setup
	mkdir -p build
	(nice -n 10 bash scripts/setup_faker_venv.sh; nice -n 10 bash integration_tests/destination/setup_source_s3_venv.sh) > build/source-venvs.log 2>&1 &
	bash scripts/install_test_services.sh
	# the Docker tests' Debian rootfs (debootstrap, about 75 s of downloads) builds meanwhile too,
	# under the same file lock its fixture takes
	nice -n 10 $(BIN)/python -c "from tests.support.services.docker_engine import base_rootfs_tarball as b; print(b())" > build/base-rootfs.log 2>&1 &
	$(BIN)/python -m pytest

# the static checks alone (tests/test_static_checks.py runs the same in make test)
lint: setup
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy

test-fast: setup
	$(BIN)/python -m pytest -x -q tests

# every write path killed (SIGKILL) at every one of its storage writes, not a sample of them
test-long: setup
	LAKEFORMAT_LOCK_RACE_ROUNDS=40 $(BIN)/python -m pytest -q tests/version_control/test_concurrent_writers.py
	LAKEFORMAT_KILL_EXHAUSTIVE=1 $(BIN)/python -m pytest -q tests/core/test_kill_paths.py tests/version_control/test_kill_vc.py tests/core/test_kill_random_edits.py tests/core/test_crash.py tests/version_control/test_crash.py tests/connectors/test_kill_destination.py tests/connectors/test_kill_sql.py tests/storage tests/core/test_chunk_stats.py
	LAKEFORMAT_TQL_VERSION_SEEDS=40 LF_GROUPING_SEEDS=40 LAKEFORMAT_TQL_DUCKDB_SEEDS=80 $(BIN)/python -m pytest -q tests/tql/test_versions.py tests/tql/test_grouping.py tests/tql/test_duckdb_conformance.py
	LAKEFORMAT_COLUMNAR_EXAMPLES_SCALE=13 $(BIN)/python -m pytest -q tests/connectors/destination/test_columnar.py

bench: setup
	bash bench/setup_peers.sh
	$(BIN)/python bench/format_bench.py

clean:
	rm -rf build *.egg-info lakeformat/_native*.so

# the fuzz suite for minutes per target (FUZZ_SECONDS each under atheris, half that under
# ASAN/UBSAN), its corpus kept in build/fuzz-corpus/ between runs
FUZZ_SECONDS ?= 600
fuzz-long: setup
	LAKEFORMAT_FUZZ_SECONDS=$(FUZZ_SECONDS) LAKEFORMAT_FUZZ_CORPUS=$(CURDIR)/build/fuzz-corpus $(BIN)/python -m pytest -q -s tests/fuzz
