/* pub.h -- what the files of the publication daemon share: its context, projections, counts,
 * caption parsing, feed, stories, outbox recovery and the RPC handlers. */
#ifndef PUB_H
#define PUB_H

#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>

#include "cursor/cursor.h"
#include "db/db.h"
#include "mq/mq.h"
#include "outbox/outbox.h"
#include "rpc/rpc.h"
#include "svc/svc.h"

/* ================================================================ configuration and context */

typedef struct {
    svc_conf_t svc;
    char *mongo_uri;
    char *cursor_secret;
    long rpc_timeout_ms;
    long outbox_recover_after_ms, outbox_poll_ms;
    long feed_fanout_max_followers, feed_max_items, feed_fanout_batch, feed_backfill, feed_trim_every;
    long feed_fanout_workers;
    long story_ttl_ms, story_purge_interval_ms;
} pub_conf_t;

typedef struct {
    const pub_conf_t *conf;
    db_t *db;
    cursor_key_t cursor;
    outbox_t *outbox;
    mq_rpc_client_t *rpc; /* calls to resize-image (media.get) and auth (auth.users_get) */
    struct fanout *fanout; /* the consumers of publication.fanout (fanout.c) */
} pub_t;

#define PUB_ID_LEN 24         /* ObjectId hex: posts and comments */
#define PUB_CAPTION_MAX 2200  /* characters */
#define PUB_COMMENT_MAX 1000  /* characters */
#define PUB_MEDIA_MAX 10      /* per post */
#define PUB_TAGS_MAX 30       /* per post */
#define PUB_TAG_MAX_CHARS 100 /* a longer run is not a tag */
#define PUB_MENTIONS_MAX 20   /* per post */
#define PUB_USERNAME_MAX 30

/* 1 if s is 24 lower-case hex digits (the shape of our post and comment ids). */
int pub_id_valid(const char *s);

/* ================================================================ caption text (text.c) */

/* The hashtags of a caption: NFKC-normalised, case-folded, distinct, in order of first
 * appearance, at most PUB_TAGS_MAX. Returns a new array of strings (caller frees). */
cJSON *text_hashtags(const char *caption);
/* The @mentioned usernames of a caption, lower-cased, distinct, in order, at most
 * PUB_MENTIONS_MAX (whether they exist is the caller's business). New array of strings. */
cJSON *text_mentions(const char *caption);
/* A path's tag (with or without a leading '#') normalised as text_hashtags does; 0, or -1 if it
 * is not a tag. */
int text_tag_normalize(const char *in, char *out, size_t outlen);
/* 1 if s has a character that is not white space. */
int text_has_content(const char *s);

/* ================================================================ users and the graph (users.c) */

/* Calls method of service with body (borrowed) and waits up to PUBLICATION_RPC_TIMEOUT: the
 * reply's status with its parsed body in *out (caller frees; may be NULL), or -1 (no answer, or
 * a 200 without a JSON object). Any thread. */
int pub_rpc(pub_t *p, const char *service, const char *method, const cJSON *body, const char *request_id,
            cJSON **out);

/* 1 if user_id's account was deleted (user.deleted seen), 0 if not, -1. */
int users_gone(pub_t *p, const char *user_id);
/* The Author JSON {id, username, name, avatar} of user_id from the projection: 1 found (*out set,
 * caller frees), 0 unknown or deleted, -1 database error. */
int users_author(pub_t *p, const char *user_id, cJSON **out);
/* The caller's projection, fetched from auth (auth.users_get) and stored when the projection
 * does not have it yet: 1 known (*author set if author != NULL), 0 the account is gone (answered
 * 401), -1 answered 503. */
int users_caller(pub_t *p, const mq_message_t *req, mq_reply_t *r, cJSON **author);
/* The user id of username (lower-cased by the caller): 1 (id copied), 0 unknown, -1. */
int users_by_name(pub_t *p, const char *username, char id[64]);
/* 1 if x blocks y or y blocks x, 0 if neither, -1 on a database error. NULL x: 0. */
int users_hidden(pub_t *p, const char *x, const char *y);

/* The user of the path parameter {username}, visible to the caller: 1 (id copied), else answers
 * 404 (unknown, or in a block relation with the caller) or 503 and returns 0 or -1. */
int users_from_path(pub_t *p, const mq_message_t *req, mq_reply_t *r, char id[64]);

/* A set of user ids (block sets, following lists). */
typedef struct {
    char **ids;
    size_t n;
} pub_ids_t;
/* The users in a block relation with one caller (either direction), for filtering lists. */
typedef pub_ids_t pub_blockset_t;
/* Loads the set of caller (NULL: empty). 0 or -1. */
int users_blockset(pub_t *p, const char *caller, pub_blockset_t *out);
int users_blockset_has(const pub_blockset_t *b, const char *user_id);
void users_blockset_free(pub_blockset_t *b);

