# featurepipe: `make demo` and `make test` do all set-up themselves (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export FEATUREPIPE_DATA_DIR ?= $(CURDIR)/data
export GX_ANALYTICS_ENABLED := false

DEMO_START := 2025-01-01
DEMO_DAYS := 120
DEMO_FROM := 2025-03-01
DEMO_TO := 2025-03-31

.PHONY: install jars redis demo test test-unit test-integration bench bench-quick clean

install: $(STAMP) jars

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required (apt-get install -y openjdk-17-jre-headless)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	@test -x $(VENV)/bin/spark-submit || { echo "spark-submit missing after install (pyspark-client overwrote pyspark?)"; exit 1; }
	touch $(STAMP)

# Delta's JARs from Maven Central, once, into .jars/ (no Ivy resolution at every Spark start)
jars: .jars/.done
.jars/.done: jvm/pom.xml
	@command -v mvn >/dev/null || { apt-get update -qq && apt-get install -y -qq maven; }
	rm -rf .jars && mvn -q -B -f jvm/pom.xml dependency:copy-dependencies \
	  -DoutputDirectory=$(CURDIR)/.jars -DincludeScope=runtime -DincludeGroupIds=io.delta
	touch $@

# servers and tools the tests start themselves: a real Redis server (on a private port) and Debian's
# Chromium (headless screenshot of the monitoring report); one apt-get update when one is missing
redis:
	@missing=""; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; fi

# reruns are safe: the generator is deterministic and every step is idempotent
demo: install
	$(VENV)/bin/featurepipe generate --out $(FEATUREPIPE_DATA_DIR)/raw --users 40 \
	  --start $(DEMO_START) --days $(DEMO_DAYS) --seed 7 --dirty
	$(VENV)/bin/featurepipe backfill --start $(DEMO_FROM) --end $(DEMO_TO)
	$(PY) -m featurepipe.demo entities --out $(FEATUREPIPE_DATA_DIR)/demo/entities.csv --start $(DEMO_FROM) --end $(DEMO_TO)
	$(VENV)/bin/featurepipe training-set --entities $(FEATUREPIPE_DATA_DIR)/demo/entities.csv \
	  --out $(FEATUREPIPE_DATA_DIR)/demo/training_set.parquet
	$(PY) -m featurepipe.demo show $(FEATUREPIPE_DATA_DIR)/demo/training_set.parquet
	$(VENV)/bin/featurepipe training-set --entities $(FEATUREPIPE_DATA_DIR)/demo/entities.csv \
	  --out $(FEATUREPIPE_DATA_DIR)/demo/training_set_v2.parquet --feature-service user_spend_v2
	$(PY) -m featurepipe.demo show $(FEATUREPIPE_DATA_DIR)/demo/training_set_v2.parquet --rows 6
	$(VENV)/bin/featurepipe online --user-id u0001 --user-id u0002 --user-id u0003
	$(VENV)/bin/featurepipe online --user-id u0001 --user-id u9999 --feature-service user_spend_v2 --request amount=42.5
	$(VENV)/bin/featurepipe report

# two workers, one test file each at a time (a file's module fixtures are built once); each worker
# has its own Spark session and servers. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
TEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: install redis
	$(PY) -m pytest tests -q -p no:cacheprovider --durations=15 $(TEST_PARALLEL)

test-unit: install
	$(PY) -m pytest tests/unit tests/dags -q

test-integration: install redis
	$(PY) -m pytest tests/integration tests/reliability -q $(TEST_PARALLEL)

# benchmarks (not part of `make test`): ratios against references measured in the same run
bench: install
	$(PY) -m bench all

bench-quick: install
	$(PY) -m bench all --quick

clean:
	rm -rf data .jars $(VENV)
