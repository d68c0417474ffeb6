#ifndef STSFS_FSUTIL_H
#define STSFS_FSUTIL_H

/* mkdir -p: 0 or -errno. */
int fs_mkdir_p(const char *path);

#endif
