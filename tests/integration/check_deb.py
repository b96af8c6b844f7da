#!/usr/bin/env python3
"""tests/integration/check_deb.py - the Debian package, built, checked,
installed, run, removed and purged on this machine.

1. The commands of README.md's "Install the Debian package" block (marker
   <!-- test: deb -->) run as written, one at a time, each checked for
   exit status 0, at the top of a copy of the source tree (no build
   directory, no VCS data): they build the package with dpkg-buildpackage
   and install it with apt-get. The package's unit tests are left to make
   check itself (DEB_BUILD_OPTIONS=nocheck).
2. lintian on the .changes (which covers the .deb): no error, no warning;
   its output and the package's files (dpkg -c) are printed as comments.
3. The installed package: programs, man pages, /etc/dmarc-milter.conf a
   conffile equal to contrib's sample but for Socket and Mode (the
   README's safe defaults), accepted by dmarc-milter -n run as the unit's
   user; the system user, /var/lib/dmarc-milter owned by it; the units in
   /lib/systemd/system, dmarc-milter.service and dmarc-report.timer
   enabled; nothing started.
4. The daemon started as systemd would start it (there is no systemd
   here): User=, Group= (with the user's groups), RuntimeDirectory= and
   its mode, and the ExecStart= command, all read from the installed
   unit. The configuration is changed as README.Debian tells the admin
   for a unix socket (Socket unix:/run/dmarc-milter/sock, "adduser
   postfix dmarc-milter"), plus the test's DNS and authserv-id. A private
   Postfix (tests/integration/mta.py, milter_default_action tempfail)
   delivers an aligned message (dmarc=pass) and a spoof of a p=reject
   domain, delivered too since the package runs in Mode monitor. SIGTERM
   stops the milter (exit 0); the runtime directory goes as systemd
   removes it.
5. apt-get remove keeps the configuration, the user and the state
   directory; apt-get purge removes them: afterwards no file whose name
   holds dmarc-milter, dmarc-report or dmarc-check is in /etc, /lib, /run,
   /usr or /var that was not there before, no user or group dmarc-milter
   exists, postfix's groups are as before, /etc/postfix is unchanged, and
   no dmarc-milter process runs.

It runs once per suite: SKIP in a sanitizer build (the package is built
with Debian's flags; the plain pass tests it), SKIP when not root, and
SKIP when this machine already has the package, its user or its files
(the test would remove them). A policy-rc.d keeps the services from
starting on a systemd host. Whatever happens, the package is purged at
the end.

TAP. Environment: srcdir, builddir (make check); KEEP_TMP=1.
Needs: contrib/install-deps.sh deb test.
"""

import hashlib
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402
import mta  # noqa: E402
import check_guide as cg  # noqa: E402

PKG = "dmarc-milter"
USER = "dmarc-milter"
CONF = "/etc/dmarc-milter.conf"
STATE = "/var/lib/dmarc-milter"
UNIT = "/lib/systemd/system/dmarc-milter.service"
PROGRAMS = ("/usr/sbin/dmarc-milter", "/usr/sbin/dmarc-report",
            "/usr/bin/dmarc-check")
MANS = ("man1/dmarc-check.1.gz", "man5/dmarc-milter.conf.5.gz",
        "man8/dmarc-milter.8.gz", "man8/dmarc-report.8.gz")
UNITS = ("dmarc-milter.service", "dmarc-report.service",
         "dmarc-report.timer")
ENABLED = ("multi-user.target.wants/dmarc-milter.service",
           "timers.target.wants/dmarc-report.timer")
# The README's safe defaults (its "Install into Postfix" section).
SAFE = {"Socket": "inet:8894@127.0.0.1", "Mode": "monitor"}
SOCK = "unix:/run/dmarc-milter/sock"   # README.Debian's unix socket
NAMES = re.compile(r"(?<![a-z])dmarc-(milter|report|check)")
TREES = ("/etc", "/lib", "/run", "/usr", "/var")
TOOLS = {"dpkg-buildpackage": "dpkg-dev", "dh": "debhelper",
         "lintian": "lintian", "setpriv": "util-linux",
         "postfix": "postfix", "swaks": "swaks"}
REJ = "reject.example"


def skip(why):
    print("1..0 # SKIP " + why)
    sys.stdout.flush()
    sys.exit(0)


