"""Tutorial 2, work queues: new_task.py queues tasks (durable queue, persistent messages),
worker.py does them one at a time (prefetch_count=1), acknowledging each when done."""

import time

import pika

from support import PATIENCE, QUIET, decode_body

RECEIVED = r' \[x\] Received (.*)'
DONE = r' \[x\] Done'


def received(worker):
    return [m.group(1) for m in worker.matches(RECEIVED)]


def first_to_receive(workers, task, timeout=PATIENCE):
    """The worker that prints 'Received <task>' (waits for one to)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if task in received(worker):
                return worker
        time.sleep(0.02)
    raise AssertionError(f'no worker received {task!r}\n' + '\n'.join(w.describe() for w in workers))


def test_tasks_are_shared_between_workers(tutorials):
    workers = tutorials.consumers([('worker',), ('worker',)])
    tasks = [f'task {i}' for i in range(4)]
    for task in tasks:
        tutorials.run('new_task', task)
    for worker in workers:
        # Round-robin between two idle workers: two each.
        worker.wait_for(DONE, count=2)
    time.sleep(QUIET)
    got = [received(w) for w in workers]
    assert sorted(got[0] + got[1]) == tasks, tutorials.describe()
    assert len(got[0]) == len(got[1]) == 2, tutorials.describe()


def test_fair_dispatch_busy_worker_gets_no_second_task(tutorials):
    workers = tutorials.consumers([('worker',), ('worker',)])

    # Three seconds of work for whichever worker takes it...
    tutorials.run('new_task', 'slow task...')
    slow = first_to_receive(workers, 'slow task...')
    fast = workers[1] if slow is workers[0] else workers[0]

    # ...while quick tasks keep coming: with prefetch_count=1 they all go to the idle worker,
    # instead of every other one queueing up behind the slow task.
    quick = [f'quick task {i}' for i in range(4)]
    tutorials.run_all([('new_task', task) for task in quick])
    fast.wait_for(DONE, count=len(quick))
    assert sorted(received(fast)) == quick, tutorials.describe()
    assert received(slow) == ['slow task...'], tutorials.describe()
    assert not slow.matches(DONE), 'the slow task took under 3 s?\n' + tutorials.describe()

    slow.wait_for(DONE)
    time.sleep(QUIET)
    assert received(slow) == ['slow task...'], tutorials.describe()
    assert sorted(received(fast)) == quick, tutorials.describe()


def test_task_of_a_worker_that_dies_goes_to_another_worker(tutorials, broker):
    workers = tutorials.consumers([('worker',), ('worker',)])
    tutorials.run('new_task', 'fragile task..')
    victim = first_to_receive(workers, 'fragile task..')
    survivor = workers[1] if victim is workers[0] else workers[0]

    # Not acknowledged yet, and prefetch_count=1 keeps it with the victim meanwhile.
    time.sleep(QUIET)
    assert received(survivor) == [], tutorials.describe()

    victim.kill()  # dies mid-task, without acknowledging it
    survivor.wait_for(r' \[x\] Received fragile task\.\.')
    survivor.wait_for(DONE)
    assert received(survivor) == ['fragile task..'], tutorials.describe()

    # Acknowledged by the survivor: nothing left in the queue.
    channel = broker.channel()
    deadline = time.monotonic() + PATIENCE
    while True:
        declared = channel.queue_declare(tutorials.name('task_queue'), passive=True)
        if declared.method.message_count == 0:
            break
        assert time.monotonic() < deadline, f'{declared.method.message_count} messages left'
        time.sleep(0.05)


def test_queue_is_durable_and_messages_persistent(tutorials, broker):
    tutorials.run('new_task', 'keep me')
    queue = tutorials.name('task_queue')

    declared = broker.channel().queue_declare(queue, passive=True)
    assert declared.method.message_count == 1

    # Redeclaring it as transient is refused: the queue new_task.py declared is durable.
    code = broker.close_code(lambda ch: ch.queue_declare(queue, durable=False))
    assert code == 406, f'redeclaring the durable queue as transient: reply code {code}, not 406'

    method, properties, body = broker.channel().basic_get(queue, auto_ack=True)
    assert method is not None, 'the task is gone'
    assert decode_body(properties, body) == 'keep me'
    assert properties.delivery_mode == pika.DeliveryMode.Persistent.value

    # And a worker started later still finds tasks queued before it existed.
    tutorials.run('new_task', 'still here')
    worker = tutorials.consumer('worker')
    worker.wait_for(r' \[x\] Received still here')
    worker.wait_for(DONE)
