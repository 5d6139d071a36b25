# adr_ops: PGXS build.  `make installcheck` runs pg_regress, isolation, then TAP.

EXTENSION  = adr_ops
EXTVERSION = $(shell grep default_version $(EXTENSION).control | \
               sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = adr_ops
OBJS = \
	src/adr_ops.o \
	src/alert.o \
	src/backup.o \
	src/backup_run.o \
	src/backup_worker.o \
	src/bloat.o \
	src/caller.o \
	src/capacity.o \
	src/cron.o \
	src/dumpfilter.o \
	src/guc.o \
	src/health.o \
	src/health_task.o \
	src/http.o \
	src/incident.o \
	src/integrity.o \
	src/info.o \
	src/jobs.o \
	src/maint_launcher.o \
	src/maint_request.o \
	src/maint_schedule.o \
	src/maint_shmem.o \
	src/maint_tables.o \
	src/maint_task.o \
	src/perf.o \
	src/plans.o \
	src/probe.o \
	src/probe_task.o \
	src/prom_text.o \
	src/quality.o \
	src/security.o \
	src/serverlog.o \
	src/statements.o

# The install script is assembled from the per-concern fragments, in this
# order: schema.sql first (it refuses a hostile pre-created schema);
# health.sql and metrics.sql early, so that every later concern can
# register its health checks and metric sources from its own fragment.
SQL_FRAGMENTS = \
	src/schema.sql \
	src/info.sql \
	src/serverlog.sql \
	src/health.sql \
	src/metrics.sql \
	src/maintenance.sql \
	src/jobs.sql \
	src/quality.sql \
	src/statements.sql \
	src/perf.sql \
	src/bloat.sql \
	src/http.sql \
	src/security.sql \
	src/backup.sql \
	src/capacity.sql \
	src/plans.sql \
	src/incident.sql \
	src/integrity.sql \
	src/anomaly.sql \
	src/report.sql

DATA_built = $(EXTENSION)--$(EXTVERSION).sql
# The frozen install scripts of released versions and the update scripts.
DATA = $(wildcard updates/$(EXTENSION)--*.sql)
SCRIPTS = scripts/adr-check scripts/adr-block-ip scripts/adr-verify-backup scripts/adr-incident scripts/adr-report
EXTRA_CLEAN = $(EXTENSION)--$(EXTVERSION).sql

# libcurl is not linked: http.c opens it on first use (dlopen), so that it
# and the libraries it needs are mapped only into the processes that make
# HTTP requests.  ADR_CURL_LIB names it (its soname).
ADR_CURL_LIB ?= libcurl.so.4
PG_CPPFLAGS = -DADR_OPS_VERSION=\"$(EXTVERSION)\" -DADR_CURL_LIB=\"$(ADR_CURL_LIB)\" $(shell curl-config --cflags)
SHLIB_LINK = -lz

REGRESS = install health serverlog maintenance jobs quality statements perf bloat http backup plans privileges security incident integrity anomaly report metrics
REGRESS_OPTS = --temp-config=t/fixtures/adr_ops_regress.conf --temp-instance=./tmp_check
ISOLATION = job_restart_race job_restart_reap job_claim_restart job_two_claimers incident_one_per_key
ISOLATION_OPTS = $(REGRESS_OPTS)
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies unless the server was configured with
# --enable-depend (Debian's is not): a changed header rebuilds everything.
$(OBJS): $(wildcard src/*.h)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_FRAGMENTS) $(EXTENSION).control
	cat $(SQL_FRAGMENTS) > $@

.PHONY: fuzz cron-check prom-check prom-fuzz dumpfilter-check dumpfilter-fuzz shellcheck
# The PostgreSQL-free parsers alone: table-driven checks, and libFuzzer
# (clang): the schedule parser (cron) and the Prometheus text parser (prom).
cron-check:
	$(MAKE) -C fuzz cron-check
fuzz:
	$(MAKE) -C fuzz run
prom-check:
	$(MAKE) -C fuzz prom-check
prom-fuzz:
	$(MAKE) -C fuzz prom-run
# The plain-dump filter of backup verification alone: the cases of
# t/fixtures/dump_filter_cases.txt, and libFuzzer (clang).
dumpfilter-check:
	$(MAKE) -C fuzz dumpfilter-check
dumpfilter-fuzz:
	$(MAKE) -C fuzz dumpfilter-run

shellcheck:
	shellcheck scripts/adr-* scripts/*.sh .ci/run
