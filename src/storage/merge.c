/*-------------------------------------------------------------------------
 *
 * merge.c
 *	  Merging a shard's immutable data files (see merge.h).
 *
 *-------------------------------------------------------------------------
 */
#include "storage/status.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "port/pg_crc32c.h"
#include "storage/cipher.h"
#include "storage/hint.h"
#include "storage/merge.h"
#include "storage/recovery.h"
#include "storage/shard.h"

/* read size of the inputs and write buffer of the outputs */
#define MERGE_CHUNK_SIZE	(1024 * 1024)

/* most outputs one merge may have (the manifest lists them) */
#define MERGE_MAX_OUTPUTS	1024

/* ----------------
 * Choosing the files
 * ----------------
 */
/* Is candidate a older than b (see armdb_merge_pick)? */
static bool
older(const ArmdbMergeCandidate *a, const ArmdbMergeCandidate *b)
{
	return a->min_gsn < b->min_gsn ||
		(a->min_gsn == b->min_gsn && a->file_id < b->file_id);
}

int
armdb_merge_pick(const ArmdbMergeCandidate *files, int nfiles,
				 uint32 active_file_id, double threshold, int max_inputs,
				 uint32 *picked)
{
	const ArmdbMergeCandidate *best[ARMDB_MERGE_MAX_INPUTS];
	int			n = 0;

	max_inputs = Min(max_inputs, ARMDB_MERGE_MAX_INPUTS);
	for (int i = 0; i < nfiles; i++)
	{
		const ArmdbMergeCandidate *f = &files[i];
		int			j;

		if (f->file_id == active_file_id || f->cooldown || f->total_bytes == 0 ||
			(double) f->dead_bytes / (double) f->total_bytes <= threshold)
			continue;
		/* keep the max_inputs oldest, oldest first (insertion) */
		if (n == max_inputs && !older(f, best[n - 1]))
			continue;
		if (n < max_inputs)
			n++;
		for (j = n - 1; j > 0 && older(f, best[j - 1]); j--)
			best[j] = best[j - 1];
		best[j] = f;
	}
	for (int i = 0; i < n; i++)
		picked[i] = best[i]->file_id;
	return n;
}

/* ----------------
 * Outputs
 * ----------------
 */

static void
output_path(char *path, const ArmdbMerge *m, uint32 file_id)
{
	armdb_file_path(path, m->dir, file_id, ARMDB_FILE_TMP);
}

/* Start output file file_id: header in the buffer, .tmp created. */
static bool
output_open(ArmdbMerge *m, ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbFileHeader fh;
	uint32		file_id;

	if (m->noutputs == MERGE_MAX_OUTPUTS)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "merge in \"%s\" would need more than %d output files",
						   m->dir, MERGE_MAX_OUTPUTS);
	if (!m->next_file_id(m->arg, &file_id, err))
		return false;
	if (m->noutputs == m->outputs_cap)
	{
		int			cap = Max(4, m->outputs_cap * 2);
		uint32	   *ids = armdb_alloc(err, sizeof(uint32) * cap, "merge outputs");
		uint64	   *sizes = armdb_alloc(err, sizeof(uint64) * cap, "merge outputs");

		if (ids == NULL || sizes == NULL)
			return false;
		if (m->noutputs > 0)
		{
			memcpy(ids, m->outputs, sizeof(uint32) * m->noutputs);
			memcpy(sizes, m->output_sizes, sizeof(uint64) * m->noutputs);
			pfree(m->outputs);
			pfree(m->output_sizes);
		}
		m->outputs = ids;
		m->output_sizes = sizes;
		m->outputs_cap = cap;
	}
	output_path(path, m, file_id);
	m->out_fd = armdb_file_open(path, O_RDWR | O_CREAT | O_EXCL, m->direct_io,
								NULL, err);
	if (m->out_fd < 0)
		return false;
	m->outputs[m->noutputs] = file_id;
	m->output_sizes[m->noutputs] = ARMDB_FILE_HEADER_SIZE;
	m->noutputs++;

	armdb_file_header_init_flags(&fh, file_id, m->shard_no,
								 ARMDB_FILE_FLAG_MERGED);
	if (m->key_id != 0)
	{
		armdb_file_header_set_key(&fh, m->key_id, m->salt, m->authenticated);
		if (!armdb_cipher_file_key(&armdb_keyring, m->key_id, m->salt,
								   m->shard_no, file_id, m->storage_id,
								   m->authenticated, m->out_key, err))
			return armdb_error_context(err, "merge in \"%s\"", m->dir);
	}
	memset(m->out_buf.data, 0, m->out_buf.size);
	memcpy(m->out_buf.data, &fh, sizeof(fh));
	m->out_buf_start = 0;
	m->out_end = ARMDB_FILE_HEADER_SIZE;
	return true;
}

/*
 * Write the buffer's whole blocks (all of it, zero-padded, if final) and
 * keep the partial last block at the buffer's start.
 */
