/*-------------------------------------------------------------------------
 *
 * armdb_vm.h
 *	  The visibility map of armdb tables, for index-only scans (armdb_vm.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_VM_H
#define ARMDB_VM_H

#include "access/xlogreader.h"
#include "storage/buf.h"
#include "utils/relcache.h"

#include "keydir/keydir.h"

extern void armdb_vm_clear(Relation rel, ArmdbRelKeydir *kd, ArmdbPage *page,
						   uint64 pageno);
extern bool armdb_vm_page_all_visible(ArmdbRelKeydir *kd, ArmdbPage *page,
									  uint64 pageno, TransactionId oldest_xmin,
									  TransactionId frozen_before,
									  TransactionId *cutoff);
/* VACUUM, before it makes the map or sets any bit in it */
extern void armdb_vm_will_set(ArmdbRelKeydir *kd);
extern bool armdb_vm_set(Relation rel, ArmdbPage *page, uint64 pageno,
						 TransactionId cutoff, Buffer vmbuf);
extern void armdb_vm_redo_set(XLogReaderState *record);
extern void armdb_vm_redo_clear(XLogReaderState *record);

#endif							/* ARMDB_VM_H */
