#!/usr/bin/env python3
# smtp_sink.py -- a local SMTP server for tests: accepts every message into a directory, with AUTH and injected failures on demand.
"""
usage: smtp_sink.py --listen HOST:PORT --dir DIR [--user U --password P] [--max-size BYTES]

Speaks enough ESMTP (RFC 5321) for libcurl and ordinary clients: EHLO/HELO, AUTH PLAIN and
AUTH LOGIN (RFC 4954; offered only with --user, and then MAIL before AUTH gets 530), MAIL FROM
(SIZE= and BODY= accepted), RCPT TO, DATA with dot-unstuffing, RSET, NOOP, VRFY, HELP, QUIT.
EHLO advertises 8BITMIME, SIZE and ENHANCEDSTATUSCODES. No STARTTLS, no pipelining promise
(commands sent ahead are answered in order anyway).

Each accepted message N (1, 2, ... continuing after the highest number already in DIR) is
written atomically (temporary file, then link to the final name):
  DIR/N.eml   the message as received, dot-unstuffed, CRLF line ends as sent
  DIR/N.json  {"n", "mail_from", "rcpt_to": [...], "at_ms", "auth_user", "helo", "size"}
The .json comes second: a reader that sees N.json finds N.eml complete. The "250 ... queued as
N" answer goes out after both are written.

Fault injection: when DIR/.fail exists, it holds one SMTP reply line to give instead of the
normal one, optionally preceded by option lines:
  times=N        how many times to use it (default 1); the file is removed after the last use
  at=data|rcpt|mail   which answer it replaces (default data: the end of the message, which is
                 then not stored; rcpt: the answer to RCPT TO; mail: the answer to MAIL FROM)
  451 4.3.0 try later      the reply: a 4xx or 5xx code and text
e.g. printf 'times=2\nat=rcpt\n550 5.1.1 no such user\n' >DIR/.fail.tmp && mv DIR/.fail.tmp DIR/.fail
Write it by rename, as above, so the sink never reads half a file. A .fail it cannot parse is
logged and ignored.

One line per stored message (and per injected failure) on stdout. Connections are independent
asyncio tasks; a connection idle for 5 minutes is closed; lines longer than 64 KiB and other
garbage get 500-class answers, never a crash. SIGTERM and SIGINT stop it.
"""
import argparse
import asyncio
import base64
import binascii
import json
import os
import re
import signal
import socket
import sys
import time

IDLE_TIMEOUT = 300.0
LINE_LIMIT = 65536
MAX_RCPT = 100
ADDR_RE = re.compile(rb"^(?:FROM|TO):\s*<([^<>\s]*)>(.*)$", re.IGNORECASE)


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%S") + " smtp-sink: " + msg, flush=True)


