# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch first and pinned: a CPU wheel of it lies on the machine; an unpinned torch pulls a CUDA build.
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

# The package with every extra (fastml, serve, bench, dask; `make test` covers them all) and the test tools.
$(STAMP): pyproject.toml setup.py src/ai4hep/data/generate/native/fjbatch.cpp src/ai4hep/data/generate/native/pythia_record.cpp
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q --prefer-binary $(TORCH)
	$(PIP) install -q --prefer-binary -e '.[all,dev]'
	touch $(STAMP)

# PostgreSQL server binaries for the record store's tests (tests/test_bench_store.py starts a throwaway server): Debian
# keeps them in /usr/lib/postgresql/<version>/bin, off PATH; installed with apt when missing (a fresh machine, as root).
.PHONY: postgres
postgres:
	command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)

# Debian's Chromium: tests/test_bench_report.py renders the benchmark report in it headless (installed when missing).
.PHONY: chromium
chromium:
	command -v chromium >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# nlohmann/json.hpp: conifer compiles its BDT emulation against it but its wheel lacks it (ai4hep.export.bdt finds it in
# /usr/include; ap_fixed.h comes from hls4ml). Debian's nlohmann-json3-dev, installed with apt when missing.
.PHONY: json
json:
	test -f /usr/include/nlohmann/json.hpp || test -f /usr/local/include/nlohmann/json.hpp || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nlohmann-json3-dev)

demo: $(STAMP) json
	$(VENV)/bin/ai4hep data list
	$(VENV)/bin/ai4hep data generate top --jets 600 --out demo-data/top --workers 2 --seed 1 --shard-size 100
	$(VENV)/bin/ai4hep data info demo-data/top
	$(VENV)/bin/ai4hep train configs/top_bdt.yaml --data demo-data/top --out demo-data/runs/bdt
	$(VENV)/bin/ai4hep train configs/top_particlenet_small.yaml --data demo-data/top --out demo-data/runs/particlenet
	$(VENV)/bin/ai4hep evaluate demo-data/runs/bdt
	$(VENV)/bin/ai4hep evaluate demo-data/runs/particlenet --reference demo-data/runs/bdt
	$(VENV)/bin/ai4hep data generate flavour --jets 1500 --out demo-data/flavour --workers 2 --seed 1 --shard-size 250
	$(VENV)/bin/ai4hep train configs/flavour_ip3d.yaml --data demo-data/flavour --out demo-data/runs/ip3d
	$(VENV)/bin/ai4hep train configs/flavour_gn2_small.yaml --data demo-data/flavour --out demo-data/runs/gn2
	$(VENV)/bin/ai4hep evaluate demo-data/runs/gn2 --reference demo-data/runs/ip3d
	$(VENV)/bin/ai4hep export onnx demo-data/runs/gn2
	$(VENV)/bin/ai4hep bench run suites/standard.yaml --budget small --db demo-data/records.sqlite --work demo-data/bench
	$(VENV)/bin/ai4hep bench report --db demo-data/records.sqlite --out demo-data/report

test: $(STAMP) postgres chromium json
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/generation_rate.py

clean:
	rm -rf demo-data .pytest_cache .ruff_cache
