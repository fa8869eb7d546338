# armdb: a bitcask table access method for PostgreSQL 15
#
#   make && make install          build and install the extension
#   make installcheck             pg_regress tests against a running server
#   make unittest                 storage-layer unit tests, no server needed
#   make fuzz FUZZ_SECONDS=60     libFuzzer smoke run of the entry/hint parsers
#   make test/lossyfs             FUSE file system simulating power loss, for
#                                 t/018_power_loss.pl (needs libfuse3-dev)

EXTENSION = armdb
MODULE_big = armdb
DATA = armdb--0.1.sql
PGFILEDESC = "armdb - bitcask table access method"

STORAGE_SRCS = src/storage/status.c src/storage/format.c src/storage/io.c \
	src/storage/merge.c \
	src/storage/shard.c src/storage/recovery.c src/storage/hint.c \
	src/storage/winner.c src/storage/cipher.c src/storage/ghash.c
STORAGE_OBJS = $(STORAGE_SRCS:.c=.o)

OBJS = src/armdb.o src/armdb_crypt.o src/armdb_storage.o src/armdb_funcs.o src/armdb_utility.o \
	src/armdb_workers.o \
	src/armdb_sweep.o src/armdb_load.o \
	src/am/armdb_handler.o src/am/armdb_index.o src/am/armdb_seqscan.o \
	src/am/armdb_fetch.o src/am/armdb_hot.o src/am/armdb_analyze.o src/am/armdb_bitmapscan.o \
	src/am/armdb_modify.o src/am/armdb_update.o src/am/armdb_rowlock.o \
	src/am/armdb_ddl.o src/am/armdb_vacuum.o src/am/armdb_xact.o \
	src/am/armdb_vm.o \
	src/vstore/vstore.o src/vstore/vstore_commit.o src/vstore/decrypted.o \
	src/keydir/keydir.o src/keydir/relstorage.o src/keydir/visibility.o \
	src/keydir/files.o src/keydir/image.o src/compact/compact.o src/compact/worker.o \
	src/wal/armdb_wal.o src/wal/armdb_durable.o src/wal/armdb_logical.o \
	$(STORAGE_OBJS)

REGRESS = armdb_init armdb_table armdb_analyze armdb_toast armdb_compact armdb_tidrange armdb_bitmapscan armdb_estimates armdb_stale_cache armdb_tuple_format armdb_compression armdb_vm armdb_hot armdb_seqscan_pages armdb_memory
ISOLATION = armdb-eval-plan-qual armdb-update-delete armdb-row-locks armdb-spec-abort \
	armdb-rr-conflict armdb-write-skew armdb-unique armdb-visibility \
	armdb-subxact-locks armdb-fk armdb-compact-scan armdb-ssi-delete armdb-ios \
	armdb-hot-prune
ISOLATION_OPTS = --load-extension=armdb
TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/src
# make ASSERTS=1: compile armdb's own Assert()s in (the test suite does), on
# any server build -- it need not be configured with --enable-cassert
ifdef ASSERTS
PG_CPPFLAGS += -DUSE_ASSERT_CHECKING
endif
# -Wextra without the three warnings PostgreSQL's own headers trigger
ARMDB_WARNINGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare
PG_CFLAGS = $(ARMDB_WARNINGS)
SHLIB_LINK = -luring -lcrypto

EXTRA_CLEAN = test/armdb_unit test/fuzz_parsers test/obj test/fuzz-corpus \
	test/lossyfs

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild everything when a header
# changes (a struct compiled two ways is a silent memory corruption)
$(OBJS): $(wildcard $(srcdir)/src/*.h $(srcdir)/src/*/*.h)

# ---------------------------------------------------------------------------
# Storage layer without a server: compiled with FRONTEND (postgres_fe.h,
# palloc from libpgcommon, pg_crc32c from libpgport).
# ---------------------------------------------------------------------------
FE_CC = $(CC)
FE_CFLAGS = -O1 -g $(ARMDB_WARNINGS) -D_GNU_SOURCE -DFRONTEND -I$(srcdir)/src \
	-I$(includedir_server) -I$(includedir_internal)
FE_LIBS = -L$(pkglibdir) -L$(libdir) -lpgcommon -lpgport -luring -lcrypto -lpthread

UNIT_SRCS = $(wildcard $(srcdir)/test/unit_*.c)
# the unit tests run under AddressSanitizer and UBSan: a test that "passes"
# while reading freed or unaligned memory is a failure
UNIT_SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer

test/armdb_unit: $(UNIT_SRCS) $(STORAGE_SRCS) $(wildcard $(srcdir)/test/*.h) \
		$(wildcard $(srcdir)/src/storage/*.h)
	$(FE_CC) $(FE_CFLAGS) $(UNIT_SANITIZE) -I$(srcdir)/test -o $@ $(UNIT_SRCS) \
		$(addprefix $(srcdir)/,$(STORAGE_SRCS)) $(FE_LIBS)

.PHONY: unittest fuzz
unittest: test/armdb_unit
	./test/armdb_unit

# libFuzzer needs clang; ASan+UBSan catch what a crash alone would not.
FUZZ_CC = clang
FUZZ_SECONDS ?= 60
test/fuzz_parsers: $(srcdir)/test/fuzz_parsers.c $(STORAGE_SRCS)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -Wno-ignored-attributes -D_GNU_SOURCE -DFRONTEND -I$(srcdir)/src \
		-I$(includedir_server) -I$(includedir_internal) -o $@ $^ $(FE_LIBS)

fuzz: test/fuzz_parsers
	mkdir -p test/fuzz-corpus
	./test/fuzz_parsers -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
		-print_final_stats=1 test/fuzz-corpus $(srcdir)/test/fuzz-seeds

# ---------------------------------------------------------------------------
# lossyfs: a FUSE pass-through file system that drops unsynced writes at a
# simulated power cut (test/lossyfs.c), for t/018_power_loss.pl.  Not part
# of the extension.  installcheck builds it where libfuse3's headers are;
# without them the test skips, saying why.
# ---------------------------------------------------------------------------
FUSE_CFLAGS ?= $(shell pkg-config --cflags fuse3 2>/dev/null || echo -I/usr/include/fuse3)
FUSE_LIBS ?= $(shell pkg-config --libs fuse3 2>/dev/null || echo -lfuse3 -lpthread)

test/lossyfs: $(srcdir)/test/lossyfs.c
	$(CC) -O1 -g $(ARMDB_WARNINGS) $(FUSE_CFLAGS) -o $@ $< $(FUSE_LIBS)

ifneq ($(wildcard /usr/include/fuse3/fuse.h),)
installcheck: test/lossyfs
endif
