/*-------------------------------------------------------------------------
 *
 * armdb_crypt.h
 *	  Encryption at rest: the key command and the settings (armdb_crypt.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_CRYPT_H
#define ARMDB_CRYPT_H

extern char *armdb_encryption_key_command;
extern bool armdb_encrypt_tables;

extern void armdb_crypt_define_gucs(void);
extern void armdb_crypt_load_keys(void);

/*
 * Is a table created now to be encrypted?  ERROR when encryption is set up
 * but the server got no key.
 */
extern bool armdb_encrypt_new_tables(void);

#endif							/* ARMDB_CRYPT_H */