def run(argv, env=None, cwd=None, timeout=600):
    """(exit status, output) of a command."""
    r = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def sanitized(builddir):
    try:
        text = open(os.path.join(builddir, "Makefile")).read()
    except OSError:
        return False
    return re.search(r"^SAN_FLAGS = .*-fsanitize", text, re.M) is not None


def installed():
    rc, out = run(["dpkg-query", "-W", "-f=${Status}", PKG])
    return rc == 0 and "not-installed" not in out and out.strip() != ""


def account(name):
    """The passwd and group entries of a name (None where absent)."""
    try:
        u = pwd.getpwnam(name)
    except KeyError:
        u = None
    try:
        g = grp.getgrnam(name)
    except KeyError:
        g = None
    return u, g


def our_paths():
    """Paths under TREES whose name holds one of the package's names."""
    found = set()
    for top in TREES:
        for d, dirs, files in os.walk(top):
            if d.startswith("/proc") or d.startswith("/var/tmp"):
                continue
            for n in dirs + files:
                if NAMES.search(n):
                    found.add(os.path.join(d, n))
    return found


def tree_hash(top):
    h = hashlib.sha256()
    for d, dirs, files in sorted(os.walk(top)):
        dirs.sort()
        for n in sorted(files):
            p = os.path.join(d, n)
            h.update(p.encode())
            try:
                st = os.lstat(p)
                h.update(("%o %d %d" % (st.st_mode, st.st_uid,
                                        st.st_gid)).encode())
                if stat.S_ISREG(st.st_mode):
                    h.update(open(p, "rb").read())
            except OSError:
                h.update(b"?")
    return h.hexdigest()


def postfix_groups():
    return sorted(g.gr_name for g in grp.getgrall()
                  if "postfix" in g.gr_mem)


def milter_pids():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                exe = os.readlink("/proc/%s/exe" % d)
                if exe.split(" (deleted)")[0] == PROGRAMS[0]:
                    out.append(int(d))
            except OSError:
                pass
    return out


def apt_env(tmp):
    """Non-interactive apt; it waits for a dpkg lock another test holds."""
    conf = os.path.join(tmp, "apt.conf")
    with open(conf, "w") as f:
        f.write('DPkg::Lock::Timeout "300";\n')
    e = cg.clean_env()
    e.update(DEBIAN_FRONTEND="noninteractive", APT_CONFIG=conf, LC_ALL="C",
             DEB_BUILD_OPTIONS="nocheck parallel=%d" % (os.cpu_count() or 2))
    return e


class NoStart:
    """/usr/sbin/policy-rc.d refusing every start while the package is
    installed (deb-systemd-invoke obeys it); one already there is kept."""

    PATH = "/usr/sbin/policy-rc.d"

    def __init__(self):
        self.made = False

    def __enter__(self):
        if not os.path.exists(self.PATH):
            with open(self.PATH, "w") as f:
                f.write("#!/bin/sh\n# check_deb.py: no service starts\n"
                        "exit 101\n")
            os.chmod(self.PATH, 0o755)
            self.made = True
        return self

    def __exit__(self, *exc):
        if self.made:
            os.unlink(self.PATH)


# ------------------------------------------------------------ checks

def readme_block(tap, srcdir):
    blocks, _ = cg.parse_doc("README.md",
                             open(os.path.join(srcdir, "README.md")).read())
    mine = [b for b in blocks if b.mode == "deb"]
    tap.ok(len(mine) == 1, "README.md has one <!-- test: deb --> block",
           ["found %d" % len(mine)])
    return mine[0] if mine else None


def build_and_install(tap, t, block, env):
    """The README's commands in a copy of the tree; the .changes."""
    t.make_copy()
    script = os.path.join(t.tmp, "deb-block.sh")
    with open(script, "w") as f:
        f.write(cg.checked_script(block.text))
    t0 = time.monotonic()
    rc, out = run(["sh", script], env=env, cwd=t.copy, timeout=1500)
    tap.ok(rc == 0, "%s: %d command(s), exit 0 (%.0f s)" % (
        block.name(), len(cg.split_commands(block.text)),
        time.monotonic() - t0), ["exit %d" % rc] + cg.tail(out, 40))
    changes = [os.path.join(t.tmp, n) for n in os.listdir(t.tmp)
               if n.startswith(PKG + "_") and n.endswith(".changes")]
    return changes[0] if len(changes) == 1 else None


