# Kiln developer entry points. `make demo` and `make test` start from a bare
# Debian 12 machine: they install the packages, fetch the sample scene and
# build before doing their job.

SHELL := /bin/bash
NPROC := $(shell nproc)
BUILD_DIR := build
ASAN_DIR := build-asan
KILN := $(BUILD_DIR)/src/cli/kiln
DEMO_DEF := examples/landsat-rgb.json
DEMO_LAYER_DIR := catalog/production/landsat-rgb/current
CMAKE_ARGS ?=
FORMAT_FILES = $(shell find src bench fuzz \( -name '*.cc' -o -name '*.h' \) 2>/dev/null)

.PHONY: all deps data build build-demo build-debinfo demo test asan format format-check clean help

all: build

help:
	@echo "make demo          install deps, fetch data, build (Release), ingest the Landsat demo layer"
	@echo "make test          install deps, fetch data, build (RelWithDebInfo), run every test"
	@echo "make build         configure and build into $(BUILD_DIR)/ (RelWithDebInfo)"
	@echo "make asan          ASan+UBSan build in $(ASAN_DIR)/ and run every test there"
	@echo "make format        clang-format -i the C++ sources"
	@echo "make format-check  fail if a C++ source is not clang-formatted"
	@echo "make clean         remove $(BUILD_DIR)/, $(ASAN_DIR)/ and the demo catalog"

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

format:
	@if [[ -n "$(FORMAT_FILES)" ]]; then clang-format -i $(FORMAT_FILES); fi

format-check:
	@if [[ -n "$(FORMAT_FILES)" ]]; then clang-format --dry-run --Werror $(FORMAT_FILES); fi
	@echo "format-check: ok"

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) catalog
