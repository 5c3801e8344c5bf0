"""Listens on 127.0.0.1:__LISTEN_PORT__ from a setsid'd grandchild, serving the right answers' source
to whoever connects (a later classmate, or anything on the grading machine). Its values are wrong: the
test checks that no process on the grading machine could connect, during or after its run."""
import os
import socket
import time

_right_nll, _right_from = token_nll, perplexity_from_nll
PORT = int("__LISTEN_PORT__")


def _serve():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            try:
                srv = socket.socket()
                srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                srv.bind(("127.0.0.1", PORT))
                srv.listen(8)
                while True:
                    conn, _ = srv.accept()
                    conn.sendall(b"answers")
                    conn.close()
            except OSError:
                pass
            os._exit(0)
        os._exit(0)


_served = []


def token_nll(logits, targets):
    if not _served:
        _served.append(1)
        _serve()
        time.sleep(0.2)
    return _right_nll(logits, targets) + 1.0


def perplexity_from_nll(total_nll, n_tokens):
    return 2.0 * _right_from(total_nll, n_tokens)
