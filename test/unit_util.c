/*-------------------------------------------------------------------------
 *
 * unit_util.c
 *	  Shared helpers of the storage-layer unit tests: plain file access,
 *	  deterministic values, the model of appended entries and a shard under
 *	  test.
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"

#include "port/pg_crc32c.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

void
unit_path(char *path, const char *name)
{
	snprintf(path, MAXPGPATH, "%s/%s", unit_dir, name);
}

void
unit_file(char *path, uint32 file_id, ArmdbFileKind kind)
{
	static const char *const ext[] = {"data", "hint", "tmp", "merge"};

	snprintf(path, MAXPGPATH, "%s/%06u.%s", unit_dir, file_id, ext[kind]);
}

int64
unit_file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -1;
	return (int64) st.st_size;
}

bool
unit_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

char *
unit_read_all(const char *path, size_t *len)
{
	int64		size = unit_file_size(path);
	char	   *buf;
	int			fd;
	size_t		done = 0;

	*len = 0;
	if (size < 0)
		return NULL;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	buf = malloc(size + 1);
	while (done < (size_t) size)
	{
		ssize_t		rc = read(fd, buf + done, size - done);

		if (rc <= 0)
			break;
		done += rc;
	}
	close(fd);
	*len = done;
	return buf;
}

bool
unit_write_all(const char *path, const void *buf, size_t len)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t		done = 0;

	if (fd < 0)
		return false;
	while (done < len)
	{
		ssize_t		rc = write(fd, (const char *) buf + done, len - done);

		if (rc <= 0)
		{
			close(fd);
			return false;
		}
		done += rc;
	}
	close(fd);
	return true;
}

bool
unit_overwrite(const char *path, uint64 off, const void *buf, size_t len)
{
	int			fd = open(path, O_WRONLY);
	bool		ok;

	if (fd < 0)
		return false;
	ok = pwrite(fd, buf, len, off) == (ssize_t) len;
	close(fd);
	return ok;
}

bool
unit_flip_bit(const char *path, uint64 byte_off, int bit)
{
	int			fd = open(path, O_RDWR);
	unsigned char c;
	bool		ok = false;

	if (fd < 0)
		return false;
	if (pread(fd, &c, 1, byte_off) == 1)
	{
		c ^= (unsigned char) (1 << bit);
		ok = pwrite(fd, &c, 1, byte_off) == 1;
	}
	close(fd);
	return ok;
}

bool
unit_truncate(const char *path, uint64 len)
{
	return truncate(path, (off_t) len) == 0;
}

int
unit_count_files(const char *dir, const char *suffix)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	size_t		slen = strlen(suffix);
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
	{
		size_t		len = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		if (len >= slen && strcmp(de->d_name + len - slen, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

UnitFault	unit_fault;

static int
unit_fault_hook(ArmdbIoOp op, int fd, off_t off, size_t len)
{
	if (unit_fault.op >= 0 && (int) op != unit_fault.op)
		return 0;
	unit_fault.seen++;
	unit_fault.last_fd = fd;
	unit_fault.last_off = off;
	unit_fault.last_len = len;
	if (unit_fault.seen <= unit_fault.skip)
		return 0;
	if (unit_fault.times >= 0 && unit_fault.injected >= unit_fault.times)
		return 0;
	unit_fault.injected++;
	return unit_fault.err;
}

void
unit_fault_set(int op, int err, int skip, int times)
{
	memset(&unit_fault, 0, sizeof(unit_fault));
	unit_fault.op = op;
	unit_fault.err = err;
	unit_fault.skip = skip;
	unit_fault.times = times;
	armdb_io_fault_hook = unit_fault_hook;
}

void
unit_fault_clear(void)
{
	armdb_io_fault_hook = NULL;
}

/* splitmix64 */
static inline uint64
mix64(uint64 x)
{
	x += UINT64CONST(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

void
unit_fill(char *buf, size_t len, uint64 seed)
{
	uint64		s = mix64(seed);
	size_t		i = 0;

	for (; i + 8 <= len; i += 8)
	{
		uint64		v = mix64(s + i);

		memcpy(buf + i, &v, 8);
	}
	if (i < len)
	{
		uint64		v = mix64(s + i);

		memcpy(buf + i, &v, len - i);
	}
}

int64
unit_check_fill(const char *buf, size_t len, uint64 seed)
{
	char	   *want = malloc(len + 1);
	int64		bad = -1;

	unit_fill(want, len, seed);
	if (memcmp(buf, want, len) != 0)
	{
		for (size_t i = 0; i < len; i++)
			if (buf[i] != want[i])
			{
				bad = (int64) i;
				break;
			}
	}
	free(want);
	return bad;
}

uint32
unit_rand(uint64 *state)
{
	*state = mix64(*state);
	return (uint32) (*state >> 32);
}

/* ----------------
 * Entry model
 * ----------------
 */
void
tlog_init(TLog *log)
{
	memset(log, 0, sizeof(*log));
	log->next_gsn = 1;
}

void
tlog_free(TLog *log)
{
	free(log->e);
	memset(log, 0, sizeof(*log));
}

void
tentry_header(ArmdbEntryHeader *hdr, uint64 gsn, uint32 value_len,
			  bool tombstone)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->value_len = value_len;
	hdr->gsn = gsn | (tombstone ? ARMDB_GSN_FLAG_TOMBSTONE : 0);
	hdr->xid = 1000 + gsn * 3;
	hdr->slot = gsn * 11 + 5;
	hdr->root_slot = gsn * 11 + 5 - (gsn % 3);
	hdr->prev_slot = (gsn % 2) ? ARMDB_INVALID_SLOT : gsn * 11 - 6;
}

/* Recompute fh's CRC after a test changed its fields. */
void
unit_file_header_reseal(ArmdbFileHeader *fh)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, ((char *) fh) + 4, ARMDB_FILE_HEADER_SIZE - 4);
	FIN_CRC32C(crc);
	fh->crc = crc;
}

