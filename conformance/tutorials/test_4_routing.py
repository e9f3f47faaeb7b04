"""Tutorial 4, routing: emit_log_direct.py sends with the severity as routing key to the direct
exchange 'direct_logs'; receive_logs_direct.py binds its queue once per severity it wants."""

import time

from support import QUIET

LOG = r' \[x\] (\w+):(.*)'


def logs(receiver):
    return [(m.group(1), m.group(2)) for m in receiver.matches(LOG)]


def test_each_receiver_gets_the_severities_it_bound(tutorials):
    errors_only, everything, warnings = tutorials.consumers([
        ('receive_logs_direct', 'error'),
        ('receive_logs_direct', 'info', 'warning', 'error'),
        ('receive_logs_direct', 'warning', 'warning'),  # the same binding twice is one binding
    ])
    sent = [
        ('info', 'disk 80% full'),
        ('warning', 'disk 90% full'),
        ('error', 'disk full'),
        ('debug', 'nobody listens to this'),
        ('error', 'out of memory'),
    ]
    for severity, message in sent:
        tutorials.run('emit_log_direct', severity, message)

    errors_only.wait_for(LOG, count=2)
    everything.wait_for(LOG, count=4)
    warnings.wait_for(LOG, count=1)
    time.sleep(QUIET)
    assert logs(errors_only) == [('error', 'disk full'), ('error', 'out of memory')], \
        errors_only.describe()
    assert logs(everything) == [
        ('info', 'disk 80% full'),
        ('warning', 'disk 90% full'),
        ('error', 'disk full'),
        ('error', 'out of memory'),
    ], everything.describe()
    assert logs(warnings) == [('warning', 'disk 90% full')], warnings.describe()
