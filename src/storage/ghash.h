/*-------------------------------------------------------------------------
 *
 * ghash.h
 *	  GHASH, the hash of AES-GCM (NIST SP 800-38D, 6.4), in carry-less
 *	  multiplication with aggregated reduction, for cipher.c.
 *
 * Why armdb has its own.  An encrypted entry is one GCM message of about a
 * hundred bytes.  OpenSSL hashes such a message in four calls (additional
 * data, data, the partial blocks between them, the length block), each a
 * chain of dependent multiplications; with the mode's own bookkeeping that
 * is most of the ~110 ns an entry cost, against ~15 ns for its AES blocks.
 * Here a message's blocks are multiplied by the powers of the hash key
 * side by side and reduced once per ARMDB_GHASH_POWERS blocks (the method
 * of Intel's white paper on PCLMULQDQ and GCM), so the hash of a small
 * entry costs about as much as its AES.  AES itself stays OpenSSL's, and
 * the unit tests compare every result with EVP's AES-256-GCM.
 *
 * Only x86-64 CPUs with PCLMULQDQ and SSSE3 run it (armdb_ghash_available);
 * elsewhere cipher.c hashes through OpenSSL's GCM.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_GHASH_H
#define ARMDB_STORAGE_GHASH_H

#include "storage/status.h"

#define ARMDB_GHASH_POWERS	16	/* blocks multiplied side by side */

/* the powers of a hash key H, in the multiplication's byte order */
typedef struct ArmdbGhashKey
{
	uint8		hpow[ARMDB_GHASH_POWERS][16];	/* hpow[i] = H^(i+1) */
} ArmdbGhashKey;

/* Does this CPU run armdb_ghash_*?  (Checked once.) */
extern bool armdb_ghash_available(void);

/* gk for the hash key h (16 bytes: AES of the zero block). */
extern void armdb_ghash_init(ArmdbGhashKey *gk, const uint8 *h);

/*
 * Hash len bytes at data into the state x (16 bytes, GCM's Y: zeros at
 * the start of a message).  A last partial block is padded with zeros, as
 * GHASH pads the additional data and the ciphertext: only the last call
 * for each of them may pass a length that is not a multiple of 16.
 */
extern void armdb_ghash_update(const ArmdbGhashKey *gk, uint8 *x,
							   const uint8 *data, size_t len);

#endif							/* ARMDB_STORAGE_GHASH_H */
