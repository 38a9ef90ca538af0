/* rill — version of the headers and of the linked library. */
#ifndef RILL_VERSION_H
#define RILL_VERSION_H

#define RILL_VERSION_MAJOR 0
#define RILL_VERSION_MINOR 2
#define RILL_VERSION_PATCH 0
#define RILL_VERSION_STRING "0.2.0"
/* One integer that compares in release order: 0xMMmmpp. */
#define RILL_VERSION_HEX \
    ((RILL_VERSION_MAJOR << 16) | (RILL_VERSION_MINOR << 8) | RILL_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually linked, as RILL_VERSION_HEX was when it
 * was built: compare with RILL_VERSION_HEX to detect a header/library mismatch.
 * Thread-safe; no allocation. */
unsigned rill_version(void);

/* The same as a static string ("0.2.0"). Never NULL, never freed. */
const char *rill_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
