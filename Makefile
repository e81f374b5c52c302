# Kiln developer entry points. `make demo` and `make test` start from a bare
# Debian 12 machine: they install the packages, fetch the sample scene and
# build before doing their job.

SHELL := /bin/bash
NPROC := $(shell nproc)
BUILD_DIR := build
ASAN_DIR := build-asan
TSA_DIR := build-tsa  # the thread-safety build before it joined $(TSAN_DIR); only `make clean` uses it
TSAN_DIR := build-tsan
KILN := $(BUILD_DIR)/src/cli/kiln
DEMO_DEF := examples/landsat-rgb.json
DEMO_LAYER_DIR := catalog/production/landsat-rgb/current
CMAKE_ARGS ?=
FORMAT_FILES = $(shell find src bench fuzz \( -name '*.cc' -o -name '*.h' \) 2>/dev/null)

.PHONY: all deps data build build-demo build-debinfo demo test asan check-clang tsa tsan format \
	format-check clean help

all: build

help:
	@echo "make demo          install deps, fetch data, build (Release), ingest the Landsat demo layer"
	@echo "make test          install deps, fetch data, build (RelWithDebInfo), run every test"
	@echo "make build         configure and build into $(BUILD_DIR)/ (RelWithDebInfo)"
	@echo "make asan          ASan+UBSan build in $(ASAN_DIR)/ and run every test there"
	@echo "make tsa           Clang thread-safety analysis (GUARDED_BY...) of every source, -Werror;"
	@echo "                   compiles the objects of $(TSAN_DIR)/, links nothing"
	@echo "make tsan          ThreadSanitizer build in $(TSAN_DIR)/; runs the unit and service tests"
	@echo "make format        clang-format -i the C++ sources"
	@echo "make format-check  fail if a C++ source is not clang-formatted"
	@echo "make clean         remove $(BUILD_DIR)/, $(ASAN_DIR)/, $(TSAN_DIR)/ and the demo catalog"

deps:
	@scripts/install-deps.sh

data:
	@scripts/fetch-data.sh