/* Bytes of the header tentry_header() makes for gsn, once sealed. */
uint32
tentry_header_size(uint64 gsn, bool tombstone)
{
	ArmdbEntryHeader h;

	tentry_header(&h, gsn, 0, tombstone);
	armdb_entry_seal(&h, NULL);
	return armdb_entry_header_size(h.gsn);
}

uint64
tlog_max_gsn(const TLog *log, int n)
{
	uint64		m = 0;

	for (int i = 0; i < n; i++)
		m = Max(m, log->e[i].hdr.gsn & ARMDB_GSN_MAX);
	return m;
}

void
tinfos_init(TInfos *infos)
{
	memset(infos, 0, sizeof(*infos));
	infos->fail_at = -1;
}

void
tinfos_free(TInfos *infos)
{
	free(infos->e);
	tinfos_init(infos);
}

bool
tinfos_cb(void *arg, const ArmdbEntryInfo *entry, ArmdbError *err)
{
	TInfos	   *infos = arg;

	if (infos->n == infos->fail_at)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "test callback fails at entry %d", infos->n);
	if (infos->n == infos->cap)
	{
		infos->cap = infos->cap == 0 ? 64 : infos->cap * 2;
		infos->e = realloc(infos->e, sizeof(ArmdbEntryInfo) * infos->cap);
	}
	infos->e[infos->n++] = *entry;
	return true;
}

bool
tinfos_match(const TInfos *infos, const TLog *log, int n)
{
	HASSERT_MSG(infos->n == n, "%d entries reported, expected %d",
				infos->n, n);
	for (int i = 0; i < n; i++)
	{
		const ArmdbEntryInfo *g = &infos->e[i];
		const TEntry *w = &log->e[i];

		HASSERT_MSG(g->file_id == w->loc.file_id &&
					g->offset == w->loc.offset && g->len == w->loc.len,
					"entry %d reported at (%u, %u, %u), appended at (%u, %u, %u)",
					i, g->file_id, g->offset, g->len,
					w->loc.file_id, w->loc.offset, w->loc.len);
		HASSERT_MSG(g->gsn == w->hdr.gsn && g->xid == w->hdr.xid &&
					g->slot == w->hdr.slot && g->root_slot == w->hdr.root_slot &&
					g->prev_slot == w->hdr.prev_slot,
					"entry %d reported with other header fields (gsn %llx, want %llx)",
					i, (unsigned long long) g->gsn,
					(unsigned long long) w->hdr.gsn);
	}
	return true;
}

bool
info_equal(const ArmdbEntryInfo *a, const ArmdbEntryInfo *b)
{
	return a->gsn == b->gsn && a->xid == b->xid && a->slot == b->slot &&
		a->root_slot == b->root_slot && a->prev_slot == b->prev_slot &&
		a->file_id == b->file_id && a->offset == b->offset && a->len == b->len;
}

bool
tinfos_equal(const TInfos *a, const TInfos *b)
{
	HASSERT_EQ(a->n, b->n);
	for (int i = 0; i < a->n; i++)
		HASSERT_MSG(info_equal(&a->e[i], &b->e[i]), "entry %d differs", i);
	return true;
}

