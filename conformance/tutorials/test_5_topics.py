"""Tutorial 5, topics: emit_log_topic.py sends under dotted routing keys to the topic exchange
'topic_logs'; receive_logs_topic.py binds patterns where '*' is one word and '#' zero or more."""

import time
from collections import Counter

from support import QUIET

LOG = r' \[x\] ([^:]*):(.*)'

KEYS = [
    'kern.critical',
    'kern.info',
    'auth.critical',
    'auth.info',
    'kern',
    'kern.info.extra',
    'quick.orange.rabbit',
    'lazy.orange.elephant',
    'quick.orange.fox',
    'lazy.brown.fox',
    'lazy.pink.rabbit',
    'quick.brown.fox',
    'orange',
    'quick.orange.new.rabbit',
    'lazy.orange.new.rabbit',
    'lazy',
]

# binding keys of one receiver -> the routing keys it must get, each exactly once
EXPECTED = {
    ('#',): KEYS,
    ('kern.*',): ['kern.critical', 'kern.info'],
    ('*.critical',): ['kern.critical', 'auth.critical'],
    # A message matching both bindings of a queue reaches it once.
    ('kern.*', '*.critical'): ['kern.critical', 'kern.info', 'auth.critical'],
    ('kern.#',): ['kern.critical', 'kern.info', 'kern', 'kern.info.extra'],
    ('*.orange.*',): ['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox'],
    ('*.*.rabbit', 'lazy.#'): [
        'quick.orange.rabbit',
        'lazy.orange.elephant',
        'lazy.brown.fox',
        'lazy.pink.rabbit',
        'lazy.orange.new.rabbit',
        'lazy',
    ],
}


def test_receivers_get_exactly_the_keys_their_patterns_match(tutorials):
    receivers = dict(zip(
        EXPECTED,
        tutorials.consumers([('receive_logs_topic', *bindings) for bindings in EXPECTED]),
    ))
    tutorials.run_all([('emit_log_topic', key, f'message for {key}') for key in KEYS])

    for bindings, receiver in receivers.items():
        receiver.wait_for(LOG, count=len(EXPECTED[bindings]))
    time.sleep(QUIET)
    for bindings, receiver in receivers.items():
        got = [(m.group(1), m.group(2)) for m in receiver.matches(LOG)]
        for key, message in got:
            assert message == f'message for {key}', receiver.describe()
        assert Counter(key for key, _ in got) == Counter(EXPECTED[bindings]), (
            f'bound to {bindings}\n{receiver.describe()}'
        )