def lintian(tap, changes):
    if changes is None:
        tap.ok(False, "lintian: one .changes was built")
        return
    rc, out = run(["lintian", "--fail-on", "error,warning", "--info",
                   "--display-level", ">=pedantic", changes])
    tags = [l for l in out.split("\n") if re.match(r"^[EWIPXO]: ", l)]
    tap.ok(rc == 0 and not [l for l in tags if l[0] in "EW"],
           "lintian %s: no error, no warning" % os.path.basename(changes),
           [out[-3000:]])
    tap.diag("lintian: %s" % ("; ".join(tags) or "nothing to say"))
    deb = changes.replace(".changes", ".deb")
    rc, out = run(["dpkg", "-c", deb])
    tap.diag("dpkg -c %s:" % os.path.basename(deb))
    tap.diag(out)


def installed_files(tap, srcdir):
    rc, out = run(["dpkg-query", "-W", "-f=${Status}\n${Conffiles}\n",
                   PKG])
    tap.ok(rc == 0 and out.startswith("install ok installed") and
           re.search(r"^ %s [0-9a-f]{32}$" % re.escape(CONF), out, re.M),
           "%s is installed, %s its conffile" % (PKG, CONF), [out])
    missing = [p for p in PROGRAMS if not os.access(p, os.X_OK)]
    missing += [m for m in MANS if not os.path.exists(
        os.path.join("/usr/share/man", m))]
    missing += [u for u in UNITS if not os.path.exists(
        os.path.join("/lib/systemd/system", u))]
    missing += [e for e in ENABLED if not os.path.islink(
        os.path.join("/etc/systemd/system", e))]
    tap.ok(not missing, "the programs, man pages and units are installed, "
           "dmarc-milter.service and dmarc-report.timer enabled",
           ["missing: %s" % " ".join(missing)])
    conf_is_safe_sample(tap, srcdir)
    u, g = account(USER)
    st = os.stat(STATE) if os.path.isdir(STATE) else None
    tap.ok(u is not None and g is not None and u.pw_uid < 1000 and
           u.pw_gid == g.gr_gid and st is not None and
           st.st_uid == u.pw_uid and st.st_gid == g.gr_gid and
           stat.S_IMODE(st.st_mode) == 0o750,
           "system user and group %s; %s is theirs, mode 0750" % (
               USER, STATE), ["user %r, group %r, %s: %r" % (u, g, STATE,
                                                               st)])
    tap.ok(not milter_pids(), "installing started no dmarc-milter",
           ["running: %r" % milter_pids()])


def conf_is_safe_sample(tap, srcdir):
    """The conffile is contrib's sample with the README's safe defaults
    (and a '# Debian' comment), and dmarc-milter -n accepts it as the
    unit's user."""
    want = []
    for l in open(os.path.join(srcdir, "contrib", "dmarc-milter.conf")):
        name = l.split(" ", 1)[0]
        want.append("%s %s\n" % (name, SAFE[name]) if name in SAFE else l)
    have = [l for l in open(CONF) if not l.startswith("# Debian")]
    diff = [l for l in have if l not in want] + \
        ["(missing) " + l for l in want if l not in have]
    tap.ok(have == want, "%s: contrib's sample with Socket %s and Mode "
           "%s" % (CONF, SAFE["Socket"], SAFE["Mode"]), diff[:10])
    rc, out = as_user([PROGRAMS[0], "-n", "-c", CONF])
    tap.ok(rc == 0 and "configuration is valid" in out,
           "dmarc-milter -n accepts the installed %s (as %s)" % (CONF, USER),
           ["exit %d" % rc, out])


def as_user(argv):
    u, g = account(USER)
    if u is None:
        return 1, "no user " + USER
    return run(["setpriv", "--reuid=%d" % u.pw_uid, "--regid=%d" % g.gr_gid,
                "--init-groups", "--"] + argv)


# ------------------------------------------------------------ the daemon

def unit_service(path):
    """The [Service] settings of a unit file (the last of each name)."""
    out, section = {}, None
    for line in open(path):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and \
                not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


