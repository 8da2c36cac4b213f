/* highlights.c -- highlights: titled collections of one's stories that outlive the 24 hours. */
#include "pub.h"

/* SCAFFOLD: replaced by the highlights implementation. */
static void highlights__todo(mq_reply_t *r)
{
    rpc_problem(r, 501, "not-implemented", "highlights are being built", NULL);
}
void highlights_create(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; highlights__todo(r); }
void highlights_of_user(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; highlights__todo(r); }
void highlights_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r) { (void)p; (void)req; highlights__todo(r); }