/* ----------------
 * Shard under test
 * ----------------
 */
bool
tshard_init(TShard *s, const char *dir, uint32 buf_size,
			uint32 max_file_size, bool direct)
{
	ArmdbError	err;

	memset(s, 0, sizeof(*s));
	HASSERT_OK(armdb_aligned_alloc(&s->abuf, buf_size, &err));
	HASSERT((((uintptr_t) s->abuf.data) % ARMDB_BLOCK_SIZE) == 0);
	/* garbage: armdb_shard_state_init must establish the zeroed buffer */
	memset(s->abuf.data, 0xA5, buf_size);
	armdb_shard_state_init(&s->st, 0, (uint64) (uintptr_t) s->abuf.data,
						   buf_size, max_file_size);
	armdb_shard_files_init(&s->files, dir, unit_io, direct);
	s->active = true;
	return true;
}

bool
tshard_start(TShard *s, const char *dir, uint32 buf_size,
			 uint32 max_file_size, bool direct, TInfos *infos,
			 ArmdbRecoveryReport *report)
{
	ArmdbError	err;

	HASSERT_CALL(tshard_init(s, dir, buf_size, max_file_size, direct));
	HASSERT_OK(armdb_recover_shard(unit_io, dir, direct, ARMDB_RECOVER_MISSING_OK | ARMDB_RECOVER_AFTER_CRASH, NULL,
								   infos ? tinfos_cb : NULL, infos, report,
								   &err));
	HASSERT_OK(armdb_shard_open(&s->st, &s->files, report->last_file_id,
								report->end_offset, &err));
	armdb_shard_note_file_id(&s->st, report->max_file_id);
	HASSERT_CALL(tshard_check_state(s));
	return true;
}

void
tshard_close(TShard *s)
{
	if (!s->active)
		return;
	armdb_shard_files_close(&s->files);
	armdb_aligned_free(&s->abuf);
	s->active = false;
}

bool
tshard_check_state(const TShard *s)
{
	const ArmdbShardState *st = &s->st;

	if (st->active_file_id == 0)
		return true;
	HASSERT_MSG(st->buf_start % ARMDB_BLOCK_SIZE == 0,
				"buf_start %llu not block-aligned",
				(unsigned long long) st->buf_start);
	HASSERT_MSG(st->buf_start <= st->append_end &&
				st->append_end - st->buf_start <= st->buf_size,
				"buffer [%llu, %llu) does not fit %u bytes",
				(unsigned long long) st->buf_start,
				(unsigned long long) st->append_end, st->buf_size);
	HASSERT_MSG(st->buf_start <= st->written_end &&
				st->written_end <= st->append_end,
				"written_end %llu outside [buf_start %llu, append_end %llu]",
				(unsigned long long) st->written_end,
				(unsigned long long) st->buf_start,
				(unsigned long long) st->append_end);
	HASSERT_MSG(st->flushed <= armdb_shard_end(st),
				"flushed %llx past the end %llx",
				(unsigned long long) st->flushed,
				(unsigned long long) armdb_shard_end(st));
	for (uint64 i = st->append_end - st->buf_start; i < st->buf_size; i++)
		HASSERT_MSG(armdb_shard_buf(st)[i] == 0,
					"write buffer byte %llu (past append_end) is not zero",
					(unsigned long long) i);
	return true;
}