static bool
output_write_out(ArmdbMerge *m, bool final, ArmdbError *err)
{
	uint64		used = m->out_end - m->out_buf_start;
	uint64		len = final ? ARMDB_BLOCK_CEIL(used) : ARMDB_BLOCK_FLOOR(used);

	if (len > 0 &&
		!armdb_io_pwrite(m->io, m->out_fd, m->out_buf.data, len,
						 (off_t) m->out_buf_start, err))
		return false;
	if (!final && len > 0)
	{
		memmove(m->out_buf.data, m->out_buf.data + len, used - len);
		memset(m->out_buf.data + (used - len), 0, m->out_buf.size - (used - len));
		m->out_buf_start += len;
	}
	return true;
}

/* Finish the current output: written whole and fsynced, still .tmp. */
static bool
output_close(ArmdbMerge *m, ArmdbError *err)
{
	bool		ok;

	ok = output_write_out(m, true, err) &&
		armdb_io_fdatasync(m->io, m->out_fd, err);
	armdb_file_close(m->out_fd);
	m->out_fd = -1;
	m->output_sizes[m->noutputs - 1] = m->out_end;
	return ok;
}

static bool
note_move(ArmdbMerge *m, const ArmdbEntryInfo *e, ArmdbError *err)
{
	ArmdbMergeMove *mv;

	if (m->nmoves == m->moves_cap)
	{
		uint64		cap = Max(1024, m->moves_cap * 2);
		ArmdbMergeMove *bigger;

		if (cap * sizeof(ArmdbMergeMove) > ARMDB_MAX_ALLOC)
			return armdb_error(err, ARMDB_ERR_NOMEM, 0,
							   "merge in \"%s\" keeps too many entries", m->dir);
		bigger = armdb_alloc(err, cap * sizeof(ArmdbMergeMove), "merge moves");
		if (bigger == NULL)
			return false;
		if (m->nmoves > 0)
		{
			memcpy(bigger, m->moves, m->nmoves * sizeof(ArmdbMergeMove));
			pfree(m->moves);
		}
		m->moves = bigger;
		m->moves_cap = cap;
	}
	mv = &m->moves[m->nmoves++];
	mv->entry = *e;
	mv->new_file_id = m->outputs[m->noutputs - 1];
	mv->new_offset = (uint32) m->out_end;
	return true;
}

/* m->resealed of len bytes at least */
static bool
resealed_room(ArmdbMerge *m, uint32 len, ArmdbError *err)
{
	if (m->resealed_size < len)
	{
		char	   *p = armdb_alloc(err, Max(len, 8192), "a merged entry");

		if (p == NULL)
			return false;
		if (m->resealed != NULL)
		{
			explicit_bzero(m->resealed, m->resealed_size);
			pfree(m->resealed);
		}
		m->resealed = p;
		m->resealed_size = Max(len, 8192);
	}
	return true;
}

/*
 * Decrypt the value of the encrypted entry at image (header hdr, at e in
 * the current input) into out, authenticating it and its header: a tag
 * that does not match is ARMDB_ERR_CORRUPT naming file and offset.
 */
static bool
open_input_entry(ArmdbMerge *m, const ArmdbEntryInfo *e,
				 const ArmdbEntryHeader *hdr, const char *image, char *out,
				 ArmdbError *err)
{
	if (armdb_cipher_open_entry(m->in_key, hdr,
								image + armdb_entry_header_size(hdr->gsn), out,
								err))
		return true;
	if (err->code != ARMDB_OK)
		return false;
	return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
					   "encrypted entry at offset %u of data file %06u in \"%s\" failed authentication: its value, tag or header was changed",
					   e->offset, e->file_id, m->dir);
}

/*
 * The encrypted entry image at image (header hdr), from the current input,
 * encrypted again under the current output's key, in m->resealed: the
 * same header (so the same gsn, the nonce) with a new CRC.
 */
static bool
reseal_entry(ArmdbMerge *m, const ArmdbEntryInfo *e, const ArmdbEntryHeader *hdr,
			 const char *image, const char **resealed, ArmdbError *err)
{
	uint32		hsize = armdb_entry_header_size(hdr->gsn);
	char	   *out;
	ArmdbEntryHeader sealed;

	if (m->key_id == 0 || !m->in_encrypted)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "entry at offset %u of data file %06u in \"%s\" is encrypted, but %s",
						   e->offset, e->file_id, m->dir,
						   m->in_encrypted ? "its table is not" : "its file is not");
	if (!resealed_room(m, e->len, err))
		return false;
	out = m->resealed;
	memcpy(out, image, hsize);
	if (!open_input_entry(m, e, hdr, image, out + hsize, err))
		return false;
	if (!armdb_cipher_seal_entry(m->out_key, hdr, out + hsize, out + hsize,
								 err))
		return false;
	memcpy(&sealed, hdr, sizeof(sealed));
	armdb_entry_seal(&sealed, out + hsize);
	memcpy(out, &sealed.crc, sizeof(uint32));
	*resealed = out;
	return true;
}

/*
 * The entry without a value at image (header hdr: a tombstone, reservation
 * or row lock of a file of an earlier build, or an ending), sealed under
 * the current output's key (format.h: an authenticated file's entries all
 * are), in m->resealed; *len becomes its length.
 */
