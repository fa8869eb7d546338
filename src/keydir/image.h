/*-------------------------------------------------------------------------
 *
 * image.h
 *	  Key directory images: a large table's keydir saved at a clean
 *	  shutdown and read back at its first load (see image.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_KEYDIR_IMAGE_H
#define ARMDB_KEYDIR_IMAGE_H

#include "keydir/keydir.h"

/* in the relation's directory, beside armdb.meta */
#define ARMDB_IMAGE_FILE		"keydir.image"

/*
 * Smaller keydirs get no image: their files load about as fast, and a
 * server with thousands of small tables would write thousands of files at
 * every shutdown.  32 pages hold 9,312 row versions.
 */
#define ARMDB_IMAGE_MIN_PAGES	32

/*
 * At a clean shutdown, once every other process that may use a keydir has
 * exited (the sweep launcher calls it on SIGTERM): save the keydir of every
 * loaded table that has one worth saving.  Never raises an ERROR; what it
 * could not save is logged and loads from its files at the next start.
 * False, having done nothing, if the server is not shutting down.
 */
extern bool armdb_keydir_images_write(void);

/*
 * At the postmaster's start: the token of the images this start may read
 * back, if the start follows the clean shutdown that wrote them with no
 * recovery (control is pg_control as the start found it; NULL outside the
 * postmaster).  The token's file is removed whatever it says.
 */
struct ControlFileData;
extern void armdb_keydir_images_startup(const struct ControlFileData *control,
										bool crc_ok);

/*
 * Take rnode's image away (it is removed durably, used or not, so that it
 * never outlives a change of the files), and if use, restore kd from it;
 * the caller holds kd->lock exclusively and kd is empty.  Returns true if
 * kd was restored; false leaves kd empty again (an image that does not
 * match the files, or is damaged, is logged), and the caller loads the
 * files.  ERROR only when armdb.memory is full.
 */
extern bool armdb_keydir_image_load(ArmdbRelKeydir *kd,
									RelFileNodeBackend rnode,
									const ArmdbStoreSettings *settings,
									bool use);

#endif							/* ARMDB_KEYDIR_IMAGE_H */
