#!/usr/bin/env python3
"""tests/unit/smtpsink.py - a scriptable SMTP server for test_rptrelay.

Listens on 127.0.0.1, two ephemeral ports: one plain with STARTTLS, one
with implicit TLS (smtps). Prints "PORTS <plain> <smtps>" on stdout once
both listen. Speaks EHLO/HELO, STARTTLS, AUTH PLAIN and LOGIN, MAIL,
RCPT, DATA (dot-unstuffed), RSET, NOOP, QUIT.

What it does is scripted by OUTDIR/mode, read at each new connection:
space-separated words
  tag=NAME        files are OUTDIR/NAME.log (commands, secrets masked),
                  NAME.eml (the message as received, unstuffed) and
                  NAME.env (tls, auth user, from, rcpts; one block a mail)
  nostarttls      STARTTLS neither offered nor accepted
  plainauth       AUTH offered before TLS too
  mechs=A,B       AUTH mechanisms offered (default PLAIN,LOGIN)
  refuse=A,B      RCPT of these addresses: 550
  data451         DATA: 451
  eod451 eod554   the reply after the message
  drop=STAGE      close without a reply: greet, mail, rcpt, data, eod
  sleep=STAGE:S   sleep S seconds before replying at STAGE
It exits when its parent goes away, or when killed.
"""
import argparse
import base64
import os
import socketserver
import ssl
import sys
import threading
import time

LINE_MAX = 1 << 20


class Drop(Exception):
    pass


class Mode:
    def __init__(self, text):
        self.tag = "untagged"
        self.flags = set()
        self.mechs = ["PLAIN", "LOGIN"]
        self.refuse = set()
        self.drop = None
        self.sleep = {}
        for word in text.split():
            key, _, val = word.partition("=")
            if key == "tag":
                self.tag = val
            elif key == "mechs":
                self.mechs = [m.upper() for m in val.split(",") if m]
            elif key == "refuse":
                self.refuse = {a.lower() for a in val.split(",") if a}
            elif key == "drop":
                self.drop = val
            elif key == "sleep":
                stage, _, secs = val.partition(":")
                self.sleep[stage] = float(secs)
            else:
                self.flags.add(key)


