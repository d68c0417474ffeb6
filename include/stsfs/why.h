/* The one way errors travel: a negative errno returned, a reason written. */
#ifndef STSFS_WHY_H
#define STSFS_WHY_H

#define STSFS_WHY_LEN 256

/* Formats the reason into why (STSFS_WHY_LEN bytes; may be NULL) and returns
 * err, which must be a negative errno. */
__attribute__((format(printf, 3, 4)))
int why_set(char *why, int err, const char *fmt, ...);

#endif
