# What `sam build` runs (template.yaml: every function's `BuildMethod: makefile`, CodeUri `.`;
# samconfig.toml: build_in_source). docs/deploying.md has the timings and the choices.
#
# SAM calls `make build-<LogicalId>` once per function. Every target runs the same cargo-lambda
# build of all eleven binaries (arm64, cross-linked by zig) in the one shared target/ and copies
# its own binary into the artifacts directory SAM zips: the first target compiles the
# workspace once and links the eleven binaries in parallel; the other ten find them fresh.
# The targets take turns (the lock below): cargo-lambda moves every binary it built out of
# cargo's directory into target/lambda (copy, then delete) after cargo has released its own
# lock, so two runs at once (`sam build --parallel`) could copy a half-written file.
#
# After a change, cargo recompiles the crates it touches and relinks the binaries that depend
# on them; SAM's zip is byte-for-byte deterministic, so a binary whose bytes did not change
# uploads as the same object and `sam deploy` leaves its function alone.
#
#   sam build                             the eleven functions, release profile
#   LAMBDA_PROFILE=release-lto sam build  the same, smallest binaries, slower to build
#   make lambdas                          the eleven binaries alone: target/lambda/<binary>/bootstrap

LAMBDA_PROFILE ?= release
CARGO_TARGET_DIR ?= target
export CARGO_TARGET_DIR

FUNCTIONS := connect disconnect route broadcast search-indexer file-share http-api service-api image-preview lifecycle notify-batch
CARGO_LAMBDA_BUILD := cargo lambda build --locked --arm64 --profile $(LAMBDA_PROFILE) \
	$(addprefix --package ,$(FUNCTIONS))

# `$(call locked,COMMANDS)`: COMMANDS while holding an exclusive lock on $(LOCK). The shell
# opens the file as descriptor 9 and locks it with flock(2) (util-linux's flock, or perl where
# there is none, as on macOS); the lock belongs to the open file, so it is held until the
# shell and every process it started have exited, and the kernel releases it however they end:
# a killed build leaves nothing to clean up, and no two builds can take it at once.
LOCK := $(CARGO_TARGET_DIR)/.lambda-build.lock
define locked
	@mkdir -p "$(CARGO_TARGET_DIR)"; \
	exec 9>>"$(LOCK)"; \
	if command -v flock >/dev/null 2>&1; then flock 9; \
	else perl -MFcntl=:flock -e 'open(my $$l, ">>&=", 9) or die "lock: $$!"; flock($$l, LOCK_EX) or die "lock: $$!"'; fi; \
	set -e; \
	$(1)
endef

.PHONY: lambdas
lambdas:
	$(call locked,echo "$(CARGO_LAMBDA_BUILD)"; $(CARGO_LAMBDA_BUILD))

# $(1): the function's binary (its package has the same name).
define package
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it" >&2; exit 1; }
	$(call locked,echo "$(CARGO_LAMBDA_BUILD)"; $(CARGO_LAMBDA_BUILD); \
	  mkdir -p "$(ARTIFACTS_DIR)"; \
	  echo cp "$(CARGO_TARGET_DIR)/lambda/$(1)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"; \
	  cp "$(CARGO_TARGET_DIR)/lambda/$(1)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap")
endef

.PHONY: build-ConnectFunction build-DisconnectFunction build-RouteFunction build-BroadcastFunction \
	build-SearchIndexerFunction build-FileShareFunction build-HttpApiFunction build-NotifyBatchFunction

build-ConnectFunction:
	$(call package,connect)

build-DisconnectFunction:
	$(call package,disconnect)

build-RouteFunction:
	$(call package,route)

build-BroadcastFunction:
	$(call package,broadcast)

build-SearchIndexerFunction:
	$(call package,search-indexer)

build-FileShareFunction:
	$(call package,file-share)

build-HttpApiFunction:
	$(call package,http-api)

build-ServiceApiFunction:
	$(call package,service-api)

build-ImagePreviewFunction:
	$(call package,image-preview)

build-LifecycleFunction:
	$(call package,lifecycle)

build-NotifyBatchFunction:
	$(call package,notify-batch)
