# The newcomer's commands: `make demo` and `make test`. Both first install
# whatever Debian packages are missing (as root), then build with CMake.
# CI (.ci/run) runs `make test` and then `make hardening`.

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60

# Everything the build, the tests and the demo use, by Debian package name.
PACKAGES := gcc make cmake pkg-config librdkafka-dev libhiredis-dev libcjson-dev \
            check libmicrohttpd-dev redis-server kcat procps curl \
            docker-compose debootstrap python3 python3-jsonschema python3-venv prometheus jq \
            openssl stunnel4
# (prometheus brings promtool and a server for the monitoring tests; jq runs
# README's recipes; python3-jsonschema validates records against schemas/;
# python3-venv holds the Kubernetes manifests' validator, from PyPI; openssl and
# stunnel4 run README's TLS recipe for Redis.)
# What the hardening checks add: clang's libFuzzer, the linters, valgrind.
HARDENING_PACKAGES := clang-14 libclang-rt-14-dev cppcheck clang-tidy-14 valgrind
# What `make bench` adds: gnuplot for the plots.
BENCH_PACKAGES := gnuplot-nox
# Java and Maven run the real Apache Kafka broker of the real_kafka tests
# (tests/kafka/). Without them `make test` skips that suite, saying so, unless
# REQUIRE_REAL_KAFKA=1 (as in .ci/run), which installs them when missing and
# fails if the suite cannot run.
REAL_KAFKA_PACKAGES := default-jre-headless maven
# `make bench-peers` compiles its Flink and Kafka Streams peers: a JDK.
BENCH_PEER_PACKAGES := default-jdk-headless maven
REQUIRE_REAL_KAFKA ?= 0

.PHONY: all deps deps-hardening deps-bench deps-real-kafka build test test-real-kafka test-valkey demo bench \
        bench-peers install-bench-peer-packages install-real-kafka-packages fuzz lint test-sanitize valgrind hardening clean

all: build

# Installs the missing packages of $(1), or prints the apt-get line to run.
define install_missing
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Missing Debian packages. As root, run:" >&2; \
	    echo "  apt-get update && apt-get install -y --no-install-recommends$$missing" >&2; \
	    exit 1; \
	  fi; \
	  echo "Installing:$$missing"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(PACKAGES))

deps-hardening: deps
	$(call install_missing,$(HARDENING_PACKAGES))

deps-bench: deps
	$(call install_missing,$(BENCH_PACKAGES))

deps-real-kafka: deps
	@if [ "$(REQUIRE_REAL_KAFKA)" = 1 ] && ! { command -v java && command -v mvn; } >/dev/null; then \
	  $(MAKE) --no-print-directory install-real-kafka-packages; \
	fi

install-real-kafka-packages:
	$(call install_missing,$(REAL_KAFKA_PACKAGES))

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -LE real_kafka
	@$(MAKE) --no-print-directory test-real-kafka

# The Kafka-facing integration suites against real Apache Kafka brokers.
test-real-kafka: build deps-real-kafka
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
	  echo "== real Apache Kafka suite (ctest -L real_kafka): $$(java -version 2>&1 | head -n 1)"; \
	  tests/kafka/kafka.sh fetch && cd $(BUILD_DIR) && ctest --output-on-failure -L real_kafka; \
	elif [ "$(REQUIRE_REAL_KAFKA)" = 1 ]; then \
	  echo "FAILED: REQUIRE_REAL_KAFKA=1 but java or mvn is missing: the real Apache Kafka suite cannot run" >&2; \
	  exit 1; \
	else \
	  echo "SKIPPED: the real Apache Kafka suite (ctest -L real_kafka) needs java and mvn, which were not found; apt-get install default-jre-headless maven, or set REQUIRE_REAL_KAFKA=1 to make this a failure"; \
	fi

# The integration suite again with Valkey 8 (from bookworm-backports, unpacked
# into ~/.cache/fraud-detector, never installed) in place of redis-server.
test-valkey: build
	tests/valkey/valkey_test.sh $(BUILD_DIR)

demo: build
	tests/demo.sh $(BUILD_DIR)

bench: build deps-bench
	tests/bench/run_bench.sh $(BUILD_DIR)

# The same job in Apache Flink and Kafka Streams, on one real broker, side by side.
bench-peers: build
	@if ! { command -v javac && command -v mvn; } >/dev/null; then \
	  $(MAKE) --no-print-directory install-bench-peer-packages; \
	fi
	tests/bench/peers/run_peers.sh $(BUILD_DIR)

install-bench-peer-packages:
	$(call install_missing,$(BENCH_PEER_PACKAGES))

# The whole suite again, built with AddressSanitizer (leak detection on)
# and UndefinedBehaviorSanitizer; the Docker checks are left to `make test`.
test-sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFRAUD_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 ctest -LE 'docker|real_kafka' -E valgrind --output-on-failure

valgrind: build deps-hardening
	tests/valgrind_e2e.sh $(BUILD_DIR)

fuzz: deps-hardening
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run_fuzz.sh build-fuzz

lint: build deps-hardening
	cppcheck --enable=warning,performance,portability --std=c11 --error-exitcode=1 \
	  --inline-suppr --quiet --suppress=missingIncludeSystem \
	  -I service -I /usr/include/librdkafka -I /usr/include/hiredis -I /usr/include/cjson \
	  service tools tests/fuzz
	clang-tidy-14 --quiet -p $(BUILD_DIR) service/*.c tools/*.c

hardening: test-sanitize valgrind fuzz lint

clean:
	rm -rf $(BUILD_DIR) build-asan build-fuzz
