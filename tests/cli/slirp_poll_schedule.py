"""Plays vmlab to the real slirp helper (build/vmlab-slirp) over the stream of
devices/net/slirp_proto.h and prints when the helper asks to look at its host sockets after
a guest frame: the software CPU's polling schedule, a function of vmlab's clock alone.
The guest frame is a UDP datagram to 10.0.2.2:PORT, which (restrict=off) opens a host
socket to 127.0.0.1:PORT, a socket this script holds and never answers from.
Prints one line: "looks US US ..." (microseconds after the frame, until the looks are 1 ms
apart or past 3 ms). usage: /usr/bin/python3 slirp_poll_schedule.py HELPER"""
import os
import socket
import subprocess
import sys

from slirp_play import CONFIG, FRAME, POLL, Stream, udp_frame

T0 = 1_000_000                          # the frame's time on vmlab's clock, ns


def main():
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    helper = subprocess.Popen([sys.argv[1], "--parent", str(os.getpid())],
                              preexec_fn=lambda: os.dup2(theirs.fileno(), 3), pass_fds=(3,))
    theirs.close()
    ours.settimeout(10)
    ask = Stream(ours).ask

    try:
        ask(CONFIG, 0, payload=b"net=user,restrict=off")
        due = ask(FRAME, T0, arg=1, payload=udp_frame(mute.getsockname()[1], b"vmlab poll schedule"))
        looks, last = [], T0
        while due < (1 << 63) and due - T0 <= 3_000_000 and due - last < 1_000_000:
            looks.append(due - T0)
            last, due = due, ask(POLL, due)
        print("looks " + " ".join(str(x // 1000) for x in looks))
    finally:
        ours.close()
        helper.wait(timeout=10)


if __name__ == "__main__":
    main()