static bool
seal_valueless(ArmdbMerge *m, const ArmdbEntryHeader *hdr, const char **image,
			   uint32 *len, ArmdbError *err)
{
	ArmdbEntryHeader sealed;
	uint32		hsize;

	memcpy(&sealed, hdr, sizeof(sealed));
	sealed.gsn = (hdr->gsn & ~ARMDB_GSN_FLAG_SHORT_HEADER) | ARMDB_GSN_FLAG_ENCRYPTED;
	sealed.value_len = ARMDB_CIPHER_TAG_LEN;
	armdb_entry_choose_header(&sealed);
	hsize = armdb_entry_header_size(sealed.gsn);
	if (!resealed_room(m, hsize + ARMDB_CIPHER_TAG_LEN, err) ||
		!armdb_cipher_seal_entry(m->out_key, &sealed, NULL, m->resealed + hsize,
								 err))
		return false;
	armdb_entry_seal(&sealed, m->resealed + hsize);
	memcpy(m->resealed, &sealed, hsize);
	*image = m->resealed;
	*len = hsize + ARMDB_CIPHER_TAG_LEN;
	return true;
}

/*
 * Append one whole entry image (header + value) to the outputs: e says
 * where it was, and its length there; ending: it is an ending the merge
 * made (append_ending()), not an entry of the input.
 */
static bool
output_append(ArmdbMerge *m, const ArmdbEntryInfo *e, const char *image,
			  bool ending, ArmdbError *err)
{
	ArmdbEntryInfo moved = *e;
	bool		valueless = e->len == armdb_entry_header_size(e->gsn);
	bool		add_tag = m->key_id != 0 && m->authenticated && valueless &&
		!(e->gsn & ARMDB_GSN_FLAG_ENCRYPTED);
	uint64		done = 0;

	if (m->out_fd < 0 ||
		(m->out_end > ARMDB_FILE_HEADER_SIZE &&
		 armdb_should_rotate(m->out_end,
							 e->len + (add_tag ? ARMDB_CIPHER_TAG_LEN : 0),
							 m->max_file_size)))
	{
		if (m->out_fd >= 0 && !output_close(m, err))
			return false;
		if (!output_open(m, err))
			return false;
	}
	if (e->gsn & ARMDB_GSN_FLAG_ENCRYPTED)
	{
		ArmdbEntryHeader hdr;

		if (armdb_entry_parse(image, e->len, &hdr) != ARMDB_PARSE_OK ||
			!reseal_entry(m, e, &hdr, image, &image, err))
			return false;
	}
	else if ((m->in_encrypted || m->key_id != 0) && !valueless &&
			 armdb_gsn_is_version(e->gsn))
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "entry at offset %u of data file %06u in \"%s\" is a version of an encrypted table that is not encrypted",
						   e->offset, e->file_id, m->dir);
	else if (m->in_authenticated && !ending)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "entry at offset %u of data file %06u in \"%s\" is not authenticated, but its file is",
						   e->offset, e->file_id, m->dir);
	else if (add_tag)
	{
		ArmdbEntryHeader hdr;

		if (armdb_entry_parse(image, e->len, &hdr) != ARMDB_PARSE_OK ||
			!seal_valueless(m, &hdr, &image, &moved.len, err))
			return false;
		moved.gsn |= ARMDB_GSN_FLAG_ENCRYPTED;
		moved.gsn = (moved.gsn & ~ARMDB_GSN_FLAG_SHORT_HEADER) |
			(((const ArmdbEntryHeader *) image)->gsn & ARMDB_GSN_FLAG_SHORT_HEADER);
	}
	if (!note_move(m, &moved, err))
		return false;

	/* copy through the buffer, writing out whole blocks as it fills */
	while (done < moved.len)
	{
		uint64		used = m->out_end - m->out_buf_start;
		uint64		n = Min(moved.len - done, m->out_buf.size - used);

		memcpy(m->out_buf.data + used, image + done, n);
		m->out_end += n;
		done += n;
		if (m->out_end - m->out_buf_start == m->out_buf.size &&
			!output_write_out(m, false, err))
			return false;
	}
	m->bytes_written += moved.len;
	return true;
}

static bool input_corrupt(ArmdbMerge *m, uint32 file_id, uint64 off,
						  const char *what, ArmdbError *err);

/*
 * Keep only the ending of a version entry: a tombstone of its prev_slot
 * with its gsn and xid (see ArmdbMergeKeep).  info becomes the tombstone's.
 */
