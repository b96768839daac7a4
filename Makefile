# acmera: the two commands are `make demo` and `make test`.
BUILD ?= build
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
	scripts/demo

demo-issue: build
	scripts/demo-issue

test: deps
	tests/run-all

bench: build
	bench/acme-issue
	bench/est

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