/* Author JSONs of one request, looked up once each. */
typedef struct pub_authors pub_authors_t;
pub_authors_t *users_authors_new(pub_t *p);
/* Borrowed (until users_authors_free) Author of user_id, NULL if unknown or gone; *err set to 1
 * on a database error. */
const cJSON *users_authors_get(pub_authors_t *a, const char *user_id, int *err);
void users_authors_free(pub_authors_t *a);

/* Event consumer of publication.events: user.*, follow.*, block.*. */
mq_disposition_t users_on_event(mq_t *mq, const mq_message_t *msg, void *ud);

/* ================================================================ graph buckets (graph.c) */

/* The ids of the users user follows (following) or that follow it (followers), from their
 * bucket documents: 0 (out filled, empty when none; free with users_blockset_free) or -1. */
int graph_following(pub_t *p, const char *user, pub_ids_t *out);
int graph_followers(pub_t *p, const char *user, pub_ids_t *out);
/* 1 if the edge from -> to of coll ("follows", "blocks") is on, 0 if not, -1. */
int graph_edge_on(pub_t *p, const char *coll, const char *from, const char *to);
/* 1 if from follows to (its edge is on), 0 if not, -1. */
int graph_follows(pub_t *p, const char *from, const char *to);
/* Brings the buckets and the follower's timeline in line with the follows edge from -> to after
 * it changed (follow: backfill; unfollow: its posts leave the timeline), until the edge read
 * after the write agrees with what was written. 0 or -1. */
int graph_follow_sync(pub_t *p, const char *from, const char *to);
/* After a block between a and b: each one's posts leave the other's timeline. 0 or -1. */
int graph_block_sync(pub_t *p, const char *a, const char *b);
/* Everything of a deleted account in the buckets: its own, and its id in others'. 0 or -1. */
int graph_user_gone(pub_t *p, const char *user_id);

/* ================================================================ counts (counts.c) */

/* Recounts the likes (and, for a post, the comments) of target from the stored documents and
 * writes them to its counts document, again until a second count agrees: exact whichever copies
 * race (README, Store). is_post: 1 for a post, 0 for a comment. 0 or -1. */
int counts_sync(pub_t *p, const char *target, int is_post);
/* The stored counts of target (zeros when none). 0 or -1. */
int counts_get(pub_t *p, const char *target, long *likes, long *comments);

/* ================================================================ posts (posts.c) */

/* Loads post id into out: 1, 0 absent, -1. */
int posts_load(pub_t *p, const char *id, bson_t *out);
/* Loads the post of the path parameter {id} visible to the caller; answers 404 (absent, bad id,
 * hidden by a block) or 503 otherwise. Returns 1 when loaded. */
int posts_visible(pub_t *p, const mq_message_t *req, mq_reply_t *r, bson_t *out);
/* The Post JSON for caller (may be NULL); NULL with *err = 1 on a database error, NULL with
 * *err = 0 when its author is gone. */
cJSON *posts_json(pub_t *p, pub_authors_t *authors, const bson_t *post, const char *caller, int *err);
/* Deletes a post with its comments and likes and publishes post.deleted (outbox). 1 deleted,
 * 0 was not there, -1 database error. */
int posts_delete(pub_t *p, const bson_t *post, const char *request_id);
/* What follows a post's deletion (comments, likes, counts); safe to repeat. 0 or -1. */
int posts_cascade(pub_t *p, const char *post_id);

/* The media of media_ids (strings), fetched from resize-image, in the order given, as posts and
 * stories keep them ({id, width, height, blurhash?, variants}); they must be the caller's.
 * Answers 422 (field: errors member of an unknown id), 403 or 503 and returns NULL otherwise. */
cJSON *posts_media(pub_t *p, const mq_message_t *req, mq_reply_t *r, const cJSON *media_ids, const char *field);

/* ================================================================ feed (feed.c, fanout.c) */

/* Adds post_id (by author) to the timelines of users (n of them) in one bulk write; trims about
 * one in FEED_TRIM_EVERY of them. 0 or -1. */
int feed_add(pub_t *p, const char *post_id, const char *author, const char *const *users, size_t n);
/* Removes post_id (by author) from the timelines of users in one bulk write. 0 or -1. */
int feed_remove(pub_t *p, const char *post_id, const char *author, const char *const *users, size_t n);
/* Removes every entry of author from user's timeline. 0 or -1. */
int feed_remove_author(pub_t *p, const char *user, const char *author);
/* Adds author's newest FEED_BACKFILL fanned-out posts to user's timeline. 0 or -1. */
int feed_backfill(pub_t *p, const char *user, const char *author);
/* A new post of author: into its recent document and its own timeline. 0 or -1. */
int feed_post_created(pub_t *p, const char *post_id, const char *author);
/* A post of author not fanned out (too many followers): merged into its followers' pages at read
 * time. 0 or -1. */
int feed_post_merged(pub_t *p, const char *post_id, const char *author);
/* A deleted post leaves its author's recent and own timeline; *was_merged says whether it was a
 * merged post (then no follower's timeline has it). 0 or -1. */
