"""Python ftplib client for the ftpsgate interop tests.

Run by the Go harness (any python3 >= 3.8; only the standard library):

    ftplib_client.py SPEC.json

SPEC names the endpoint (host, port, front: explicit|implicit, tls: 1.2|1.3,
data: PASV|EPSV|PORT|EPRT, resume: whether data connections resume the
control connection's TLS session), the account, the cell's directory on the
server and the local files, and the operation set: "basic", "full" or "big".
It prints ftplib's debug transcript (the password masked by ftplib) and one
"ok OP" line per step; a failure is a traceback and exit status 1. The Go
side checks the files on the server's disk and in the local directory.

Stock ftplib sends PASV (EPSV only on IPv6) and PORT (EPRT only on IPv6),
so EPSV and EPRT are forced by overriding makepasv and makeport with
ftplib's own sendeprt/parse229.
"""

import ftplib
import hashlib
import json
import os
import socket
import ssl
import sys


def log(*a):
    print(*a, flush=True)


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ver = ssl.TLSVersion.TLSv1_3 if spec["tls"] == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ver
    ctx.maximum_version = ver

    class Client(ftplib.FTP_TLS):
        def connect(self, host="", port=0, timeout=-999, source_address=None):
            if spec["front"] != "implicit":
                return super().connect(host, port, timeout, source_address)
            # Implicit FTPS: TLS from the first byte, then the greeting.
            self.host, self.port = host, port
            if timeout != -999:
                self.timeout = timeout
            sock = socket.create_connection((host, port), self.timeout)
            self.af = sock.family
            self.sock = self.context.wrap_socket(sock, server_hostname=host)
            self.file = self.sock.makefile("r", encoding=self.encoding)
            self.welcome = self.getresp()
            return self.welcome

        def makepasv(self):
            if spec["data"] == "EPSV":
                return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
            return super().makepasv()

        def makeport(self):
            if spec["data"] != "EPRT":
                return super().makeport()
            sock = socket.create_server(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            self.voidcmd("EPRT |1|127.0.0.1|%d|" % port)
            if self.timeout is not None:
                sock.settimeout(self.timeout)
            return sock

        def ntransfercmd(self, cmd, rest=None):
            if not spec["resume"]:
                return super().ntransfercmd(cmd, rest)
            # The fix ftplib lacks: resume the control session on the data
            # connection (servers with require_ssl_reuse refuse it otherwise).
            conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
            if self._prot_p:
                conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                                session=self.sock.session)
            return conn, size

    ftp = Client(context=ctx, timeout=60)
    ftp.set_debuglevel(1)
    ftp.encoding = "utf-8"
    ftp.connect(spec["host"], spec["port"])
    if spec["front"] == "implicit":
        ftp.login(spec["user"], spec["password"], secure=False)
    else:
        ftp.login(spec["user"], spec["password"])
    ftp.prot_p()
    log("ok login", ftp.sock.version())
    want = "TLSv1.3" if spec["tls"] == "1.3" else "TLSv1.2"
    if ftp.sock.version() != want:
        raise SystemExit("negotiated %s, want %s" % (ftp.sock.version(), want))
    ftp.set_pasv(spec["data"] in ("PASV", "EPSV"))

    ops = {"basic": basic, "full": full, "big": big}[spec["ops"]]
    ops(ftp, spec)
    ftp.quit()
    log("ok quit")


def retr_to(ftp, cmd, path, rest=None):
    with open(path, "wb") as f:
        ftp.retrbinary(cmd, f.write, rest=rest)


def stor_from(ftp, cmd, path, rest=None):
    with open(path, "rb") as f:
        if rest:
            f.seek(rest)
        ftp.storbinary(cmd, f, rest=rest)


