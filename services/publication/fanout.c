/* fanout.c -- the consumers of publication.fanout: post.created and post.deleted split into batches. */
#include "pub.h"

/* SCAFFOLD */
int fanout_start(pub_t *p) { (void)p; return 0; }
void fanout_stop(pub_t *p) { (void)p; }
