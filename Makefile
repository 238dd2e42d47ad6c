#-------------------------------------------------------------------------
#
# Makefile
#	  PGXS build of the nokv PostgreSQL extension.
#
# The extension module (nokv.so) is the code in src/extension linked with
# the PostgreSQL-free engine core, which mk/engine.mk compiles on its own
# (-std=gnu11 -Werror -fPIC) into build/release/libnokv_engine.a.  The
# engine sources never include postgres.h; only src/extension does.
#
#	make && make install		build and install the extension; the install
#								script is src/sql/*.sql concatenated
#	make installcheck			pg_regress (sql/, expected/) on a temporary
#								instance configured by test/nokv.conf
#	make engine					engine library and unit tests (release)
#	make engine-check			engine unit tests (prove)
#	make engine-asan-check		engine unit tests under ASan + UBSan
#	make fuzz / bench / demo	see mk/engine.mk
#	make cli					the offline nokv CLI (installed by make install)
#
# Makefile
#-------------------------------------------------------------------------

MODULE_big = nokv
EXTENSION = nokv
# the install script is the concatenation of src/sql/*.sql, one per surface
DATA_built = build/sql/nokv--0.1.sql
PGFILEDESC = "nokv - LSM storage engine for PostgreSQL"

OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/extension/*.c src/bgworkers/*.c \
	src/tableam/*.c src/fdw/*.c src/gateway/*.c)))

REGRESS = version kv_api kv_errors views permissions
REGRESS_OPTS = --temp-config=$(srcdir)/test/nokv.conf --temp-instance=./tmp_check
ISOLATION = kv_write_conflict kv_snapshot
ISOLATION_OPTS = --temp-config=$(srcdir)/test/nokv.conf --temp-instance=./tmp_check_iso

ENGINE_LIB = build/release/libnokv_engine.a

PG_CPPFLAGS = -I$(srcdir)/include -I$(srcdir)/src/extension
# the extension is warning-free with PostgreSQL's own warning set
PG_CFLAGS = -Werror
# bind the engine's calls to itself inside nokv.so: no PLT hop, nothing interposed
SHLIB_LINK = $(ENGINE_LIB) -llz4 -lpthread -Wl,-Bsymbolic-functions

EXTRA_CLEAN = tmp_check tmp_check_iso output_iso

# each surface adds its own REGRESS / ISOLATION tests in mk/parts/*.mk
include $(sort $(wildcard mk/parts/*.mk))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

ENGINE_MAKE = $(MAKE) --no-print-directory -f $(srcdir)/mk/engine.mk

# The engine library is (re)built by its own makefile every time the module
# is linked; the archive only changes when an engine source did.
.PHONY: engine-lib
engine-lib:
	+$(ENGINE_MAKE) lib

$(ENGINE_LIB): engine-lib ;

$(shlib): $(ENGINE_LIB)

# PGXS tracks no header dependencies: rebuild every module when any
# extension or engine header changes
$(OBJS): $(wildcard $(srcdir)/src/*/*.h $(srcdir)/include/nokv/*.h)

SQL_PARTS = $(sort $(wildcard $(srcdir)/src/sql/*.sql))

build/sql/nokv--0.1.sql: $(SQL_PARTS)
	@mkdir -p build/sql
	cat $(SQL_PARTS) > $@

.PHONY: engine engine-check engine-asan-check engine-clean fuzz bench demo cli install-cli

# the offline CLI (src/tools/nokv_cli.c) is installed next to pg_ctl
cli:
	+$(ENGINE_MAKE) cli

install: install-cli

install-cli: cli
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) build/release/nokv '$(DESTDIR)$(bindir)/nokv'

engine:
	+$(ENGINE_MAKE) lib tests

engine-check:
	+$(ENGINE_MAKE) check

engine-asan-check:
	+$(ENGINE_MAKE) asan-check

fuzz:
	+$(ENGINE_MAKE) fuzz

bench:
	+$(ENGINE_MAKE) bench

demo:
	+$(ENGINE_MAKE) demo

engine-clean:
	+$(ENGINE_MAKE) clean

clean: engine-clean