def basic(ftp, spec):
    log("ok pwd", ftp.pwd())
    ftp.cwd(spec["dir"])
    ftp.mkd("sub")
    ftp.cwd("sub")
    ftp.cwd("..")
    ftp.rmd("sub")
    log("ok mkd/cwd/rmd")
    stor_from(ftp, "STOR up.bin", spec["src"])
    size = ftp.size("up.bin")
    if size != os.path.getsize(spec["src"]):
        raise SystemExit("SIZE up.bin = %r, want %d" % (size, os.path.getsize(spec["src"])))
    log("ok stor/size")
    retr_to(ftp, "RETR seed.bin", os.path.join(spec["dst"], "seed.bin"))
    names = ftp.nlst()
    if "seed.bin" not in [os.path.basename(n) for n in names]:
        raise SystemExit("NLST lacks seed.bin: %r" % names)
    lines = []
    ftp.retrlines("LIST", lines.append)
    if not any("seed.bin" in l for l in lines):
        raise SystemExit("LIST lacks seed.bin: %r" % lines)
    log("ok retr/nlst/list")


def full(ftp, spec):
    basic(ftp, spec)
    dst = spec["dst"]
    # UTF-8 and spaces in directory and file names.
    d = "dir ü space"
    ftp.mkd(d)
    ftp.cwd(d)
    stor_from(ftp, "STOR file ü space.bin", spec["src"])
    retr_to(ftp, "RETR file ü space.bin", os.path.join(dst, "utf8.bin"))
    ftp.cwd("..")
    log("ok utf8 names")
    # 0-byte file.
    stor_from(ftp, "STOR zero.bin", spec["zero"])
    if ftp.size("zero.bin") != 0:
        raise SystemExit("SIZE zero.bin != 0")
    retr_to(ftp, "RETR zero.bin", os.path.join(dst, "zero.bin"))
    log("ok zero")
    # MDTM, MLSD.
    resp = ftp.sendcmd("MDTM seed.bin")
    if not resp.startswith("213 "):
        raise SystemExit("MDTM: %r" % resp)
    # MLSD only where FEAT lists MLST, as real clients decide (vsftpd 3.0.3
    # has no MLSD; the gateway must not advertise what the backend lacks).
    feat = ftp.sendcmd("FEAT")
    if "MLST" in feat.upper():
        facts = dict(ftp.mlsd())
        if "seed.bin" not in facts:
            raise SystemExit("MLSD lacks seed.bin: %r" % list(facts))
        log("ok mdtm/mlsd")
    else:
        log("ok mdtm; MLSD skipped: FEAT lists no MLST")
    # APPE: app.bin = part1 + part2.
    stor_from(ftp, "STOR app.bin", spec["part1"])
    stor_from(ftp, "APPE app.bin", spec["part2"])
    log("ok appe")
    # REST+STOR: rs.bin = first half of src, then the rest from the offset.
    half = os.path.getsize(spec["src"]) // 2
    with open(spec["src"], "rb") as f:
        ftp.storbinary("STOR rs.bin", _Limited(f, half))
    stor_from(ftp, "STOR rs.bin", spec["src"], rest=half)
    log("ok rest+stor")
    # REST+RETR: the tail of seed.bin.
    retr_to(ftp, "RETR seed.bin", os.path.join(dst, "seed-tail.bin"), rest=spec["rest"])
    log("ok rest+retr")
    # RNFR/RNTO, DELE.
    ftp.rename("up.bin", "renamed.bin")
    stor_from(ftp, "STOR gone.bin", spec["part1"])
    ftp.delete("gone.bin")
    log("ok rename/dele")
    # ABOR in the middle of a download, then the session still works.
    conn = ftp.transfercmd("RETR abort.bin")
    got = 0
    while got < 256 * 1024:
        b = conn.recv(65536)
        if not b:
            break
        got += len(b)
    resp = ftp.abort()
    log("abort reply", resp)
    if resp.startswith("426"):
        resp2 = ftp.getresp()
        log("abort second reply", resp2)
    conn.close()
    ftp.voidcmd("NOOP")
    retr_to(ftp, "RETR seed.bin", os.path.join(dst, "seed-after-abor.bin"))
    log("ok abor")


def big(ftp, spec):
    ftp.cwd(spec["dir"])
    stor_from(ftp, "STOR big.bin", spec["big"])
    retr_to(ftp, "RETR big.bin", os.path.join(spec["dst"], "big.bin"))
    log("ok big")


class _Limited:
    def __init__(self, f, n):
        self.f, self.n = f, n

    def read(self, size=-1):
        if self.n <= 0:
            return b""
        if size < 0 or size > self.n:
            size = self.n
        b = self.f.read(size)
        self.n -= len(b)
        return b


if __name__ == "__main__":
    main(sys.argv[1])
