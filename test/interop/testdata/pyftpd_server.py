"""pyftpdlib backend for the ftpsgate interop tests.

Run by the Go harness with Debian's /usr/bin/python3 (python3-pyftpdlib):

    pyftpd_server.py ADDR PORT PASV_LO PASV_HI ROOT USER PASSWORD [CERT KEY]

With CERT and KEY it serves TLS_FTPHandler (explicit FTPS, AUTH TLS) and
requires TLS on the control and the data connections; without them, plain FTP.
The environment variable PYFTPD_EXTRA_USERS adds accounts, one a line:
USER<TAB>PASSWORD<TAB>ROOT.
"""

import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.servers import FTPServer


def main(argv):
    addr, port, lo, hi, root, user, password = argv[1:8]
    tls = len(argv) >= 10
    if tls:
        from pyftpdlib.handlers import TLS_FTPHandler as Handler

        Handler.certfile = argv[8]
        Handler.keyfile = argv[9]
        Handler.tls_control_required = True
        Handler.tls_data_required = True
    else:
        from pyftpdlib.handlers import FTPHandler as Handler

    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elradfmwMT")
    for line in os.environ.get("PYFTPD_EXTRA_USERS", "").splitlines():
        if line:
            u, p, r = line.split("\t")
            authorizer.add_user(u, p, r, perm="elradfmwMT")
    Handler.authorizer = authorizer
    Handler.passive_ports = range(int(lo), int(hi) + 1)
    Handler.permit_foreign_addresses = False
    Handler.banner = "pyftpdlib interop backend (%s)" % ("explicit" if tls else "none")
    Handler.use_sendfile = False

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(message)s")
    server = FTPServer((addr, int(port)), Handler)
    server.max_cons = 256
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