int feed_post_deleted(pub_t *p, const char *post_id, const char *author, int *was_merged);
/* Everything of a deleted account in the feed documents: its timeline and recent posts. 0 or -1. */
int feed_user_gone(pub_t *p, const char *user_id);

/* Starts FEED_FANOUT_WORKERS consumers of publication.fanout (each with its own connection) and
 * the story purge. 0 or -1. */
int fanout_start(pub_t *p);
/* Stops them: each finishes the message in hand. */
void fanout_stop(pub_t *p);

/* ================================================================ stories (stories.c, highlights.c) */

/* Deletes the stories that expired (and their place in user_stories). Any thread; safe to run
 * in several copies at once. 0 or -1. */
int stories_purge(pub_t *p);
/* Everything of a deleted account: its stories, seen marks and highlights. 0 or -1. */
int stories_user_gone(pub_t *p, const char *user_id);

/* ================================================================ comments and likes */

/* Loads the comment of the path parameter {id} and its post, both visible to the caller (neither
 * author in a block relation with the caller); answers 404 or 503 otherwise. 1 when loaded. */
int comments_visible(pub_t *p, const mq_message_t *req, mq_reply_t *r, bson_t *c, bson_t *post);
/* What follows a comment's deletion (its replies when top-level, the likes of each, the post's
 * count); fills reply_ids (may be NULL) with the replies deleted. 0 or -1. */
int comments_cascade(pub_t *p, const char *comment_id, const char *post_id, cJSON *reply_ids);
/* Removes every like and comment of a deleted account, recounting what they counted in. 0 or -1. */
int comments_likes_of_user_gone(pub_t *p, const char *user_id);
/* 1 if user_id likes target, 0 if not, -1. */
int likes_has(pub_t *p, const char *target, const char *user_id);
/* Deletes every like of target (a post's or a comment's). 0 or -1. */
int likes_delete_of(pub_t *p, const char *target);

/* ================================================================ lists (lists.c) */

/* ?limit= (default 20, 1..100) and ?cursor= (a payload {l: list, k: key} of this list); answers
 * 422/400 and returns -1 on bad input. after gets the key, "" for the first page. */
int lists_page_args(pub_t *p, const mq_message_t *req, mq_reply_t *r, const char *list, long *limit,
                    char *after, size_t afterlen);
/* One page of a list: documents of coll matching filter, ordered by the string member key
 * (ascending or descending), after the key after ("" from the start). A document whose member
 * owner (the user it is by) is missing or in hidden (may be NULL) is left out; render makes the
 * item of the others (NULL to leave it out too: its author gone; *err = 1 on a database error). */
typedef struct {
    const char *coll;
    const bson_t *filter;
    const char *key;
    int descending;
    const char *after;
    long limit;
    const char *owner;
    const pub_blockset_t *hidden;
    cJSON *(*render)(const bson_t *doc, void *ud, int *err);
    void *ud;
} lists_walk_t;
/* Adds up to limit items to items; *next_key (malloc'd) is where the next page starts, or NULL
 * at the end of the list. 0 or -1 (database error). */
int lists_walk(pub_t *p, const lists_walk_t *w, cJSON *items, char **next_key);
/* What the render of a list gets as ud: the caller (NULL: anonymous), the users in a block
 * relation with it (left out of lists), and the authors looked up so far. */
typedef struct {
    pub_t *p;
    const char *caller;
    pub_blockset_t blocks;
    pub_authors_t *authors;
} lists_ctx_t;
/* Answers 200 {items, next_cursor} with one page of w for the caller (w->ud is set to its
 * lists_ctx_t, w->hidden to the caller's block set), or 503. */
void lists_answer(pub_t *p, const mq_message_t *req, mq_reply_t *r, const char *list, lists_walk_t *w);
/* Adds next_cursor to o: for a page of list ending at key, or null (key NULL: the last page). */
void lists_add_next(pub_t *p, cJSON *o, const char *list, const char *key);

/* ================================================================ outbox recovery (recover.c) */

outbox_verdict_t pub_outbox_recover(void *ud, const bson_t *doc, char **body);

/* ================================================================ handlers */

typedef void (*pub_handler_fn)(pub_t *p, const mq_message_t *req, mq_reply_t *r);

void posts_create(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void posts_get(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void posts_update(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void posts_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void posts_of_user(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void posts_of_tag(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void comments_list(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void comments_create(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void comments_get(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void comments_update(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void comments_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void likes_post_like(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void likes_post_unlike(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void likes_comment_like(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void likes_comment_unlike(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void likes_post_likers(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void feed_get(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void stories_create(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void stories_feed(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void stories_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void stories_mark_seen(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void stories_of_user(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void highlights_create(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void highlights_of_user(pub_t *p, const mq_message_t *req, mq_reply_t *r);
void highlights_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r);

#endif
