/* feed.c -- home timelines: entries written by fanout, follow and deletion, pages read with merge. */
#include "pub.h"

/* SCAFFOLD */
int feed_add(pub_t *p, const char *post_id, const char *author, const char *const *users, size_t n) { (void)p; (void)post_id; (void)author; (void)users; (void)n; return 0; }
int feed_remove(pub_t *p, const char *post_id, const char *author, const char *const *users, size_t n) { (void)p; (void)post_id; (void)author; (void)users; (void)n; return 0; }
int feed_remove_author(pub_t *p, const char *user, const char *author) { (void)p; (void)user; (void)author; return 0; }
int feed_backfill(pub_t *p, const char *user, const char *author) { (void)p; (void)user; (void)author; return 0; }
int feed_post_created(pub_t *p, const char *post_id, const char *author) { (void)p; (void)post_id; (void)author; return 0; }
int feed_user_gone(pub_t *p, const char *user_id) { (void)p; (void)user_id; return 0; }
void feed_get(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; rpc_problem(r, 501, "not-implemented", "feed", NULL); }
