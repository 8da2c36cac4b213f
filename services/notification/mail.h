/* mail.h -- the welcome e-mail: multipart/alternative (plain text and HTML), sent over SMTP with libcurl. */
#ifndef NOTIFICATION_MAIL_H
#define NOTIFICATION_MAIL_H

#include <stddef.h>

/* Where and how to send. Every string is borrowed for the duration of each call. */
typedef struct {
    const char *url;      /* SMTP_URL: smtp://host:port or smtps://host:port (implicit TLS); a path is
                           * the EHLO domain, as curl does (smtp://mx.example:587/photo.example) */
    const char *from;     /* MAIL_FROM: "Photo <no-reply@photo.example>" or "no-reply@photo.example" */
    const char *user;     /* SMTP_USER; NULL or "" for no AUTH */
    const char *password; /* SMTP_PASSWORD */
    int starttls;         /* smtp:// only. 1: STARTTLS is required, a server without it fails
                           * (CURLUSESSL_ALL). 0: STARTTLS when the server offers it, else plain text
                           * (CURLUSESSL_TRY). With 0 an attacker on the path can strip the offer and
                           * read the password: set 1 whenever user is set and the server is not local. */
    unsigned timeout_ms;  /* the whole transaction, connect included; 0 means 30 s */
    const char *product;  /* product name in the subject and the text, e.g. "Photo" */
} mail_conf_t;

typedef enum { MAIL_SENT = 0, MAIL_RETRY, MAIL_REJECTED } mail_result_t;

/* Checks a configuration once at start: the URL is smtp:// or smtps://, from holds one address
 * with a domain, no string holds CR, LF or other control characters. Returns 0, or -1 with words
 * in err. mail_send_welcome does not repeat these checks' advice: a bad configuration there
 * shows as MAIL_RETRY. */
int mail_conf_check(const mail_conf_t *c, char *err, size_t errlen);

/* Sends the welcome mail for one account: blocking, at most timeout_ms; any thread may call it
 * (each call has its own curl handle and connection). All arguments are borrowed.
 *
 *   to        the recipient, checked first: printable ASCII without spaces, <>, "(),;\ or
 *             quotes, one @ with a local part and a domain, at most 254 bytes; else MAIL_REJECTED
 *             (addresses with UTF-8 need SMTPUTF8, which we do not speak).
 *   username  the account's handle, shown as @username.
 *   name      the display name (user input, 0..64 characters; NULL or "" for none). Control
 *             characters (C0, DEL, C1, U+2028/9) become spaces, bidi overrides are dropped,
 *             invalid UTF-8 becomes U+FFFD, and it is cut at 64 code points. It goes HTML-escaped
 *             into the HTML part and RFC 2047-encoded into the Subject when not plain ASCII, so it
 *             can add no header and no markup. username gets the same treatment.
 *   user_id   the account id, [A-Za-z0-9._-] only (else MAIL_REJECTED): Message-ID is
 *             <welcome.USER_ID@DOMAIN-OF-FROM>, the same at every attempt, so a receiver (or a
 *             test) can recognise a duplicate.
 *
 * The message: From, To, Subject, Date (RFC 5322, UTC), Message-ID, MIME-Version,
 * Auto-Submitted: auto-generated, and a multipart/alternative body of text/plain and text/html,
 * both UTF-8 and quoted-printable.
 *
 * Results, and what the caller does:
 *   MAIL_SENT      the server answered 250 to the end of the message.
 *   MAIL_REJECTED  permanent for this message: drop it (and log err). A bad `to` or user_id; a 5xx
 *                  answer to RCPT TO (no such user, ...), to DATA, or to the end of the message
 *                  (content refused); a 552 to MAIL FROM (too big).
 *   MAIL_RETRY     anything else: try again later. That is every transient failure (cannot
 *                  resolve or connect, TLS handshake, timeout, connection lost, any 4xx answer),
 *                  and also the failures that are the same for every message, because dropping
 *                  would lose every mail while the configuration is wrong: AUTH refused
 *                  (CURLE_LOGIN_DENIED, 535), other 5xx to MAIL FROM (530 authentication
 *                  required, sender refused), a 5xx greeting or HELO, STARTTLS required but not
 *                  offered (CURLE_USE_SSL_FAILED), certificate not trusted, bad URL. The caller
 *                  caps its attempts (or dead-letters) and alerts; err says which it was.
 *                  CURLE_SEND_FAIL_REWIND (curl had to resend a body it cannot rewind) cannot
 *                  happen with our in-memory body; it would be RETRY too.
 * err (errlen bytes, may be 0) gets one line of words in every case, e.g.
 * "RCPT TO refused: 550 5.1.1 no such user" or "sent: 250 2.0.0 Ok: queued as 12". */
mail_result_t mail_send_welcome(const mail_conf_t *c, const char *to, const char *username, const char *name,
                                const char *user_id, char *err, size_t errlen);

/* "sent", "retry" or "rejected". */
const char *mail_result_str(mail_result_t r);

#endif