static bool
append_ending(ArmdbMerge *m, ArmdbEntryInfo *info, const char *image,
			  ArmdbError *err)
{
	ArmdbEntryHeader hdr;

	if (!armdb_gsn_is_version(info->gsn) || info->prev_slot == ARMDB_INVALID_SLOT)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "entry at offset %u of data file %06u ends no version",
						   info->offset, info->file_id);
	/* the ending is made of the version's header: authenticate it first */
	if (info->gsn & ARMDB_GSN_FLAG_ENCRYPTED)
	{
		bool		opened;

		if (!m->in_encrypted)
			return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							   "entry at offset %u of data file %06u in \"%s\" is encrypted, but its file is not",
							   info->offset, info->file_id, m->dir);
		if (armdb_entry_parse(image, info->len, &hdr) != ARMDB_PARSE_OK)
			return input_corrupt(m, info->file_id, info->offset,
								 "an entry with a bad checksum", err);
		if (!resealed_room(m, hdr.value_len, err))
			return false;
		opened = open_input_entry(m, info, &hdr, image, m->resealed, err);
		explicit_bzero(m->resealed, hdr.value_len - ARMDB_CIPHER_TAG_LEN);
		if (!opened)
			return false;
	}
	else if (m->in_authenticated || (m->in_encrypted && info->len > armdb_entry_header_size(info->gsn)))
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "entry at offset %u of data file %06u in \"%s\" is not sealed, but its file is encrypted",
						   info->offset, info->file_id, m->dir);
	memset(&hdr, 0, sizeof(hdr));
	hdr.value_len = 0;
	hdr.gsn = (info->gsn & ARMDB_GSN_MAX) | ARMDB_GSN_FLAG_TOMBSTONE;
	hdr.xid = info->xid;
	hdr.slot = info->prev_slot;
	hdr.root_slot = info->prev_slot;
	hdr.prev_slot = ARMDB_INVALID_SLOT;
	armdb_entry_seal(&hdr, NULL);

	info->gsn = hdr.gsn | (info->gsn & (ARMDB_GSN_FLAG_FROZEN | ARMDB_GSN_FLAG_ABORTED));
	info->slot = hdr.slot;
	info->root_slot = hdr.root_slot;
	info->prev_slot = hdr.prev_slot;
	info->len = (uint32) armdb_entry_size(hdr.gsn, 0);
	return output_append(m, info, (const char *) &hdr, true, err);
}

/* ----------------
 * Inputs
 * ----------------
 */

/*
 * Make [off, off + len) of the input available in buf (re-reading from
 * the block below off); *image points at off.
 */
static bool
input_window(ArmdbMerge *m, int fd, ArmdbAlignedBuf *buf, uint64 *buf_off,
			 size_t *buf_len, uint64 off, uint64 len, uint64 file_size,
			 const char **image, ArmdbError *err)
{
	uint64		from;
	uint64		want;
	size_t		nread;

	if (off >= *buf_off && off + len <= *buf_off + *buf_len)
	{
		*image = buf->data + (off - *buf_off);
		return true;
	}
	from = ARMDB_BLOCK_FLOOR(off);
	want = ARMDB_BLOCK_CEIL(Max(off + len - from, MERGE_CHUNK_SIZE));
	if (want > buf->size)
	{
		armdb_aligned_free(buf);
		if (!armdb_aligned_alloc(buf, want, err))
			return false;
	}
	want = Min(want, ARMDB_BLOCK_CEIL(file_size - from));
	if (!armdb_io_pread(m->io, fd, buf->data, want, (off_t) from, &nread, err))
		return false;
	m->bytes_read += nread;
	*buf_off = from;
	*buf_len = nread;
	if (off + len > from + nread)
		*image = NULL;			/* the file ends inside */
	else
		*image = buf->data + (off - from);
	return true;
}

static bool
input_corrupt(ArmdbMerge *m, uint32 file_id, uint64 off, const char *what,
			  ArmdbError *err)
{
	return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
					   "merge stopped: %s at offset %llu of data file %06u in \"%s\"",
					   what, (unsigned long long) off, file_id, m->dir);
}

/* What the input's hint file says of its entries' fates. */
typedef struct HintFates
{
	uint32	   *offsets;		/* ascending */
	uint64	   *flags;			/* ARMDB_GSN_FLAG_FROZEN / _ABORTED */
	uint32		n;
	uint32		cap;
	uint32		pos;			/* next to match */
} HintFates;

static bool
collect_fate(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	HintFates  *hf = arg;
	uint64		flags = e->gsn & (ARMDB_GSN_FLAG_FROZEN | ARMDB_GSN_FLAG_ABORTED);

	if (flags == 0)
		return true;
	if (hf->n == hf->cap)
	{
		uint32		cap = Max(1024, hf->cap * 2);
		uint32	   *offsets = armdb_alloc(err, sizeof(uint32) * cap, "hint fates");
		uint64	   *fl = armdb_alloc(err, sizeof(uint64) * cap, "hint fates");

		if (offsets == NULL || fl == NULL)
			return false;
		if (hf->n > 0)
		{
			memcpy(offsets, hf->offsets, sizeof(uint32) * hf->n);
			memcpy(fl, hf->flags, sizeof(uint64) * hf->n);
			pfree(hf->offsets);
			pfree(hf->flags);
		}
		hf->offsets = offsets;
		hf->flags = fl;
		hf->cap = cap;
	}
	hf->offsets[hf->n] = e->offset;
	hf->flags[hf->n] = flags;
	hf->n++;
	return true;
}

/*
 * The fates an input's hint file recorded (VACUUM freezes them there, and
 * relfrozenxid may then pass their xids, so clog may no longer know them):
 * the keep callback must see them.  No hint, or a bad one: no fates.
 */
static void
load_fates(ArmdbMerge *m, uint32 file_id, uint64 file_size, HintFates *hf)
{
	ArmdbError	ignore;
	ArmdbFileAuth auth = {&armdb_keyring, m->storage_id, m->shard_no, true};

	/* an encrypted input's hint counts only with its MAC */
	memset(hf, 0, sizeof(*hf));
	if (!armdb_hint_load(m->io, m->dir, file_id, file_size,
						 m->in_encrypted ? &auth : NULL, collect_fate, hf,
						 &ignore))
		hf->n = 0;
}

