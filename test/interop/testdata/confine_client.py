"""A confined user with Python's ftplib (FTP_TLS, PROT P) through the gateway.

Usage: confine_client.py SPEC.json. SPEC names host, port, user, password.
It works inside /ftplib (PWD, MKD, CWD, STOR, REST+STOR, REST+RETR, NLST,
LIST, RNFR/RNTO with an absolute target), then tries every escape and
expects 550 for each, with the session still in "/". Any difference is
printed and the exit status is 1.
"""

import ftplib
import io
import json
import os
import ssl
import sys

spec = json.load(open(sys.argv[1]))
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx, timeout=30)
f.connect(spec["host"], spec["port"])
f.login(spec["user"], spec["password"])
f.prot_p()

check(f.pwd() == "/", "PWD is / (got %r)" % f.pwd())
made = f.mkd("ftplib")
check(made == "/ftplib", "MKD ftplib answers /ftplib (got %r)" % made)
resp = f.cwd("ftplib")
check("part" not in resp, "the CWD reply names no root: %r" % resp)
check(f.pwd() == "/ftplib", "PWD after CWD")
data = os.urandom(300000)
name = "créé.csv"
f.storbinary("STOR " + name, io.BytesIO(data[:100000]))
f.storbinary("STOR " + name, io.BytesIO(data[100000:]), rest=100000)
got = bytearray()
f.retrbinary("RETR " + name, got.extend)
check(bytes(got) == data, "upload, resumed upload and download of %s" % name)
got = bytearray()
f.retrbinary("RETR " + name, got.extend, rest=120000)
check(bytes(got) == data[120000:], "resumed download")
check(f.size(name) == len(data), "SIZE")
f.rename(name, "/ftplib/renamed.csv")
names = f.nlst()
check(any(n.endswith("renamed.csv") for n in names), "NLST after rename: %r" % names)
check(not any("part" in n for n in names), "NLST names no root: %r" % names)
lines = []
f.retrlines("LIST", lines.append)
check(any("renamed.csv" in l for l in lines), "LIST: %r" % lines)
names = f.nlst("/ftplib")
check(not any("part" in n for n in names), "NLST /ftplib names no root: %r" % names)
f.cwd("/")

# Escapes: each must be refused with 550 and leave the session in "/".
f.encoding = "latin-1"  # to send bytes that are not UTF-8
plain = [
    "CWD ..", "CDUP", "XCUP", "CWD /../..", "CWD ../..", "MKD a/../../b", "MKD ../b",
    "DELE ../outside.txt", "SIZE ../outside.txt", "SIZE /../outside.txt",
    "MDTM ../outside.txt", "MDTM 20200101000000 ../outside.txt", "RMD ../part",
    "RNFR ../outside.txt", "CWD ..\\..", "SIZE ..\\outside.txt",
    "SIZE \xc0\xae\xc0\xae/outside.txt", "CWD \xc0\xaf",
]
for cmd in plain:
    try:
        r = f.sendcmd(cmd)
        check(False, "%r: %r" % (cmd, r))
    except ftplib.error_perm as e:
        check(str(e).startswith("550"), "%r refused: %s" % (cmd, e))
transfers = [
    "RETR ../outside.txt", "RETR /../outside.txt", "RETR ..\\outside.txt",
    "STOR ../evil.bin", "APPE ../outside.txt", "LIST ..", "NLST ../", "MLSD ..",
]
for cmd in transfers:
    try:
        conn = f.transfercmd(cmd)
        conn.close()
        check(False, "%r: a data transfer started" % cmd)
        f.voidresp()
    except ftplib.error_perm as e:
        check(str(e).startswith("550"), "%r refused: %s" % (cmd, e))
# RNTO out of the root, after an RNFR inside it.
f.sendcmd("RNFR /ftplib/renamed.csv")
try:
    r = f.sendcmd("RNTO ../moved.csv")
    check(False, "RNTO ../moved.csv: %r" % r)
except ftplib.error_perm as e:
    check(str(e).startswith("550"), "RNTO ../moved.csv refused: %s" % e)
# A NUL in the line: refused (as a bad line or a bad path).
try:
    r = f.sendcmd("SIZE a\x00../../outside.txt")
    check(False, "NUL: %r" % r)
except ftplib.error_perm as e:
    check(str(e)[:3] in ("500", "550"), "NUL refused: %s" % e)
f.encoding = "utf-8"
check(f.pwd() == "/", "PWD still / after the escapes (got %r)" % f.pwd())
f.quit()
if failures:
    print("%d failures" % len(failures))
    sys.exit(1)
