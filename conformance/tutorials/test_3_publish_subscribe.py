"""Tutorial 3, publish/subscribe: emit_log.py broadcasts on the fanout exchange 'logs'; each
receive_logs.py gets every message through an exclusive, server-named queue of its own."""

import time

from support import PATIENCE, QUIET

LOG = r' \[x\] (.*)'
WAITING_ON = r' \[\*\] Waiting for logs on (\S+)\. To exit press CTRL\+C'


def logs(receiver):
    return [m.group(1) for m in receiver.matches(LOG)]


def test_every_receiver_gets_every_message_from_when_it_started(tutorials):
    # Nobody is listening yet: the exchange drops the message.
    tutorials.run('emit_log', 'info: before anyone listens')

    first, second = tutorials.consumers([('receive_logs',), ('receive_logs',)])
    tutorials.run('emit_log', 'info: one')
    tutorials.run('emit_log', 'warning: two')
    late = tutorials.consumer('receive_logs')
    tutorials.run('emit_log', 'error: three')

    first.wait_for(LOG, count=3)
    second.wait_for(LOG, count=3)
    late.wait_for(LOG, count=1)
    time.sleep(QUIET)
    assert logs(first) == ['info: one', 'warning: two', 'error: three'], first.describe()
    assert logs(second) == ['info: one', 'warning: two', 'error: three'], second.describe()
    assert logs(late) == ['error: three'], late.describe()

    queues = [r.matches(WAITING_ON)[0].group(1) for r in (first, second, late)]
    assert len(set(queues)) == 3, f'receivers share a queue: {queues}'
    for queue in queues:
        assert queue.startswith('amq.gen-'), f'not a server-generated name: {queue}'


def test_receiver_queue_is_exclusive_and_goes_away_with_the_receiver(tutorials, broker):
    receiver = tutorials.consumer('receive_logs')
    queue = receiver.matches(WAITING_ON)[0].group(1)

    # Another connection may not use it...
    code = broker.close_code(lambda ch: ch.queue_declare(queue, passive=True))
    assert code == 405, f'passive declare of another connection\'s exclusive queue: {code}, not 405'
    code = broker.close_code(lambda ch: ch.basic_get(queue))
    assert code == 405, f'basic.get from another connection\'s exclusive queue: {code}, not 405'

    # ...and it is deleted when the receiver's connection ends (CTRL+C).
    receiver.interrupt()
    deadline = time.monotonic() + PATIENCE
    while (code := broker.close_code(lambda ch: ch.queue_declare(queue, passive=True))) != 404:
        assert time.monotonic() < deadline, f'{queue} still there (passive declare: {code})'
        time.sleep(0.05)