static uint64
fate_of(HintFates *hf, uint32 offset)
{
	while (hf->pos < hf->n && hf->offsets[hf->pos] < offset)
		hf->pos++;
	return hf->pos < hf->n && hf->offsets[hf->pos] == offset ?
		hf->flags[hf->pos] : 0;
}

/* Copy the kept entries of one input. */
static bool
merge_input(ArmdbMerge *m, uint32 file_id, ArmdbAlignedBuf *buf,
			ArmdbError *err)
{
	HintFates	hf;
	char		path[MAXPGPATH];
	uint64		file_size;
	uint64		buf_off = 0;
	size_t		buf_len = 0;
	uint64		off = ARMDB_FILE_HEADER_SIZE;
	const char *image;
	int			fd;
	bool		ok;

	armdb_file_path(path, m->dir, file_id, ARMDB_FILE_DATA);
	fd = armdb_file_open(path, O_RDONLY, m->direct_io, NULL, err);
	if (fd < 0)
		return false;
	ok = armdb_file_size(fd, path, &file_size, err) &&
		input_window(m, fd, buf, &buf_off, &buf_len, 0, ARMDB_FILE_HEADER_SIZE,
					 file_size, &image, err);
	if (ok && image == NULL)
		ok = input_corrupt(m, file_id, 0, "a short file header", err);
	if (ok)
		ok = armdb_file_header_check(image, ARMDB_FILE_HEADER_SIZE, file_id, err);
	m->in_encrypted = false;
	m->in_authenticated = false;
	if (ok && (((const ArmdbFileHeader *) image)->flags & ARMDB_FILE_FLAG_ENCRYPTED))
	{
		ArmdbFileHeader fh;

		memcpy(&fh, image, sizeof(fh));
		if (fh.shard != m->shard_no)
			ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							 "data file %06u of \"%s\" says it belongs to shard %u",
							 file_id, m->dir, fh.shard);
		else
			ok = armdb_cipher_file_key(&armdb_keyring, fh.key_id, fh.salt,
									   fh.shard, file_id, m->storage_id,
									   (fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED) != 0,
									   m->in_key, err);
		m->in_encrypted = ok;
		m->in_authenticated = ok && (fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED);
	}
	/* an encrypted table's files are all encrypted: not one to seal anew */
	else if (ok && m->key_id != 0)
		ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						 "data file %06u of encrypted table \"%s\" is not encrypted",
						 file_id, m->dir);
	memset(&hf, 0, sizeof(hf));
	if (ok)
		load_fates(m, file_id, file_size, &hf);

	while (ok && off + ARMDB_ENTRY_SHORT_HEADER_SIZE <= file_size)
	{
		ArmdbEntryHeader hdr;
		ArmdbEntryInfo info;
		uint64		len;
		uint64		head = Min(ARMDB_ENTRY_HEADER_SIZE, file_size - off);
		ArmdbMergeKeep keep = ARMDB_MERGE_DROP;

		ok = input_window(m, fd, buf, &buf_off, &buf_len, off, head,
						  file_size, &image, err);
		if (!ok || image == NULL)
			break;				/* no room for a header: end */
		if (armdb_all_zero(image, head))
			break;				/* padding: the clean end */
		/* at least the length and gsn (head >= ARMDB_ENTRY_PREFIX_SIZE) */
		(void) armdb_entry_parse(image, head, &hdr);
		len = armdb_entry_size(hdr.gsn, hdr.value_len);
		if (hdr.value_len > ARMDB_MAX_VALUE_LEN || off + len > file_size)
		{
			ok = input_corrupt(m, file_id, off, "an entry with an impossible length", err);
			break;
		}
		ok = input_window(m, fd, buf, &buf_off, &buf_len, off, len, file_size,
						  &image, err);
		if (!ok)
			break;
		if (image == NULL || armdb_entry_parse(image, len, &hdr) != ARMDB_PARSE_OK)
		{
			ok = input_corrupt(m, file_id, off, "an entry with a bad checksum", err);
			break;
		}
		info.gsn = hdr.gsn | fate_of(&hf, (uint32) off);
		info.xid = hdr.xid;
		info.slot = hdr.slot;
		info.root_slot = hdr.root_slot;
		info.prev_slot = hdr.prev_slot;
		info.file_id = file_id;
		info.offset = (uint32) off;
		info.len = (uint32) len;
		m->entries_read++;
		ok = m->keep(m->arg, &info, &keep, err);
		/* the caller may only add what a hint records of the fate */
		if (ok && keep != ARMDB_MERGE_DROP &&
			(info.gsn & ~(ARMDB_GSN_FLAG_FROZEN | ARMDB_GSN_FLAG_ABORTED)) != hdr.gsn)
			ok = armdb_error(err, ARMDB_ERR_INVALID, 0,
							 "merge keep callback changed entry %llu",
							 (unsigned long long) off);
		else if (ok && keep == ARMDB_MERGE_KEEP)
			ok = output_append(m, &info, image, false, err);
		else if (ok && keep == ARMDB_MERGE_KEEP_ENDING)
			ok = append_ending(m, &info, image, err);
		off += len;
		if (ok && m->progress != NULL)
			ok = m->progress(m->arg, m->bytes_read, m->bytes_written, err);
	}
	armdb_file_close(fd);
	if (hf.offsets)
		pfree(hf.offsets);
	if (hf.flags)
		pfree(hf.flags);
	if (!ok && err->code != ARMDB_ERR_CORRUPT)
		armdb_error_context(err, "could not merge \"%s\"", path);
	return ok;
}