class Store:
    """Numbers and writes messages; reads the .fail file."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.next = 1 + max((int(f[:-4]) for f in os.listdir(directory)
                             if f.endswith(".eml") and f[:-4].isdigit()), default=0)

    def _link(self, tmp, final):
        try:
            os.link(tmp, final)
            return True
        except FileExistsError:
            return False

    def save(self, raw, meta):
        """Writes N.eml then N.json; returns N."""
        tmp = os.path.join(self.dir, ".tmp-%d-%d" % (os.getpid(), id(raw)))
        with open(tmp, "wb") as f:
            f.write(raw)
        try:
            while True:  # another sink on the same directory may have taken N
                n = self.next
                self.next += 1
                if self._link(tmp, os.path.join(self.dir, "%d.eml" % n)):
                    break
        finally:
            os.unlink(tmp)
        meta = dict(meta, n=n)
        with open(tmp, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, os.path.join(self.dir, "%d.json" % n))
        return n

    def take_fail(self, stage):
        """The injected reply for stage ("mail", "rcpt", "data"), used up by one, or None."""
        path = os.path.join(self.dir, ".fail")
        try:
            with open(path) as f:
                text = f.read()
        except (FileNotFoundError, IsADirectoryError):
            return None
        except (OSError, UnicodeDecodeError) as e:
            log("ignoring unreadable .fail: %s" % e)
            return None
        times, at, reply = 1, "data", None
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if re.match(r"^[45]\d\d([ -].*)?$", line) and reply is None:
                reply = line[:3] + " " + line[4:] if len(line) > 4 else line[:3]
                continue
            for opt in line.split():
                k, _, v = opt.partition("=")
                if k == "times" and v.isdigit():
                    times = int(v)
                elif k == "at" and v in ("data", "rcpt", "mail"):
                    at = v
                else:
                    log("ignoring .fail: bad option %r" % opt)
                    return None
        if reply is None:
            log("ignoring .fail: no 4xx/5xx reply line")
            return None
        if at != stage:
            return None
        times -= 1
        try:
            if times <= 0:
                os.unlink(path)
            else:
                tmp = path + ".tmp-sink"
                with open(tmp, "w") as f:
                    f.write("times=%d\nat=%s\n%s\n" % (times, at, reply))
                os.replace(tmp, path)
        except OSError as e:
            log("could not update .fail: %s" % e)
        return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in reply)


class Session:
    def __init__(self, server, reader, writer):
        self.srv = server
        self.r = reader
        self.w = writer
        self.peer = writer.get_extra_info("peername")
        self.helo = None
        self.auth_user = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.rcpt = []

    async def send(self, line):
        self.w.write(line.encode("ascii", "replace") + b"\r\n")
        await self.w.drain()

    async def readline(self):
        """One line without its line end; None at EOF; raises ValueError when too long."""
        line = await asyncio.wait_for(self.r.readline(), IDLE_TIMEOUT)
        if not line:
            return None
        if not line.endswith(b"\n"):
            return None  # EOF in the middle of a line
        return line.rstrip(b"\r\n")

    async def run(self):
        try:
            await self.send("220 %s ESMTP smtp-sink" % self.srv.hostname)
            while True:
                try:
                    line = await self.readline()
                except ValueError:
                    await self.send("500 5.5.2 line too long")
                    continue
                if line is None:
                    return
                if not await self.command(line):
                    return
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as e:  # a bug of ours must not end the server
            log("connection %s: %r" % (self.peer, e))
        finally:
            try:
                self.w.close()
            except Exception:
                pass

    async def command(self, line):
        """Answers one command line; False to close the connection."""
        verb, _, arg = line.partition(b" ")
        verb = verb.upper()
        arg = arg.strip()
        if verb in (b"EHLO", b"HELO"):
            if not arg:
                await self.send("501 5.5.4 %s needs a domain" % verb.decode())
                return True
            self.helo = arg.decode("ascii", "replace")
            self.reset()
            if verb == b"HELO":
                await self.send("250 %s" % self.srv.hostname)
                return True
            lines = [self.srv.hostname + " greets " + self.helo[:100],
                     "8BITMIME", "SIZE %d" % self.srv.max_size, "ENHANCEDSTATUSCODES"]
            if self.srv.user is not None:
                lines.append("AUTH PLAIN LOGIN")
            lines.append("HELP")
            for l in lines[:-1]:
                self.w.write(("250-" + l + "\r\n").encode("ascii", "replace"))
            await self.send("250 " + lines[-1])
        elif verb == b"AUTH":
            await self.auth(arg)
        elif verb == b"MAIL":
            await self.mail(arg)
        elif verb == b"RCPT":
            await self.rcpt_to(arg)
        elif verb == b"DATA":
            if arg:
                await self.send("501 5.5.4 DATA takes no argument")
            else:
                await self.data()
        elif verb == b"RSET":
            self.reset()
            await self.send("250 2.0.0 Ok")
        elif verb == b"NOOP":
            await self.send("250 2.0.0 Ok")
        elif verb == b"VRFY":
            await self.send("252 2.5.2 Cannot verify, but will accept")
        elif verb == b"HELP":
            await self.send("214 2.0.0 EHLO HELO AUTH MAIL RCPT DATA RSET NOOP VRFY QUIT")
        elif verb == b"QUIT":
            await self.send("221 2.0.0 Bye")
            return False
        elif not verb:
            await self.send("500 5.5.2 empty command")
        else:
            await self.send("502 5.5.2 command not implemented")
        return True

    async def auth(self, arg):
        if self.srv.user is None:
            await self.send("503 5.5.1 AUTH not offered")
            return
        if self.helo is None:
            await self.send("503 5.5.1 EHLO first")
            return
        if self.auth_user is not None:
            await self.send("503 5.5.1 already authenticated")
            return
        if self.mail_from is not None:
            await self.send("503 5.5.1 AUTH not allowed during a mail transaction")
            return
        mech, _, initial = arg.partition(b" ")
        mech = mech.upper()
        initial = initial.strip()

        async def challenge(text):
            """Sends 334 text, returns the decoded answer, or None (cancelled, bad base64)."""
            await self.send("334 " + text)
            answer = await self.readline()
            if answer is None:
                raise ConnectionError("EOF in AUTH")
            return decode(answer)

        def decode(b64):
            if b64 == b"*":
                return None
            if b64 == b"=":
                return b""
            try:
                return base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                return None

        if mech == b"PLAIN":
            blob = decode(initial) if initial else await challenge("")
            if blob is None:
                await self.send("501 5.5.2 AUTH cancelled or not base64")
                return
            parts = blob.split(b"\0")
            if len(parts) != 3:
                await self.send("501 5.5.2 AUTH PLAIN wants authzid NUL authcid NUL password")
                return
            user, password = parts[1], parts[2]
        elif mech == b"LOGIN":
            user = decode(initial) if initial else await challenge("VXNlcm5hbWU6")
            if user is None:
                await self.send("501 5.5.2 AUTH cancelled or not base64")
                return
            password = await challenge("UGFzc3dvcmQ6")
            if password is None:
                await self.send("501 5.5.2 AUTH cancelled or not base64")
                return
        else:
            await self.send("504 5.5.4 mechanism not supported")
            return
        if user == self.srv.user.encode() and password == self.srv.password.encode():
            self.auth_user = self.srv.user
            await self.send("235 2.7.0 Authentication successful")
        else:
            await self.send("535 5.7.8 Authentication credentials invalid")

    async def mail(self, arg):
        if self.helo is None:
            await self.send("503 5.5.1 EHLO or HELO first")
            return
        if self.srv.user is not None and self.auth_user is None:
            await self.send("530 5.7.0 Authentication required")
            return
        if self.mail_from is not None:
            await self.send("503 5.5.1 nested MAIL command")
            return
        m = ADDR_RE.match(arg)
        if not m or not arg.upper().startswith(b"FROM:"):
            await self.send("501 5.5.4 syntax: MAIL FROM:<address>")
            return
        for param in m.group(2).split():
            k, _, v = param.partition(b"=")
            if k.upper() == b"SIZE" and v.isdigit() and int(v) > self.srv.max_size:
                await self.send("552 5.3.4 message too big")
                return
        fail = self.srv.store.take_fail("mail")
        if fail:
            log("injected at MAIL FROM: " + fail)
            await self.send(fail)
            return
        self.mail_from = m.group(1).decode("utf-8", "replace")
        await self.send("250 2.1.0 Ok")

    async def rcpt_to(self, arg):
        if self.mail_from is None:
            await self.send("503 5.5.1 MAIL first")
            return
        m = ADDR_RE.match(arg)
        if not m or not arg.upper().startswith(b"TO:") or not m.group(1):
            await self.send("501 5.5.4 syntax: RCPT TO:<address>")
            return
        if len(self.rcpt) >= MAX_RCPT:
            await self.send("452 4.5.3 too many recipients")
            return
        fail = self.srv.store.take_fail("rcpt")
        if fail:
            log("injected at RCPT TO:<%s>: %s" % (m.group(1).decode("utf-8", "replace"), fail))
            await self.send(fail)
            return
        self.rcpt.append(m.group(1).decode("utf-8", "replace"))
        await self.send("250 2.1.5 Ok")

    async def data(self):
        if self.mail_from is None:
            await self.send("503 5.5.1 MAIL first")
            return
        if not self.rcpt:
            await self.send("554 5.5.1 no valid recipients")
            return
        await self.send("354 End data with <CR><LF>.<CR><LF>")
        chunks, size, too_big = [], 0, False
        while True:
            try:
                line = await asyncio.wait_for(self.r.readline(), IDLE_TIMEOUT)
            except ValueError:  # a line beyond the limit: drop it, remember
                too_big = True
                continue
            if not line or not line.endswith(b"\n"):
                raise ConnectionError("EOF in DATA")
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size > self.srv.max_size:
                too_big = True
            if not too_big:
                chunks.append(line)
        mail_from, rcpt = self.mail_from, self.rcpt
        self.reset()
        if too_big:
            await self.send("552 5.3.4 message too big")
            return
        fail = self.srv.store.take_fail("data")
        if fail:
            log("injected at end of DATA from <%s> to %s: %s" % (mail_from, ",".join(rcpt), fail))
            await self.send(fail)
            return
        raw = b"".join(chunks)
        meta = {"mail_from": mail_from, "rcpt_to": rcpt, "at_ms": int(time.time() * 1000),
                "auth_user": self.auth_user, "helo": self.helo, "size": len(raw)}
        n = self.srv.store.save(raw, meta)
        log("stored %d.eml (%d bytes) from <%s> to %s" % (n, len(raw), mail_from, ",".join(rcpt)))
        await self.send("250 2.0.0 Ok: queued as %d" % n)


class Server:
    def __init__(self, args):
        self.store = Store(args.dir)
        self.user = args.user
        self.password = args.password if args.password is not None else ""
        self.max_size = args.max_size
        self.hostname = socket.gethostname() or "smtp-sink"
        self.sessions = set()

    async def handle(self, reader, writer):
        task = asyncio.current_task()
        self.sessions.add(task)
        try:
            await Session(self, reader, writer).run()
        finally:
            self.sessions.discard(task)


async def main(args):
    host, _, port = args.listen.rpartition(":")
    srv = Server(args)
    server = await asyncio.start_server(srv.handle, host or "127.0.0.1", int(port), limit=LINE_LIMIT,
                                        reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log("listening on %s, messages in %s%s" % (args.listen, args.dir,
                                                ", AUTH as " + args.user if args.user else ""))
    async with server:
        await stop.wait()
    for t in list(srv.sessions):
        t.cancel()
    log("stopped")


def parse_args(argv):
    p = argparse.ArgumentParser(description="a local SMTP server for tests")
    p.add_argument("--listen", required=True, help="HOST:PORT")
    p.add_argument("--dir", required=True, help="where messages go")
    p.add_argument("--user", help="require AUTH as this user")
    p.add_argument("--password", help="the password for --user")
    p.add_argument("--max-size", type=int, default=10 * 1024 * 1024, help="bytes per message")
    a = p.parse_args(argv)
    if a.password is not None and a.user is None:
        p.error("--password needs --user")
    return a


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
