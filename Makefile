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
            docker-compose debootstrap
# What the hardening checks add: clang's libFuzzer, the linters, valgrind.
HARDENING_PACKAGES := clang-14 libclang-rt-14-dev cppcheck clang-tidy-14 valgrind
# What `make bench` adds: gnuplot for the plots.
BENCH_PACKAGES := gnuplot-nox

.PHONY: all deps deps-hardening deps-bench build test demo bench fuzz lint test-sanitize valgrind \
        hardening clean

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

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure

demo: build
	tests/demo.sh $(BUILD_DIR)

bench: build deps-bench
	tests/bench/run_bench.sh $(BUILD_DIR)

# The whole suite again, built with AddressSanitizer (leak detection on)
# and UndefinedBehaviorSanitizer; the Docker checks are left to `make test`.
test-sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFRAUD_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 ctest -LE docker -E valgrind --output-on-failure

valgrind: build deps-hardening
	tests/valgrind_e2e.sh $(BUILD_DIR)

fuzz: deps-hardening
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run_fuzz.sh build-fuzz

lint: build deps-hardening
	cppcheck --enable=warning,performance,portability --std=c11 --error-exitcode=1 \
	  --inline-suppr --quiet --suppress=missingIncludeSystem \
	  -I service -I /usr/include/librdkafka -I /usr/include/hiredis -I /usr/include/cjson \
	  service tests/fuzz
	clang-tidy-14 --quiet -p $(BUILD_DIR) service/*.c service/devtools/*.c

hardening: test-sanitize valgrind fuzz lint

clean:
	rm -rf $(BUILD_DIR) build-asan build-fuzz
