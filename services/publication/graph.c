/* graph.c -- following and followers bucket documents, kept with the follows edges. */
#include "pub.h"

/* SCAFFOLD */
int graph_following(pub_t *p, const char *user, pub_ids_t *out) { (void)p; (void)user; out->ids = NULL; out->n = 0; return 0; }
int graph_followers(pub_t *p, const char *user, pub_ids_t *out) { (void)p; (void)user; out->ids = NULL; out->n = 0; return 0; }
int graph_follows(pub_t *p, const char *from, const char *to) { (void)p; (void)from; (void)to; return 0; }
int graph_follow_sync(pub_t *p, const char *from, const char *to) { (void)p; (void)from; (void)to; return 0; }
int graph_block_sync(pub_t *p, const char *a, const char *b) { (void)p; (void)a; (void)b; return 0; }
int graph_user_gone(pub_t *p, const char *user_id) { (void)p; (void)user_id; return 0; }
