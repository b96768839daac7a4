# acmera: the two commands are `make demo` and `make test`.
# `make demo` runs the draft's EST flow against acmera's own CA (pre-authorized parent domain,
# RFC 9444); `make demo CA=pebble` runs it against Pebble (one dns-01 challenge per name).
BUILD ?= build
CA ?= acmera
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz

.PHONY: all deps build demo demo-issue test unit integration asan fuzz bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	CA=$(CA) ACMERA_BUILD=$(abspath $(BUILD)) scripts/demo

demo-issue: build
	ACMERA_BUILD=$(abspath $(BUILD)) scripts/demo-issue

test: deps
	tests/run-all

bench: build
	bench/acme-issue
	bench/est
	bench/acme-ca

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
