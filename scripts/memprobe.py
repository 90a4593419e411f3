#!/usr/bin/env python3
# Idle memory probe: opens N connections to a running server and prints the RSS growth per
# connection. Usage: scripts/memprobe.py PORT tcp|eio|sio N SERVER_PID
#   tcp: bare TCP connections that send nothing; eio: Engine.IO WebSocket sessions;
#   sio: the same plus a Socket.IO CONNECT to "/".
import socket, sys, time, os, base64
port=int(sys.argv[1]); mode=sys.argv[2]; n=int(sys.argv[3]); pid=int(sys.argv[4])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
r0=rss(); socks=[]
for i in range(n):
    s=socket.create_connection(("127.0.0.1",port))
    if mode!="tcp":
        s.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        d=b""
        while d.count(b"\r\n\r\n")<1 or len(d)<130: d+=s.recv(4096)
        if mode=="sio":
            s.sendall(bytes([0x81,0x82,1,2,3,4])+bytes([ord('4')^1,ord('0')^2]))
    socks.append(s)
time.sleep(1.5)
r1=rss()
print(mode, n, "KB/conn", round((r1-r0)/n,2))