bool
armdb_merge_copy(ArmdbMerge *m, ArmdbError *err)
{
	ArmdbAlignedBuf inbuf = {NULL, 0, NULL};
	bool		ok;

	m->out_fd = -1;
	m->noutputs = 0;
	m->nmoves = 0;
	m->manifest_id = 0;
	ok = armdb_aligned_alloc(&m->out_buf, MERGE_CHUNK_SIZE, err) &&
		armdb_aligned_alloc(&inbuf, MERGE_CHUNK_SIZE, err);
	for (int i = 0; ok && i < m->ninputs; i++)
		ok = merge_input(m, m->inputs[i], &inbuf, err);
	if (ok && m->out_fd >= 0)
		ok = output_close(m, err);
	armdb_aligned_free(&inbuf);
	if (!ok)
	{
		ArmdbError	keep = *err;

		armdb_merge_abort(m);
		*err = keep;
	}
	return ok;
}

/* ----------------
 * The manifest
 * ----------------
 *
 *	 ArmdbMergeManifest, ninputs + noutputs uint32 file ids, uint32 CRC32C
 *	 of everything before it.
 */
#define ARMDB_MERGE_MAGIC		0x4d444d52	/* "RMDM" */

typedef struct ArmdbMergeManifest
{
	uint32		magic;
	uint16		version;
	uint16		flags;			/* 0 */
	uint32		shard;
	uint32		manifest_id;
	uint32		ninputs;
	uint32		noutputs;
} ArmdbMergeManifest;

static bool
manifest_write(ArmdbMerge *m, ArmdbError *err)
{
	char		tmp_path[MAXPGPATH];
	char		path[MAXPGPATH];
	size_t		len = sizeof(ArmdbMergeManifest) +
		sizeof(uint32) * (m->ninputs + m->noutputs + 1);
	char	   *image;
	ArmdbMergeManifest mh;
	pg_crc32c	crc;
	bool		ok;

	if (!m->next_file_id(m->arg, &m->manifest_id, err))
		return false;
	image = armdb_alloc(err, len, "merge manifest");
	if (image == NULL)
		return false;
	memset(&mh, 0, sizeof(mh));
	mh.magic = ARMDB_MERGE_MAGIC;
	mh.version = ARMDB_FORMAT_VERSION;
	mh.shard = m->shard_no;
	mh.manifest_id = m->manifest_id;
	mh.ninputs = m->ninputs;
	mh.noutputs = m->noutputs;
	memcpy(image, &mh, sizeof(mh));
	memcpy(image + sizeof(mh), m->inputs, sizeof(uint32) * m->ninputs);
	if (m->noutputs > 0)
		memcpy(image + sizeof(mh) + sizeof(uint32) * m->ninputs, m->outputs,
			   sizeof(uint32) * m->noutputs);
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, image, len - sizeof(uint32));
	FIN_CRC32C(crc);
	memcpy(image + len - sizeof(uint32), &crc, sizeof(uint32));

	armdb_file_path(tmp_path, m->dir, m->manifest_id, ARMDB_FILE_TMP);
	armdb_file_path(path, m->dir, m->manifest_id, ARMDB_FILE_MERGE);
	ok = armdb_write_file_durably(tmp_path, path, m->dir, image, len, err);
	pfree(image);
	return ok;
}

typedef struct ManifestInfo
{
	uint32		manifest_id;
	uint32		ninputs;
	uint32		noutputs;
	uint32		ids[FLEXIBLE_ARRAY_MEMBER];	/* inputs, then outputs */
} ManifestInfo;

