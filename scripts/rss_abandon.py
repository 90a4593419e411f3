#!/usr/bin/env python3
"""RSS after abandoned polling sessions (issue 10): N polling sessions each CONNECT, then leave a
16 KB echo queued and never poll again; the heartbeat reclaims them. Prints the server's RSS at
the start, at the peak and after the sessions are gone, and whether it came back within
max(8 MB, 25% of the growth).

    scripts/rss_abandon.py PORT PID [N] [WAIT_S]
"""
import socket, sys, time

port, pid = int(sys.argv[1]), int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
wait = float(sys.argv[4]) if len(sys.argv) > 4 else 6.0

def rss_kb():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"):
            return int(l.split()[1])

def request(method, path, body=b""):
    s = socket.create_connection(("127.0.0.1", port))
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: text/plain;charset=UTF-8\r\n"
    s.sendall(head.encode() + b"\r\n" + body)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return data.split(b"\r\n\r\n", 1)[1]

payload = b'42["echo","' + b"x" * 16384 + b'"]'
r0 = rss_kb()
for i in range(n):
    body = request("GET", "/socket.io/?EIO=4&transport=polling")
    sid = body[9:33].decode()
    q = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    request("POST", q, b"40")
    request("GET", q)
    request("POST", q, payload)
peak = rss_kb()
time.sleep(wait)
after = rss_kb()
growth = peak - r0
limit = max(8 * 1024, growth // 4)
print(f"sessions {n}: RSS start {r0/1024:.1f} MB, peak {peak/1024:.1f} MB (+{growth/1024:.1f}), "
      f"after {wait:.0f} s {after/1024:.1f} MB (+{(after-r0)/1024:.1f}; limit +{limit/1024:.1f}) "
      f"-> {'OK' if after - r0 <= limit else 'NOT BACK'}")
