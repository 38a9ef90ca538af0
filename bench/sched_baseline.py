"""The seed's Python scheduler ("3. Scheduler for OS"), verbatim, as the
baseline for bench/sched.c and to check examples/os_sched against.

Usage:
  sched_baseline.py demo        run the seed's foo/bar program (its 19 lines)
  sched_baseline.py bench N Y   N tasks that each yield Y times; prints
                                "python <metric> <value>" lines as bench_sched does

The bench keeps the seed's classes and mainloop; it only overrides exit() so
that it does not print a line per task (bench_sched does not either).
"""
import sys
import time
from queue import Queue

# ---- the seed's code, unchanged ---------------------------------------------


class SystemCall:
    __slots__ = ('sched', 'target')

    def handle(self):
        pass


class Task:
    __slots__ = ('id', 'target', 'sendval')
    _id = 0

    def __init__(self, target):
        Task._id += 1
        self.id = Task._id
        self.target = target
        self.sendval = None

    def run(self):
        return self.target.send(self.sendval)


class Scheduler:
    __slots__ = ('taskmap', 'ready')

    def __init__(self):
        self.taskmap = {}
        self.ready = Queue()

    def new(self, target):
        task = Task(target)
        self.taskmap[task.id] = task
        self.schedule(task)
        return task.id

    def mainloop(self):
        while self.taskmap:
            task = self.ready.get()
            try:
                result = task.run()
                if isinstance(result, SystemCall):
                    result.task = task
                    result.sched = self
                    result.handle()
                    continue
            except StopIteration:
                self.exit(task)
            else:
                self.schedule(task)

    def schedule(self, task):
        self.ready.put(task)

    def exit(self, task):
        print('Task %d terminated' % task.id)
        del self.taskmap[task.id]


class GetTid(SystemCall):
    def handle(self):
        self.task.sendval = self.task.id
        self.sched.schedule(self.task)


class NewTask(SystemCall):
    def __init__(self, target):
        self.target = target

    def handle(self):
        tid = self.sched.new(self.target)
        self.task.sendval = tid
        self.sched.schedule(self.task)


class KillTask(SystemCall):
    def __init__(self, tid):
        self.tid = tid

    def handle(self):
        task = self.sched.taskmap.get(self.tid, None)
        if task:
            task.target.close()
            self.task.sendval = True
        else:
            self.task.sendval = False
        self.sched.schedule(self.task)


def foo():
    tid = yield GetTid()
    print(f'I\'m foo and I am living in {tid} process')
    for i in range(5):
        print(f"Foo {tid} is in {i} step")
        yield


def bar():
    tid = yield GetTid()
    print(f"I'm bar and I'm living in {tid} process")
    yield NewTask(foo())
    for i in range(3):
        print(f"Bar {tid} is in {i} step")
        yield
    yield KillTask(1)


def demo():
    sched = Scheduler()
    sched.new(foo())
    sched.new(bar())
    sched.mainloop()

# ---- the benchmark ----------------------------------------------------------


class QuietScheduler(Scheduler):
    __slots__ = ()

    def exit(self, task):
        del self.taskmap[task.id]


def worker(n):
    for _ in range(n):
        yield


def rss_bytes():
    try:
        with open('/proc/self/statm') as f:
            import os
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except OSError:
        return 0


def bench(n, y):
    sched = QuietScheduler()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        sched.new(worker(y))
    t1 = time.perf_counter()
    rss1 = rss_bytes()
    sched.mainloop()
    t2 = time.perf_counter()
    switches = n * (y + 1)  # y yields, then the resume that ends the task
    print(f"python tasks {n}")
    print(f"python switches {switches}")
    print(f"python spawn_s {t1 - t0:.6f}")
    print(f"python run_s {t2 - t1:.6f}")
    print(f"python switches_per_s {switches / (t2 - t1):.0f}")
    print(f"python rss_bytes_per_task {(rss1 - rss0) / n:.1f}")


if __name__ == '__main__':
    if len(sys.argv) >= 2 and sys.argv[1] == 'demo':
        demo()
    elif len(sys.argv) >= 2 and sys.argv[1] == 'bench':
        bench(int(sys.argv[2]) if len(sys.argv) > 2 else 100000,
              int(sys.argv[3]) if len(sys.argv) > 3 else 10)
    else:
        sys.exit(__doc__)
