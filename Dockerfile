# syntax=docker/dockerfile:1
# The featurepipe image: every Airflow component of docker-compose.yaml (api-server, scheduler,
# dag-processor, triggerer, Celery worker, init job) and the Spark workers. Workers run this image
# rather than a stock Spark one so that executors find the driver's Python at the driver's path
# (featurepipe.spark.python_env sends sys.executable), with featurepipe, Feast and their
# dependencies installed: the package is installed, no --py-files.
#
# Versions must equal pyproject.toml's pins (tests/unit/test_compose.py checks them):
# AIRFLOW_VERSION is apache-airflow's, PYTHON_VERSION must satisfy requires-python, JAVA_VERSION is
# the Java of the Spark master's apache/spark image tag.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
ARG JAVA_VERSION=17

# Delta's JARs (and whatever else jvm/pom.xml lists) through the Makefile's own `jars` target, so
# the image fetches exactly what `make jars` fetches on a developer's machine
FROM maven:3.9-eclipse-temurin-${JAVA_VERSION} AS jars
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY jvm/ jvm/
RUN --mount=type=cache,target=/root/.m2 make jars

# a JRE independent of the Debian release under the Airflow image
FROM eclipse-temurin:${JAVA_VERSION}-jre AS jre

FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION

USER root
COPY --from=jre /opt/java/openjdk /opt/java/openjdk
# data/ is created here, owned by airflow, so the named volume mounted on it starts writable
RUN install -d -o airflow -g 0 /opt/featurepipe /opt/featurepipe/data
ENV JAVA_HOME=/opt/java/openjdk \
    PATH=/opt/java/openjdk/bin:${PATH} \
    FEATUREPIPE_DATA_DIR=/opt/featurepipe/data \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/featurepipe/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/featurepipe/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    GX_ANALYTICS_ENABLED=false

USER airflow
WORKDIR /opt/featurepipe
COPY --chown=airflow:0 . .
COPY --chown=airflow:0 --from=jars /src/.jars .jars
# Editable on purpose: featurepipe finds feature_repo/, expectations/, jobs/ and .jars/ next to its
# own source (featurepipe.settings.PROJECT_ROOT), which a site-packages install would not have.
# apache-airflow is named with its version so pip never moves the image's Airflow; the providers
# (already in the image: kept as they are) are the executor's, the auth manager's and the database's.
RUN pip install --no-cache-dir \
        "apache-airflow==${AIRFLOW_VERSION}" \
        apache-airflow-providers-celery \
        apache-airflow-providers-fab \
        apache-airflow-providers-postgres \
        -e . \
 && python -c "import featurepipe.settings as s; assert str(s.PROJECT_ROOT) == '/opt/featurepipe', s.PROJECT_ROOT; assert any(s.JARS_DIR.glob('delta-spark*.jar')), 'no Delta JARs'" \
 && spark-submit --version \
 && java -version
