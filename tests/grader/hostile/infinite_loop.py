"""token_nll never returns: the call must time out and the next submission still be graded."""
def token_nll(logits, targets):
    n = 0
    while True:
        n += 1
