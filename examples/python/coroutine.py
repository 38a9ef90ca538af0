# The seed's @coroutine decorator, shared by the Python equivalents here.
def coroutine(func):
    def start(*args, **kwargs):
        cr = func(*args, **kwargs)
        next(cr)
        return cr
    return start
