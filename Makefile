# The newcomer's commands: `make demo` and `make test`. Both first install
# whatever Debian packages are missing (as root), then build with CMake.

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

# Everything the build, the tests and the demo use, by Debian package name.
PACKAGES := gcc make cmake pkg-config librdkafka-dev libhiredis-dev libcjson-dev \
            check libmicrohttpd-dev redis-server kcat procps curl \
            docker-compose debootstrap

.PHONY: all deps build test demo bench clean

all: build

deps:
	@missing=""; \
	for p in $(PACKAGES); do \
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

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure

demo: build
	tests/demo.sh $(BUILD_DIR)

bench: build
	tests/bench/run_bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
