#!/usr/bin/env python3
"""A stand-in for systemd's notify socket and file descriptor store, enough
to test `systemctl restart` of stsfs where systemd does not run
(tests/integration/test_fdstore.sh; docs/systemd.md).

  fake-service-manager.py --control FIFO --events FILE -- COMMAND...

Starts COMMAND with NOTIFY_SOCKET (and FDSTORE=2, as systemd v254 and later
do for FileDescriptorStoreMax=2) and keeps what it sends: FDSTORE=1 with
FDNAME=, FDSTOREREMOVE=1, READY=1. Commands, one a line on FIFO:

  start    start COMMAND again; stored fds are passed as 3, 4, ... with
           LISTEN_FDS, LISTEN_PID (the new process's own) and LISTEN_FDNAMES
  term     SIGTERM to the main process, wait for its end (systemd's stop,
           KillMode=mixed or the first half of a restart)
  termall  SIGTERM to the main process's children, then to it (the
           default KillMode=control-group), and wait
  drop     close every stored fd (what systemd does when a stop is not a
           restart)
  quit     term, drop, exit

Each event is a line appended to FILE:
  started PID | exited PID STATUS | notify PID MESSAGE (newlines as spaces)
  stored NAME | removed NAME | dropped NAME | ready NAME,NAME,... (the store)
"""
import argparse
import os
import signal
import socket
import sys
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--control", required=True)
p.add_argument("--events", required=True)
p.add_argument("command", nargs="+")
args = p.parse_args()

lock = threading.Lock()
store = []  # [name, fd], in the order stored
main_pid = None
sockdir = os.path.dirname(os.path.abspath(args.events))
sockpath = os.path.join(sockdir, "notify.sock")
try:
    os.unlink(sockpath)
except FileNotFoundError:
    pass
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
sock.bind(sockpath)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)


def event(line):
    with open(args.events, "a") as f:
        f.write(line + "\n")


def receive():
    fdsize = socket.CMSG_SPACE(16 * 4)
    credsize = socket.CMSG_SPACE(12)
    while True:
        data, anc, _, _ = sock.recvmsg(4096, fdsize + credsize)
        fds, pid = [], None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(payload) // 4
                fds += list(int.from_bytes(payload[i * 4:i * 4 + 4], sys.byteorder) for i in range(n))
            elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = int.from_bytes(payload[0:4], sys.byteorder)
        for fd in fds:
            os.set_inheritable(fd, False)
        text = data.decode(errors="replace")
        fields = dict(l.split("=", 1) for l in text.split("\n") if "=" in l)
        event("notify %s %s fds=%d" % (pid, " ".join(text.split()), len(fds)))
        with lock:
            name = fields.get("FDNAME", "stored")
            if fields.get("FDSTORE") == "1":
                for fd in fds:
                    # systemd drops a duplicate of what it holds; by name here
                    for old in [e for e in store if e[0] == name]:
                        same = os.fstat(old[1]) == os.fstat(fd)
                        os.close(old[1])
                        store.remove(old)
                        if not same:
                            event("replaced %s" % name)
                    store.append([name, fd])
                    event("stored %s" % name)
                fds = []
            if fields.get("FDSTOREREMOVE") == "1":
                for old in [e for e in store if e[0] == name]:
                    os.close(old[1])
                    store.remove(old)
                    event("removed %s" % name)
            if fields.get("READY") == "1":
                event("ready %s" % ",".join(e[0] for e in store))
        for fd in fds:
            os.close(fd)


def start():
    global main_pid
    with lock:
        passed = list(store)
    env = dict(os.environ, NOTIFY_SOCKET=sockpath, FDSTORE="2")
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(k, None)
    if passed:
        env["LISTEN_FDS"] = str(len(passed))
        env["LISTEN_FDNAMES"] = ":".join(e[0] for e in passed)
    pid = os.fork()
    if pid == 0:
        try:
            # Out of the way of 3, 4, ... first, then into place.
            high = [os.dup(e[1]) for e in passed]
            moved = [os.dup2(fd, 100 + i) for i, fd in enumerate(high)]
            for i, fd in enumerate(moved):
                os.dup2(fd, 3 + i, inheritable=True)
            for fd in high + moved:
                os.close(fd)
            if passed:
                env["LISTEN_PID"] = str(os.getpid())
            os.execvpe(args.command[0], args.command, env)
        finally:
            os._exit(127)
    main_pid = pid
    event("started %d" % pid)


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def term(all_processes=False):
    if not main_pid:
        return
    if all_processes:
        for c in children(main_pid):
            os.kill(c, signal.SIGTERM)
    os.kill(main_pid, signal.SIGTERM)
    while main_pid:  # reap() waits for it
        time.sleep(0.02)


def drop():
    with lock:
        for name, fd in store:
            os.close(fd)
            event("dropped %s" % name)
        store.clear()


def reap():
    """The main process may end by itself (an unmount)."""
    global main_pid
    while True:
        time.sleep(0.05)
        pid = main_pid
        if pid:
            r, status = os.waitpid(pid, os.WNOHANG)
            if r == pid and main_pid == pid:
                main_pid = None
                event("exited %d %d" % (pid, os.waitstatus_to_exitcode(status)))


def quit_(*_):
    term()
    drop()
    os._exit(0)


signal.signal(signal.SIGTERM, quit_)
threading.Thread(target=receive, daemon=True).start()
start()
threading.Thread(target=reap, daemon=True).start()
while True:
    with open(args.control) as ctl:
        for line in ctl:
            cmd = line.strip()
            try:
                if cmd == "start":
                    start()
                elif cmd in ("term", "termall"):
                    term(cmd == "termall")
                elif cmd == "drop":
                    drop()
                elif cmd == "quit":
                    quit_()
                event("done %s" % cmd)
            except OSError as e:
                event("error %s: %s" % (cmd, e))