bool
tshard_append(TShard *s, TLog *log, uint32 value_len, bool tombstone,
			  uint32 *sealed)
{
	ArmdbError	err;
	TEntry		e;
	char	   *value = malloc(value_len + 1);
	uint32		sealed_id = 12345;
	uint64		before_end = s->st.append_end;
	uint32		before_file = s->st.active_file_id;
	ArmdbEntryHeader check;
	bool		ok;

	memset(&e, 0, sizeof(e));
	tentry_header(&e.hdr, log->next_gsn, value_len, tombstone);
	e.seed = log->next_gsn * 7919;
	unit_fill(value, value_len, e.seed);

	armdb_error_clear(&err);
	/* tombstones carry no value: NULL must do */
	ok = armdb_shard_append(&s->st, &s->files, &e.hdr,
							value_len == 0 ? NULL : value, &e.loc,
							&sealed_id, &err);
	check = e.hdr;
	armdb_entry_seal(&check, value);
	free(value);
	HASSERT_MSG(ok, "armdb_shard_append of %u bytes failed: code %d errno %d: %s",
				value_len, err.code, err.sys_errno, err.message);

	HASSERT_MSG(e.hdr.crc == check.crc, "append left hdr->crc %08x, sealed %08x",
				e.hdr.crc, check.crc);
	HASSERT_EQ(e.loc.len, armdb_entry_size(e.hdr.gsn, value_len));
	HASSERT_EQ(e.loc.file_id, s->st.active_file_id);
	HASSERT(e.loc.offset >= ARMDB_FILE_HEADER_SIZE);
	HASSERT_EQ((uint64) e.loc.offset + e.loc.len, s->st.append_end);
	if (sealed_id != 0)
	{
		HASSERT_EQ(sealed_id, before_file);
		HASSERT_EQ(e.loc.file_id, before_file + 1);
		HASSERT_EQ(e.loc.offset, ARMDB_FILE_HEADER_SIZE);
	}
	else if (before_file != 0)
	{
		HASSERT_EQ(e.loc.file_id, before_file);
		HASSERT_EQ(e.loc.offset, before_end);
	}
	else
	{
		HASSERT_EQ(e.loc.file_id, 1);
		HASSERT_EQ(e.loc.offset, ARMDB_FILE_HEADER_SIZE);
	}
	HASSERT_CALL(tshard_check_state(s));
	if (sealed)
		*sealed = sealed_id;

	if (log->n == log->cap)
	{
		log->cap = log->cap == 0 ? 64 : log->cap * 2;
		log->e = realloc(log->e, sizeof(TEntry) * log->cap);
	}
	log->e[log->n++] = e;
	log->next_gsn++;
	return true;
}

#define GUARD 64

bool
tshard_verify(TShard *s, const TEntry *e)
{
	ArmdbError	err;
	ArmdbEntryHeader hdr;
	char	   *dst = malloc(e->loc.len + GUARD);
	int64		bad;
	bool		ok;

	memset(dst, 0xEE, e->loc.len + GUARD);
	armdb_error_clear(&err);
	ok = armdb_shard_read(&s->st, &s->files, &e->loc, dst, &hdr, &err);
	if (!ok)
	{
		unit_fail(__FILE__, __LINE__,
				  "armdb_shard_read of (%u, %u, %u) failed: code %d errno %d: %s",
				  e->loc.file_id, e->loc.offset, e->loc.len, err.code,
				  err.sys_errno, err.message);
		free(dst);
		return false;
	}
	for (int i = 0; i < GUARD; i++)
		if ((unsigned char) dst[e->loc.len + i] != 0xEE)
		{
			free(dst);
			HASSERT_MSG(false, "armdb_shard_read wrote past loc->len (%u)",
						e->loc.len);
		}
	if (memcmp(&hdr, &e->hdr, sizeof(hdr)) != 0 ||
		memcmp(dst, &e->hdr, armdb_entry_header_size(e->hdr.gsn)) != 0)
	{
		free(dst);
		HASSERT_MSG(false, "entry (%u, %u) read back with another header (gsn %llx, want %llx)",
					e->loc.file_id, e->loc.offset,
					(unsigned long long) hdr.gsn,
					(unsigned long long) e->hdr.gsn);
	}
	bad = unit_check_fill(dst + armdb_entry_header_size(e->hdr.gsn), e->hdr.value_len,
						  e->seed);
	free(dst);
	HASSERT_MSG(bad < 0, "entry (%u, %u) value differs at byte %lld",
				e->loc.file_id, e->loc.offset, (long long) bad);
	return true;
}

bool
tshard_verify_all(TShard *s, const TLog *log, int n)
{
	for (int i = 0; i < n; i++)
		HASSERT_CALL(tshard_verify(s, &log->e[i]));
	return true;
}

bool
tshard_flush_all(TShard *s)
{
	ArmdbError	err;
	ArmdbPos	end = armdb_shard_end(&s->st);

	HASSERT_OK(armdb_shard_flush(&s->st, &s->files, end, &err));
	HASSERT_MSG(s->st.flushed >= end, "flushed %llx < end %llx after flush",
				(unsigned long long) s->st.flushed, (unsigned long long) end);
	HASSERT_EQ(s->st.written_end, s->st.append_end);
	HASSERT_CALL(tshard_check_state(s));
	return true;
}

bool
trecover(TInfos *infos, ArmdbRecoveryReport *report)
{
	ArmdbError	err;

	HASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, tinfos_cb,
								   infos, report, &err));
	HASSERT_EQ(report->entries, infos->n);
	return true;
}