class Session:
    def __init__(self, server, sock, tls):
        self.srv = server
        self.sock = sock
        self.tls = tls
        self.buf = bytearray()
        self.mode = Mode(server.read_mode())
        self.auth_user = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.rcpts = []

    def path(self, ext):
        return os.path.join(self.srv.outdir, self.mode.tag + ext)

    def log(self, text):
        with self.srv.lock, open(self.path(".log"), "a") as f:
            f.write(text + "\n")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self):
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl + 1])
                del self.buf[:nl + 1]
                return line
            if len(self.buf) > LINE_MAX:
                raise Drop("line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Drop("eof")
            self.buf += chunk

    def stage(self, name):
        if name in self.mode.sleep:
            time.sleep(self.mode.sleep[name])
        if self.mode.drop == name:
            self.log("[drop at %s]" % name)
            raise Drop(name)

    def run(self):
        self.log("[connect%s]" % (" tls" if self.tls else ""))
        self.stage("greet")
        self.send("220 localhost ESMTP smtpsink")
        while True:
            line = self.readline().rstrip(b"\r\n").decode("utf-8", "replace")
            verb = line.split(" ", 1)[0].upper()
            self.log("AUTH %s ***" % " ".join(line.split()[1:2])
                     if verb == "AUTH" else line)
            handler = getattr(self, "do_" + verb.lower(), None)
            if verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            if handler is None:
                self.send("500 5.5.2 Unknown command")
            else:
                handler(line[len(verb):].strip())

    def offers_tls(self):
        return not self.tls and "nostarttls" not in self.mode.flags

    def do_ehlo(self, arg):
        ext = ["localhost greets " + arg, "8BITMIME", "SIZE 10240000"]
        if self.offers_tls():
            ext.append("STARTTLS")
        if self.tls or "plainauth" in self.mode.flags:
            ext.append("AUTH " + " ".join(self.mode.mechs))
        ext.append("ENHANCEDSTATUSCODES")
        for e in ext[:-1]:
            self.send("250-" + e)
        self.send("250 " + ext[-1])
        self.reset()

    def do_helo(self, arg):
        self.send("250 localhost")
        self.reset()

    def do_noop(self, arg):
        self.send("250 2.0.0 Ok")

    def do_rset(self, arg):
        self.reset()
        self.send("250 2.0.0 Ok")

    def do_starttls(self, arg):
        if not self.offers_tls():
            self.send("502 5.5.1 STARTTLS not available")
            return
        self.send("220 2.0.0 Ready to start TLS")
        if self.buf:
            self.log("[bytes after STARTTLS dropped]")
            self.buf.clear()
        try:
            self.sock = self.srv.ctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.log("[tls failed: %s]" % e)
            raise Drop("tls")
        self.tls = True
        self.auth_user = None
        self.reset()
        self.log("[tls]")

    def b64(self, text):
        try:
            return base64.b64decode(text, validate=True).decode("utf-8")
        except ValueError:
            return None

    def challenge(self, prompt):
        self.send("334 " + base64.b64encode(prompt).decode())
        line = self.readline().rstrip(b"\r\n").decode("utf-8", "replace")
        self.log("***")
        return None if line == "*" else self.b64(line)

    def do_auth(self, arg):
        words = arg.split()
        mech = words[0].upper() if words else ""
        if not (self.tls or "plainauth" in self.mode.flags) or \
                mech not in self.mode.mechs:
            self.send("504 5.5.4 Mechanism not available")
            return
        if self.auth_user is not None:
            self.send("503 5.5.1 Already authenticated")
            return
        if mech == "PLAIN":
            blob = self.b64(words[1]) if len(words) > 1 else \
                self.challenge(b"")
            parts = blob.split("\0") if blob is not None else []
            user, pw = (parts[1], parts[2]) if len(parts) == 3 else (None,
                                                                      None)
        else:
            user = self.b64(words[1]) if len(words) > 1 else \
                self.challenge(b"Username:")
            pw = self.challenge(b"Password:") if user is not None else None
        if user is None or pw is None:
            self.send("501 5.5.2 Cannot decode the response")
        elif (user, pw) == (self.srv.user, self.srv.password):
            self.auth_user = user
            self.log("[auth %s %s]" % (mech, user))
            self.send("235 2.7.0 Authentication successful")
        else:
            self.log("[auth failed %s %s]" % (mech, user))
            self.send("535 5.7.8 Error: authentication failed")

    def address(self, arg, prefix):
        if not arg.upper().startswith(prefix):
            return None
        rest = arg[len(prefix):].strip()
        if not rest.startswith("<") or ">" not in rest:
            return None
        return rest[1:rest.index(">")]

    def do_mail(self, arg):
        self.stage("mail")
        addr = self.address(arg, "FROM:")
        if addr is None:
            self.send("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        self.mail_from = addr
        self.rcpts = []
        self.send("250 2.1.0 Ok")

    def do_rcpt(self, arg):
        self.stage("rcpt")
        addr = self.address(arg, "TO:")
        if self.mail_from is None:
            self.send("503 5.5.1 Error: need MAIL command")
        elif addr is None:
            self.send("501 5.5.4 Syntax: RCPT TO:<address>")
        elif addr.lower() in self.mode.refuse:
            self.send("550 5.1.1 <%s>: Recipient address rejected: "
                      "User unknown in local recipient table" % addr)
        else:
            self.rcpts.append(addr)
            self.send("250 2.1.5 Ok")

    def read_data(self):
        out = bytearray()
        while True:
            line = self.readline()
            if line == b".\r\n":
                return bytes(out)
            out += line[1:] if line.startswith(b".") else line

    def do_data(self, arg):
        self.stage("data")
        if not self.rcpts:
            self.send("503 5.5.1 Error: need RCPT command")
            return
        if "data451" in self.mode.flags:
            self.send("451 4.3.0 Error: queue file write error")
            return
        self.send("354 End data with <CR><LF>.<CR><LF>")
        msg = self.read_data()
        self.stage("eod")
        if "eod451" in self.mode.flags:
            self.send("451 4.3.0 Error: try again later")
        elif "eod554" in self.mode.flags:
            self.send("554 5.7.1 Error: message content rejected")
        else:
            self.store(msg)
            self.send("250 2.0.0 Ok: queued as SINK%d" % len(msg))
        self.reset()

    def store(self, msg):
        with self.srv.lock:
            with open(self.path(".eml"), "wb") as f:
                f.write(msg)
            with open(self.path(".env"), "a") as f:
                f.write("tls=%s\nauth=%s\nfrom=%s\n" % (
                    "yes" if self.tls else "no", self.auth_user or "-",
                    self.mail_from))
                for r in self.rcpts:
                    f.write("rcpt=%s\n" % r)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        srv = self.server
        try:
            if srv.implicit_tls:
                sock = srv.ctx.wrap_socket(sock, server_side=True)
            s = Session(srv, sock, srv.implicit_tls)
        except (ssl.SSLError, OSError) as e:
            with srv.lock, open(os.path.join(srv.outdir, "errors.log"),
                                "a") as f:
                f.write("implicit tls failed: %s\n" % e)
            return
        try:
            s.run()
        except (Drop, OSError, ssl.SSLError) as e:
            s.log("[closed: %s]" % (e or type(e).__name__))
        finally:
            try:
                sock.close()
                s.sock.close()
            except OSError:
                pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def read_mode(self):
        try:
            with open(os.path.join(self.outdir, "mode")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--user", default="relayuser")
    ap.add_argument("--password", default="")
    a = ap.parse_args()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    lock = threading.Lock()
    servers = []
    for implicit in (False, True):
        s = Server(("127.0.0.1", 0), Handler)
        s.outdir, s.ctx, s.lock = a.dir, ctx, lock
        s.user, s.password, s.implicit_tls = a.user, a.password, implicit
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
    print("PORTS %d %d" % tuple(s.server_address[1] for s in servers),
          flush=True)
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