class UnitDaemon:
    """dmarc-milter started the way systemd starts the installed unit."""

    def __init__(self, tmp):
        self.svc = unit_service(UNIT)
        self.proc = None
        self.tmp = tmp
        self.log = os.path.join(tmp, "unit.log")
        self.rundirs = ["/run/" + d for d in
                        self.svc.get("RuntimeDirectory", "").split()]

    def argv(self):
        u = pwd.getpwnam(self.svc["User"])
        g = grp.getgrnam(self.svc["Group"])
        return ["setpriv", "--reuid=%d" % u.pw_uid, "--regid=%d" % g.gr_gid,
                "--init-groups", "--"] + shlex.split(self.svc["ExecStart"])

    def start(self):
        u = pwd.getpwnam(self.svc["User"])
        g = grp.getgrnam(self.svc["Group"])
        mode = int(self.svc.get("RuntimeDirectoryMode", "0755"), 8)
        for d in self.rundirs:
            os.makedirs(d, exist_ok=True)
            os.chown(d, u.pw_uid, g.gr_gid)
            os.chmod(d, mode)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, start_new_session=True, close_fds=True)

    def wait_socket(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return True
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        return False

    def stop(self):
        """SIGTERM to the main process (KillMode=mixed), then what
        systemd does when the unit has stopped: SIGKILL to what is left
        and the runtime directory removed. The exit status."""
        if self.proc is None:
            return None
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(45)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        if rc is None:
            rc = self.proc.wait(5)
        self.proc = None
        for d in self.rundirs:
            shutil.rmtree(d, ignore_errors=True)
        return rc

    def log_tail(self):
        return cg.tail(open(self.log, errors="replace").read()) \
            if os.path.exists(self.log) else []


def zone():
    z = ec.Zone(static=("example.",))
    z.dmarc(REJ, "v=DMARC1; p=reject")
    z.spf(REJ)
    z.a(REJ)
    return z


def admin_changes(tap, tmp, env):
    """What README.Debian tells the admin for a unix socket, and the
    test's DNS: the last setting of an option wins."""
    dns = zone().write(os.path.join(tmp, "unbound.conf"))
    os.chmod(dns, 0o644)
    mta._open_to_others(tmp)
    with open(CONF, "a") as f:
        f.write("# check_deb.py\nSocket %s\nDNSConfig %s\n"
                "AuthservID %s\n" % (SOCK, dns, mta.MX_NAME))
    rc, out = run(["adduser", "--quiet", "postfix", USER], env=env)
    tap.ok(rc == 0 and "postfix" in grp.getgrnam(USER).gr_mem,
           "adduser postfix %s (README.Debian)" % USER, [out])


def message(frm, tag):
    return ec.build_message([
        ("From", frm), ("To", "bob@" + mta.TEST_DOMAIN),
        ("Subject", "package test"), ("Date", "Fri, 15 Feb 2002 16:54:30 "
                                      "-0800"),
        ("Message-ID", "<%s@%s>" % (tag, REJ))])


def our_ar(data):
    return [v for n, v in mta.parse_headers(data)
            if n.lower() == "authentication-results" and
            v.split(";")[0].strip() == mta.MX_NAME]


def mail_through(tap, tmp, daemon):
    """Two messages through a private Postfix and the unit's milter."""
    postfix = mta.PrivatePostfix(tmp, milter_socket=SOCK)
    try:
        postfix.start()
    except mta.HarnessError as e:
        tap.ok(False, "a private Postfix starts", [str(e)])
        return
    try:
        cases = (("pass", ec.GOOD_IP, "dmarc=pass"),
                 ("spoof", ec.BAD_IP, "dmarc=fail"))
        for tag, ip, want in cases:
            rcpt = "%s@%s" % (tag, mta.TEST_DOMAIN)
            reply = mta.send(postfix.port, "alice@" + REJ, rcpt,
                             message("alice@" + REJ, tag), ip, "mx." + REJ)
            try:
                got = postfix.wait_delivered(rcpt)[0] \
                    if reply.code == 250 else b""
            except mta.HarnessError as e:
                got = str(e).encode()
            ar = our_ar(got)
            tap.ok(reply.code == 250 and len(ar) == 1 and
                   re.search(r"\b%s\b" % want, ar[0]),
                   "%s from %s: 250 and delivered, our A-R says %s (Mode "
                   "monitor refuses nothing)" % (tag, ip, want),
                   ["reply %r, A-R %r" % (reply, ar)] +
                   cg.tail(postfix.log_text(), 10) + daemon.log_tail())
    finally:
        postfix.stop()


def listening(tap, d):
    """The unit's socket, and mail through it."""
    path = SOCK.split(":", 1)[1]
    up = d.wait_socket(path)
    st = os.stat(path) if up else None
    tap.ok(up and stat.S_IMODE(st.st_mode) == 0o770 and
           st.st_gid == grp.getgrnam(USER).gr_gid and
           stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o750,
           "the unit's command listens on %s, mode 0770, group %s, in a "
           "0750 RuntimeDirectory" % (path, USER),
           ["socket %r" % (st,)] + d.log_tail())
    if up:
        mail_through(tap, d.tmp, d)


def run_daemon(tap, tmp, env):
    admin_changes(tap, tmp, env)
    d = UnitDaemon(tmp)
    tap.diag("as the unit: %s" % " ".join(d.argv()))
    d.start()
    try:
        listening(tap, d)
    finally:
        rc = d.stop()
    tap.ok(rc == 0, "SIGTERM stops it, exit status 0", ["exit %r" % rc] +
           d.log_tail())
    journal = os.path.join(STATE, "journal")
    st = os.stat(journal) if os.path.exists(journal) else None
    tap.ok(st and st.st_size > 0 and st.st_uid == pwd.getpwnam(USER).pw_uid,
           "the counts went to %s (not empty), written as %s" % (
               journal, USER),
           os.listdir(STATE) if os.path.isdir(STATE) else [])


# ------------------------------------------------------------ removal

def remove_and_purge(tap, env, before):
    rc, out = run(["apt-get", "remove", "-y", PKG], env=env)
    kept = [p for p in (CONF, STATE) if not os.path.exists(p)]
    gone = [p for p in PROGRAMS if os.path.exists(p)]
    tap.ok(rc == 0 and not kept and not gone and account(USER)[0],
           "apt-get remove: programs gone; %s, %s and the user kept" % (
               CONF, STATE), ["exit %d" % rc, "missing: %r" % kept,
                              "left: %r" % gone] + cg.tail(out))
    rc, out = run(["apt-get", "purge", "-y", PKG], env=env)
    tap.ok(rc == 0 and not installed(), "apt-get purge: exit 0, %s not "
           "installed" % PKG, ["exit %d" % rc] + cg.tail(out))
    check_clean(tap, before)


def snapshot():
    return {"paths": our_paths(), "postfix": tree_hash("/etc/postfix"),
            "groups": postfix_groups()}


def check_clean(tap, before):
    after = snapshot()
    left = sorted(after["paths"] - before["paths"])
    u, g = account(USER)
    tap.ok(not left and u is None and g is None and not milter_pids(),
           "after the purge: no file of ours in %s, no user or group %s, "
           "no dmarc-milter running" % (" ".join(TREES), USER),
           ["left: %r" % left, "user %r, group %r" % (u, g),
            "running %r" % milter_pids()])
    tap.ok(after["postfix"] == before["postfix"] and
           after["groups"] == before["groups"],
           "/etc/postfix and postfix's groups are as before",
           ["groups before %r, after %r" % (before["groups"],
                                            after["groups"])])


def leftovers():
    """Why the machine is not a clean one for this test, or None."""
    if installed():
        return "%s is installed here; the test would purge it" % PKG
    u, g = account(USER)
    there = [p for p in (CONF, STATE, "/run/dmarc-milter")
             if os.path.exists(p)]
    if u or g or there:
        return "user/group %s or %s exist here; the test would delete " \
            "them" % (USER, " ".join(there) or "-")
    return None


def preconditions(builddir):
    if os.geteuid() != 0:
        skip("installs a package: needs root")
    if sanitized(builddir):
        skip("the package is built with Debian's flags and tested once, "
             "in the plain pass; this build has sanitizers")
    missing = sorted({p for t, p in TOOLS.items() if not mta.which(t)})
    if missing:
        skip("missing %s (contrib/install-deps.sh deb test)" %
             " ".join(missing))
    why = leftovers()
    if why:
        skip(why)


def main():
    srcdir, builddir = ec.dirs()
    preconditions(builddir)
    mta.install_signal_cleanup()
    tap = ec.Tap()
    wd = ec.Workdir("check_deb.")
    before = snapshot()
    env = apt_env(wd.path)
    try:
        with NoStart():
            block = readme_block(tap, srcdir)
            t = cg.Tester(tap, srcdir, builddir, wd.path)
            changes = build_and_install(tap, t, block, env) if block \
                else None
            lintian(tap, changes)
            if installed():
                installed_files(tap, srcdir)
                run_daemon(tap, wd.path, env)
                remove_and_purge(tap, env, before)
            else:
                tap.ok(False, "%s is installed" % PKG)
    finally:
        if installed():
            run(["apt-get", "purge", "-y", PKG], env=env)
        shutil.rmtree("/run/dmarc-milter", ignore_errors=True)
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
