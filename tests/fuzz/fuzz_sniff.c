/* fuzz_sniff.c -- libFuzzer target for sniff_image, which reads the first bytes of every upload. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/resize-image/sniff.c"

/* What must hold whatever the input; a failure is a crash libFuzzer saves as a reproducer. */
#include "fuzz.h"

/* The input, copied to the heap at exactly its length so AddressSanitizer sees any read past it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size);
    FUZZ_CHECK(copy != NULL || size == 0);
    if (size > 0)
        memcpy(copy, data, size);

    image_format_t f = sniff_image(copy, size);
    FUZZ_CHECK(f == IMAGE_UNKNOWN || f == IMAGE_JPEG || f == IMAGE_PNG || f == IMAGE_WEBP || f == IMAGE_HEIC);
    const char *name = sniff_name(f);
    FUZZ_CHECK(name != NULL && name[0] != '\0');
    FUZZ_CHECK((f == IMAGE_UNKNOWN) == (strcmp(name, "unknown") == 0));
    /* Any value, not only those sniff_image returns. */
    FUZZ_CHECK(sniff_name((image_format_t)(size > 0 ? copy[0] : 0)) != NULL);

    free(copy);
    return 0;
}
