/* lmdb_errno.h - LMDB's return codes as negative errno values, the error
 * convention of every other module. The one place that knows LMDB's codes
 * for the modules that talk to LMDB (store.c, state.c).
 */
#ifndef NBA_LMDB_ERRNO_H
#define NBA_LMDB_ERRNO_H

/* 0 for MDB_SUCCESS; MDB_NOTFOUND -> -ENOENT, MDB_KEYEXIST -> -EEXIST, a
 * full map or transaction -> -ENOSPC, a full reader table or a resized map
 * -> -EAGAIN, a bad key or value size -> -EINVAL, corruption and version
 * mismatches -> -EIO; system errors (which LMDB returns as positive errno
 * values) are negated. */
int lmdb_errno(int rc);

#endif