# configure(DIR, BUILD_TYPE, EXTRA_ARGS): (re)configure DIR with Ninja. A tree
# configured earlier with another generator cannot be reused by cmake: drop
# its cache.
define configure
	@if [[ -f $(1)/CMakeCache.txt ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$$' $(1)/CMakeCache.txt; then \
	  echo "$(1)/ was configured with another generator; reconfiguring with Ninja"; \
	  rm -rf $(1)/CMakeCache.txt $(1)/CMakeFiles; \
	fi
	cmake -S . -B $(1) -G Ninja -DCMAKE_BUILD_TYPE=$(2) --log-level=WARNING $(3) $(CMAKE_ARGS)
endef

build: build-debinfo

# Developer and CI builds: warnings are errors.
build-debinfo:
	$(call configure,$(BUILD_DIR),RelWithDebInfo,-DKILN_WERROR=ON)
	cmake --build $(BUILD_DIR) -j$(NPROC)

# The demo needs only the CLI. Same directory and flags as `make test`, so
# running one after the other rebuilds nothing.
build-demo:
	$(call configure,$(BUILD_DIR),RelWithDebInfo,-DKILN_WERROR=ON)
	cmake --build $(BUILD_DIR) --target kiln -j$(NPROC)

demo: deps data build-demo
	scripts/demo.sh $(KILN) $(DEMO_DEF)
	@echo
	@echo "Layer metadata (kiln catalog info --catalog catalog --env production landsat-rgb):"
	@$(KILN) catalog info --catalog catalog --env production landsat-rgb
	@echo
	@echo "The layer is in $(CURDIR)/$(DEMO_LAYER_DIR)"
	@echo "  (a symlink to its newest version; each 'make demo' publishes a new one)."
	@echo "Look at it:"
	@echo "  - QGIS: Layer > Add Layer > Add XYZ Layer, URL"
	@echo "      file://$(CURDIR)/$(DEMO_LAYER_DIR)/{z}/{x}/{y}.png"
	@echo "  - GDAL reads the layer description the engine writes into each version:"
	@echo "      gdalinfo $(DEMO_LAYER_DIR)/layer.xml"
	@echo "      gdal_translate -projwin_srs EPSG:4326 -projwin -34.92 -7.94 -34.81 -8.05 \\"
	@echo "        $(DEMO_LAYER_DIR)/layer.xml landsat-rgb.tif"
	@echo "  - one tile: $(DEMO_LAYER_DIR)/0/0/0.png"
	@echo "  - the layers in the catalog: $(KILN) catalog ls --catalog catalog"
	@echo "  - the one-shot engine without a server: $(KILN) ingest --definition $(DEMO_DEF)"

test: deps data build-debinfo
	@set -o pipefail; ctest --test-dir $(BUILD_DIR) --output-on-failure -j2 | tee $(BUILD_DIR)/ctest.log; \
	rc=$$?; \
	if grep -q '^The following tests did not run:' $(BUILD_DIR)/ctest.log; then \
	  echo "make test: every test must run here; a skipped test fails the run (see 'did not run' above;" \
	    "their output is in $(BUILD_DIR)/Testing/Temporary/LastTest.log)" >&2; \
	  exit 1; \
	fi; \
	exit $$rc

asan: deps data
	$(call configure,$(ASAN_DIR),Asan,-DKILN_WERROR=ON)
	cmake --build $(ASAN_DIR) -j$(NPROC)
	ctest --test-dir $(ASAN_DIR) --output-on-failure -j2

# `make tsa` and `make tsan` build with Clang: the thread-safety analysis is
# Clang's, and Clang's TSan can leave pixel kernels uninstrumented
# (tests/tsan-ignorelist.txt).
CLANG_CC := clang-14
CLANG_CXX := clang++-14
CLANG := -DCMAKE_C_COMPILER=$(CLANG_CC) -DCMAKE_CXX_COMPILER=$(CLANG_CXX)
# Warnings only Clang has are shown but not fatal here if one appears:
# these targets check locking and races; the warnings `make test` (GCC,
# -Werror) checks stay errors. None is excused today.
CLANG_WARNINGS :=
check-clang:
	@command -v $(CLANG_CXX) >/dev/null || \
	  { echo "make: $(CLANG_CXX) not found (Debian package clang-14)" >&2; exit 1; }

# Clang's thread-safety analysis (-Wthread-safety) checks the annotations of
# common/thread_annotations.h: a GUARDED_BY member touched without its mutex,
# a REQUIRES function called without it, an EXCLUDES one called with it. The
# analysis is in the compiler's front end, so compiling is the check: `make
# tsa` compiles every object of the ThreadSanitizer build below with
# -Wthread-safety -Werror and links nothing, and `make tsan` links and runs
# those same objects (one Clang compile of each source serves both; CI ran
# them as two builds before).
TSAN_CONFIGURE = $(call configure,$(TSAN_DIR),Tsan,-DKILN_WERROR=ON -DKILN_BUILD_BENCH=OFF \
	$(CLANG) "-DCMAKE_CXX_FLAGS=-Wthread-safety $(CLANG_WARNINGS)")
tsa: deps check-clang
	$(TSAN_CONFIGURE)
	ninja -C $(TSAN_DIR) -j$(NPROC) $$(ninja -C $(TSAN_DIR) -t targets all | sed -n 's/^\(.*\.o\): .*/\1/p')
	@echo "tsa: ok"

# ThreadSanitizer over the unit tests and the service e2e tests (label
# `service`: the tests that start `kiln serve`, whose workers and tasks are
# TSan binaries too). Every process reads TSAN_OPTIONS: a report stops the
# process (halt_on_error, exit code 66) and is written to
# $(TSAN_REPORTS)/report.<pid>. A worker or task that dies is restarted or
# retried by the server, so its test may still pass: the run fails when any
# report was written, and prints them. tests/tsan.supp holds the suppressed
# third-party races, each with why it is not Kiln's.
TSAN_REPORTS := $(TSAN_DIR)/tsan-reports
TSAN_OPTIONS_ALL := halt_on_error=1 exitcode=66 second_deadlock_stack=1 \
	suppressions=$(CURDIR)/tests/tsan.supp log_path=$(CURDIR)/$(TSAN_REPORTS)/report
tsan: tsa data
	cmake --build $(TSAN_DIR) -j$(NPROC)
	@rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	@# The service tests' servers run without the task sandbox here: the TSan
	@# runtime of a sandboxed planner or task dies at start (its address-space
	@# reservation and re-exec do not survive bwrap + setpriv). TSan is about
	@# the server's threads; `make test` runs the same tests sandboxed.
	@set -o pipefail; TSAN_OPTIONS="$(TSAN_OPTIONS_ALL)" KILN_E2E_SANDBOX=none \
	  ctest --test-dir $(TSAN_DIR) --output-on-failure -j2 -L '^(unit|service)$$' | tee $(TSAN_DIR)/ctest.log; \
	rc=$$?; \
	if compgen -G '$(TSAN_REPORTS)/report.*' >/dev/null; then \
	  for f in $(TSAN_REPORTS)/report.*; do echo "=== $$f"; cat "$$f"; done; \
	  echo "make tsan: ThreadSanitizer reported the races above (kept in $(TSAN_REPORTS)/)" >&2; \
	  exit 1; \
	fi; \
	exit $$rc

format:
	@if [[ -n "$(FORMAT_FILES)" ]]; then clang-format -i $(FORMAT_FILES); fi

format-check:
	@if [[ -n "$(FORMAT_FILES)" ]]; then clang-format --dry-run --Werror $(FORMAT_FILES); fi
	@echo "format-check: ok"

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSA_DIR) $(TSAN_DIR) catalog

# libFuzzer sessions (fuzz/README.md): every fuzz target, built with Clang,
# -fsanitize=fuzzer and ASan+UBSan in $(FUZZ_DIR)/, runs for FUZZ_SECONDS
# over its seed corpus (the .seeds file CMake writes beside it) plus a
# scratch corpus in $(FUZZ_WORK)/<target>/ kept between runs. A crash,
# sanitizer report, leak or timeout stops the run: its input is saved in
# $(FUZZ_WORK)/artifacts/ and make fails. Targets are found by name
# (kiln_fuzz_* without _replay), so a new fuzz target needs no edit here.
# `make test` replays the seed corpora (ctest fuzz.*_replay); this runs them.
.PHONY: fuzz
FUZZ_DIR := build-fuzz
FUZZ_WORK ?= $(FUZZ_DIR)/sessions
FUZZ_SECONDS ?= 60
FUZZ_FLAGS ?= -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
fuzz: deps check-clang
	$(call configure,$(FUZZ_DIR),Asan,-DKILN_BUILD_FUZZERS=ON -DKILN_BUILD_TESTS=OFF \
	  -DKILN_BUILD_BENCH=OFF $(CLANG))
	@targets=$$(ninja -C $(FUZZ_DIR) -t targets all | sed -n 's/^\(kiln_fuzz_[a-z0-9_]*\): .*/\1/p' \
	  | grep -v '_replay$$' | sort -u); \
	[[ -n "$$targets" ]] || { echo "make fuzz: no fuzz targets configured" >&2; exit 1; }; \
	ninja -C $(FUZZ_DIR) -j$(NPROC) $$targets || exit 1; \
	mkdir -p $(FUZZ_WORK)/artifacts; failed=; \
	for t in $$targets; do \
	  bin=$$(find $(FUZZ_DIR) -name "$$t" -type f -perm -u+x | head -1); \
	  seeds=$$(cat $$(dirname $$bin)/$$t.seeds 2>/dev/null); \
	  mkdir -p $(FUZZ_WORK)/$$t; \
	  echo "=== $$t: $(FUZZ_SECONDS) s"; \
	  if ! $$bin -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) \
	      -artifact_prefix=$(FUZZ_WORK)/artifacts/$$t- $(FUZZ_WORK)/$$t $$seeds \
	      > $(FUZZ_WORK)/$$t.log 2>&1; then \
	    tail -40 $(FUZZ_WORK)/$$t.log; failed="$$failed $$t"; \
	  fi; \
	  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)|cov: ' $(FUZZ_WORK)/$$t.log \
	    | tail -3 | sed 's/^/    /'; \
	done; \
	if [[ -n "$$failed" ]]; then \
	  echo "make fuzz: findings in:$$failed (inputs in $(FUZZ_WORK)/artifacts/)" >&2; exit 1; \
	fi; \
	echo "fuzz: ok"
