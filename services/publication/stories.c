/* stories.c -- stories: 24-hour media of a user for its followers, seen marks, the stories feed. */
#include "pub.h"

/* SCAFFOLD: replaced by the stories implementation. */
static void stories__todo(mq_reply_t *r)
{
    rpc_problem(r, 501, "not-implemented", "stories are being built", NULL);
}
void stories_create(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; stories__todo(r); }
void stories_feed(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; stories__todo(r); }
void stories_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; stories__todo(r); }
void stories_mark_seen(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; stories__todo(r); }
void stories_of_user(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; stories__todo(r); }
int stories_purge(pub_t *p) { (void)p; return 0; }
int stories_user_gone(pub_t *p, const char *user_id) { (void)p; (void)user_id; return 0; }
