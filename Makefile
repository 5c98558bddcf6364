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

# JARs from Maven Central, once (no Ivy resolution at every Spark start): Delta's into .jars/ (every
# session), hadoop-aws and its AWS SDK bundle (s3a://, ~700 MB) into .jars/s3a/ (put on the class
# path of sessions that use S3 only). Only these groups are copied: Spark ships everything else they
# need, and its own Hadoop must stay the only one (jvm/pom.xml keeps org.apache.hadoop to hadoop-aws;
# the check fails loudly if another Hadoop JAR slips in). The stamp names what it holds, so a
# checkout from before hadoop-aws fetches again.
JARS_STAMP := .jars/.done-delta-4.4.0-s3a-hadoop-aws-3.5.0
jars: $(JARS_STAMP)
$(JARS_STAMP): jvm/pom.xml
	@command -v mvn >/dev/null || { apt-get update -qq && apt-get install -y -qq maven; }
	rm -rf .jars && mvn -q -B -f jvm/pom.xml dependency:copy-dependencies \
	  -DoutputDirectory=$(CURDIR)/.jars -DincludeScope=runtime -DincludeGroupIds=io.delta
	mvn -q -B -f jvm/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/.jars/s3a -DincludeScope=runtime \
	  -DincludeGroupIds=org.apache.hadoop,software.amazon.awssdk,software.amazon.s3.analyticsaccelerator
	@extra=$$(ls .jars/s3a | grep '^hadoop-' | grep -v '^hadoop-aws-'); \
	  if [ -n "$$extra" ]; then echo "jvm/pom.xml pulled in Hadoop JARs Spark already ships: $$extra"; exit 1; fi
	touch $@

# servers and tools the tests start themselves: a real Redis server (on a private port), Debian's
# Chromium (headless screenshot of the monitoring report; the Airflow UI through chromedriver) and
# PostgreSQL (Airflow's metadata database); one apt-get update when one is missing
redis:
	@missing=""; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
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
	$(VENV)/bin/featurepipe training-set --entities $(FEATUREPIPE_DATA_DIR)/demo/entities.csv \
	  --out $(FEATUREPIPE_DATA_DIR)/demo/training_set_user_product.parquet \
	  --features transactions_30d,total_spent_30d,purchases_30d,popularity_rank_30d,avg_rating_90d,main_category,category_embedding
	$(PY) -m featurepipe.demo show $(FEATUREPIPE_DATA_DIR)/demo/training_set_user_product.parquet --rows 6
	$(VENV)/bin/featurepipe online --user-id u0001 --user-id u0002 --user-id u0003
	$(VENV)/bin/featurepipe online --product-id p01001 --product-id p05002
	$(VENV)/bin/featurepipe online --product-id p01001 --features main_category,category_embedding
	$(VENV)/bin/featurepipe online --user-id u0001 --product-id p01001 --feature-service user_product_v1
	$(VENV)/bin/featurepipe online --user-id u0001 --user-id u9999 --feature-service user_spend_v2 --request amount=42.5
	$(VENV)/bin/featurepipe report
	$(VENV)/bin/featurepipe catalog   # its last line: where the catalog page went

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
