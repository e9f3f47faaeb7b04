"""Tutorial 1, "Hello World!": send.py puts a message on the queue 'hello', receive.py prints it."""

import time

from support import QUIET

RECEIVED = r" \[x\] Received 'Hello World!'"


def test_message_sent_before_the_receiver_starts_waits_in_the_queue(tutorials):
    sent = tutorials.run('send')
    assert sent.matches(r" \[x\] Sent 'Hello World!'"), sent.describe()

    receiver = tutorials.consumer('receive')
    receiver.wait_for(RECEIVED)


def test_receiver_prints_each_message_sent(tutorials):
    receiver = tutorials.consumer('receive')
    for _ in range(3):
        tutorials.run('send')
    receiver.wait_for(RECEIVED, count=3)
    time.sleep(QUIET)
    assert len(receiver.matches(RECEIVED)) == 3, receiver.describe()
    assert len(receiver.matches(r' \[x\] .*')) == 3, receiver.describe()
