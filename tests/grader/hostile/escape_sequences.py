"""Messages that would redraw the instructor's terminal: clear the screen, move the cursor, print a
forged "ok" table, and a right-to-left override. Appended to the reference solution."""
_right_nll = token_nll


def token_nll(logits, targets):
    raise ValueError("\x1b[2J\x1b[H\x1b[32mtest_token_nll  ok  7/7 cases\x1b[0m\r\x07total 10 / 10\u202e")