static ManifestInfo *
manifest_read(const char *dir, uint32 manifest_id, ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbMergeManifest mh;
	ArmdbIo		sync_io = {ARMDB_IO_SYNC, NULL};
	ManifestInfo *mi = NULL;
	uint64		size;
	char	   *image = NULL;
	size_t		nread;
	pg_crc32c	crc;
	pg_crc32c	stored;
	int			fd;
	bool		ok;

	armdb_file_path(path, dir, manifest_id, ARMDB_FILE_MERGE);
	fd = armdb_file_open(path, O_RDONLY, false, NULL, err);
	if (fd < 0)
		return NULL;
	ok = armdb_file_size(fd, path, &size, err);
	if (ok && (size < sizeof(mh) + sizeof(uint32) || size > 64 * 1024))
		ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						 "merge manifest \"%s\" has an impossible size of %llu bytes",
						 path, (unsigned long long) size);
	if (ok)
		ok = (image = armdb_alloc(err, size, "merge manifest")) != NULL;
	if (ok)
		ok = armdb_io_pread(&sync_io, fd, image, size, 0, &nread, err);
	armdb_file_close(fd);
	if (ok)
	{
		memcpy(&mh, image, sizeof(mh));
		memcpy(&stored, image + size - sizeof(uint32), sizeof(uint32));
		INIT_CRC32C(crc);
		COMP_CRC32C(crc, image, size - sizeof(uint32));
		FIN_CRC32C(crc);
		if (nread != size || crc != stored || mh.magic != ARMDB_MERGE_MAGIC ||
			mh.version != ARMDB_FORMAT_VERSION || mh.manifest_id != manifest_id ||
			mh.ninputs > ARMDB_MERGE_MAX_INPUTS || mh.noutputs > MERGE_MAX_OUTPUTS ||
			size != sizeof(mh) + sizeof(uint32) * (mh.ninputs + mh.noutputs + 1))
			ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							 "merge manifest \"%s\" is damaged", path);
	}
	if (ok)
		ok = (mi = armdb_alloc(err, offsetof(ManifestInfo, ids) +
							   sizeof(uint32) * (mh.ninputs + mh.noutputs),
							   "merge manifest")) != NULL;
	if (ok)
	{
		mi->manifest_id = manifest_id;
		mi->ninputs = mh.ninputs;
		mi->noutputs = mh.noutputs;
		memcpy(mi->ids, image + sizeof(mh),
			   sizeof(uint32) * (mh.ninputs + mh.noutputs));
	}
	if (image != NULL)
		pfree(image);
	return ok ? mi : NULL;
}

/*
 * Everything after the commit point, idempotent: rename the outputs still
 * named .tmp (an output already renamed may have a .tmp that is its
 * unfinished hint), unlink the inputs, remove the manifest.
 */
static bool
manifest_complete(const char *dir, const ManifestInfo *mi, ArmdbError *err)
{
	char		path[MAXPGPATH];
	char		tmp_path[MAXPGPATH];

	for (uint32 i = 0; i < mi->noutputs; i++)
	{
		uint32		id = mi->ids[mi->ninputs + i];

		armdb_file_path(path, dir, id, ARMDB_FILE_DATA);
		armdb_file_path(tmp_path, dir, id, ARMDB_FILE_TMP);
		if (access(path, F_OK) == 0)
		{
			if (!armdb_unlink(tmp_path, err))
				return false;
		}
		else if (access(tmp_path, F_OK) == 0)
		{
			if (!armdb_durable_rename(tmp_path, path, dir, err))
				return false;
		}
		else
			return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							   "output %06u of merge %06u in \"%s\" is missing",
							   id, mi->manifest_id, dir);
	}
	for (uint32 i = 0; i < mi->ninputs; i++)
	{
		armdb_file_path(path, dir, mi->ids[i], ARMDB_FILE_DATA);
		if (!armdb_unlink(path, err))
			return false;
		armdb_file_path(path, dir, mi->ids[i], ARMDB_FILE_HINT);
		if (!armdb_unlink(path, err))
			return false;
	}
	if (!armdb_fsync_path(dir, true, err))
		return false;
	armdb_file_path(path, dir, mi->manifest_id, ARMDB_FILE_MERGE);
	return armdb_unlink(path, err) && armdb_fsync_path(dir, true, err);
}

/* The hint of output i, from the moves that went there. */
static bool
output_hint(ArmdbMerge *m, int i, uint64 *move_pos, ArmdbError *err)
{
	uint32		id = m->outputs[i];
	uint64		first = *move_pos;
	uint64		n;
	ArmdbEntryInfo *entries;
	uint8		key[ARMDB_CIPHER_KEY_LEN];
	bool		ok;

	while (*move_pos < m->nmoves && m->moves[*move_pos].new_file_id == id)
		(*move_pos)++;
	if (m->no_hints)
		return true;			/* recovery scans the output instead */
	n = *move_pos - first;
	entries = armdb_alloc(err, sizeof(ArmdbEntryInfo) * Max(n, 1), "hint entries");
	if (entries == NULL)
		return false;
	for (uint64 j = 0; j < n; j++)
	{
		entries[j] = m->moves[first + j].entry;
		entries[j].file_id = id;
		entries[j].offset = m->moves[first + j].new_offset;
	}
	/*
	 * An authenticated output's hint carries a MAC under its key
	 * (format.h).  Without the key (a replay writing the outputs from WAL
	 * on a node without it) the output gets no hint rather than one its
	 * loads would refuse: a hint is only a shortcut.
	 */
	ok = m->key_id == 0 || !m->authenticated ||
		armdb_cipher_file_key(&armdb_keyring, m->key_id, m->salt, m->shard_no,
							  id, m->storage_id, true, key, err);
	if (!ok && err->code == ARMDB_ERR_KEY)
	{
		armdb_error_clear(err);
		pfree(entries);
		return true;
	}
	if (ok)
		ok = armdb_hint_write(m->dir, id, entries, (uint32) n,
							  m->output_sizes[i],
							  m->key_id != 0 && m->authenticated ? key : NULL,
							  err);
	explicit_bzero(key, sizeof(key));
	pfree(entries);
	return ok;
}

