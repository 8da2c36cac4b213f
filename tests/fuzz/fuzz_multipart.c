/* fuzz_multipart.c -- libFuzzer target for the multipart parser of resize-image (untrusted uploads). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/resize-image/multipart.c"

/* What must hold whatever the input; a failure is a crash libFuzzer saves as a reproducer. */
#include "fuzz.h"

/* The input is the request's Content-Type up to the first '\n' (all of it if none), then the
 * body. Both are heap copies of exactly their length (plus the NUL ending the header string) so
 * that AddressSanitizer sees any read past either. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ctlen = nl != NULL ? (size_t)(nl - data) : size;
    size_t len = nl != NULL ? size - ctlen - 1 : 0;

    char *ctype = malloc(ctlen + 1);
    uint8_t *body = malloc(len);
    FUZZ_CHECK(ctype != NULL && (body != NULL || len == 0));
    memcpy(ctype, data, ctlen);
    ctype[ctlen] = '\0';
    if (len > 0)
        memcpy(body, nl + 1, len);

    char boundary[71]; /* the documented minimum */
    if (multipart_boundary(ctype, boundary, sizeof(boundary)) == 0) {
        FUZZ_CHECK(memchr(boundary, '\0', sizeof(boundary)) != NULL);
        FUZZ_CHECK(strlen(boundary) >= 1 && strlen(boundary) <= 70);

        multipart_file_t f;
        memset(&f, 0xa5, sizeof(f)); /* no NUL the parser did not write */
        const char *why = NULL;
        int rc = multipart_find_file(body, len, boundary, "file", &f, &why);
        if (rc == MULTIPART_OK) {
            uintptr_t lo = (uintptr_t)body, hi = lo + len, at = (uintptr_t)f.data;
            FUZZ_CHECK(at >= lo && at <= hi);
            FUZZ_CHECK(f.len <= hi - at);
            FUZZ_CHECK(memchr(f.filename, '\0', sizeof(f.filename)) != NULL);
            FUZZ_CHECK(memchr(f.content_type, '\0', sizeof(f.content_type)) != NULL);
        } else {
            FUZZ_CHECK(rc == MULTIPART_EMALFORMED || rc == MULTIPART_ENOFILE || rc == MULTIPART_ETWO);
            FUZZ_CHECK(why != NULL && why[0] != '\0');
        }
    }
    free(ctype);
    free(body);
    return 0;
}