bool
armdb_merge_commit(ArmdbMerge *m, ArmdbError *err)
{
	char		path[MAXPGPATH];
	char		tmp_path[MAXPGPATH];
	uint64		move_pos = 0;

	if (!manifest_write(m, err))
	{
		ArmdbError	keep = *err;

		armdb_merge_abort(m);
		*err = keep;
		return false;
	}
	/* committed: a failure from here on is finished by recovery */
	for (int i = 0; i < m->noutputs; i++)
	{
		output_path(tmp_path, m, m->outputs[i]);
		armdb_file_path(path, m->dir, m->outputs[i], ARMDB_FILE_DATA);
		if (rename(tmp_path, path) != 0)
			return armdb_error(err, ARMDB_ERR_IO, errno,
							   "could not rename \"%s\" to \"%s\": %s",
							   tmp_path, path, strerror(errno));
	}
	if (!armdb_fsync_path(m->dir, true, err))
		return false;
	for (int i = 0; i < m->noutputs; i++)
		if (!output_hint(m, i, &move_pos, err))
			return false;
	return true;
}

bool
armdb_merge_finish(ArmdbMerge *m, ArmdbError *err)
{
	ManifestInfo *mi;
	bool		ok;

	mi = manifest_read(m->dir, m->manifest_id, err);
	if (mi == NULL)
		return false;
	ok = manifest_complete(m->dir, mi, err);
	pfree(mi);
	return ok;
}

void
armdb_merge_abort(ArmdbMerge *m)
{
	char		path[MAXPGPATH];
	ArmdbError	ignore;

	if (m->out_fd >= 0)
	{
		armdb_file_close(m->out_fd);
		m->out_fd = -1;
	}
	for (int i = 0; i < m->noutputs; i++)
	{
		output_path(path, m, m->outputs[i]);
		armdb_unlink(path, &ignore);
	}
	if (m->noutputs > 0)
		armdb_fsync_path(m->dir, true, &ignore);
	m->noutputs = 0;
	m->nmoves = 0;
}

void
armdb_merge_free(ArmdbMerge *m)
{
	if (m->outputs)
		pfree(m->outputs);
	if (m->output_sizes)
		pfree(m->output_sizes);
	if (m->moves)
		pfree(m->moves);
	if (m->resealed)
	{
		/* (a value that failed its tag was decrypted into it anyway) */
		explicit_bzero(m->resealed, m->resealed_size);
		pfree(m->resealed);
	}
	m->resealed = NULL;
	m->resealed_size = 0;
	explicit_bzero(m->in_key, sizeof(m->in_key));
	explicit_bzero(m->out_key, sizeof(m->out_key));
	armdb_aligned_free(&m->out_buf);
	m->outputs = NULL;
	m->output_sizes = NULL;
	m->moves = NULL;
	m->outputs_cap = 0;
	m->moves_cap = 0;
}

/* ----------------
 * Recovery
 * ----------------
 */
bool
armdb_merge_recover(const char *dir, uint32 *finished, ArmdbError *err)
{
	DIR		   *d;
	struct dirent *de;
	uint32		ids[64];
	int			n = 0;
	bool		ok = true;

	*finished = 0;
	/* one merge runs at a time: more than a few manifests is damage */
	d = opendir(dir);
	if (d == NULL)
		return armdb_error(err, ARMDB_ERR_IO, errno,
						   "could not open directory \"%s\": %s", dir,
						   strerror(errno));
	while ((errno = 0, de = readdir(d)) != NULL)
	{
		uint32		id;
		ArmdbFileKind kind;

		if (!armdb_file_name_parse(de->d_name, &id, &kind) ||
			kind != ARMDB_FILE_MERGE)
			continue;
		if (n == lengthof(ids))
		{
			ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							 "directory \"%s\" holds more than %d merge manifests",
							 dir, (int) lengthof(ids));
			break;
		}
		ids[n++] = id;
	}
	if (ok && errno != 0)
		ok = armdb_error(err, ARMDB_ERR_IO, errno,
						 "could not read directory \"%s\": %s", dir,
						 strerror(errno));
	closedir(d);

	/* in commit order: a later merge may have merged an earlier's outputs */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--)
		{
			uint32		t = ids[j];

			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	for (int i = 0; ok && i < n; i++)
	{
		ManifestInfo *mi = manifest_read(dir, ids[i], err);

		ok = mi != NULL && manifest_complete(dir, mi, err);
		if (mi != NULL)
			pfree(mi);
		if (ok)
			(*finished)++;
	}
	return ok;
}

bool
armdb_data_file_is_merged(const char *dir, uint32 file_id, bool *merged,
						  ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbFileHeader fh;
	ArmdbIo		sync_io = {ARMDB_IO_SYNC, NULL};
	size_t		nread;
	int			fd;
	bool		ok;

	*merged = false;
	armdb_file_path(path, dir, file_id, ARMDB_FILE_DATA);
	fd = armdb_file_open(path, O_RDONLY, false, NULL, err);
	if (fd < 0)
		return false;
	ok = armdb_io_pread(&sync_io, fd, &fh, sizeof(fh), 0, &nread, err);
	armdb_file_close(fd);
	if (ok && nread == sizeof(fh))
	{
		ArmdbError	ignore;

		/* a short or bad header is the scan's business: not an output */
		if (armdb_file_header_check((const char *) &fh, sizeof(fh), file_id,
									&ignore))
			*merged = (fh.flags & ARMDB_FILE_FLAG_MERGED) != 0;
	}
	return ok;
}
