"""Producers on focus and peripheral streams hand off to a consumer with CUDA events (no host sync);
concurrent producers from threads; stream classes."""

import threading

from _env import require  # noqa: E402

torch, pbm = require()

from _records import decode, make_records  # noqa: E402


def test_stream_helpers_have_the_device_priorities():
    least, greatest = pbm.priority_range()
    focus, peripheral = pbm.focus_stream(), pbm.peripheral_stream()
    assert isinstance(focus, torch.cuda.Stream) and isinstance(peripheral, torch.cuda.Stream)
    assert focus.priority == greatest and peripheral.priority == least
    assert pbm.stream_class(focus) == "focus"
    if greatest != least:
        assert pbm.stream_class(peripheral) == "peripheral"
    assert pbm.focus_stream() is focus and pbm.focus_stream(index=1) is not focus


def test_producers_on_two_streams_with_event_handoff(stride):
    mb = pbm.Mailbox(1024, stride, name="handoff_probe")
    consumer = torch.cuda.current_stream()
    events = []
    for producer, stream in enumerate((pbm.focus_stream(), pbm.peripheral_stream())):
        stream.wait_stream(consumer)  # the mailbox was initialised before; keep the order explicit
        with torch.cuda.stream(stream):
            for batch in range(4):
                mb.push(make_records(25, stride, producer=producer, start=25 * batch))
            done = torch.cuda.Event()
            done.record(stream)
        events.append(done)
    for done in events:
        consumer.wait_event(done)  # device-side handoff: the host never waits here
    out = mb.pop(1000)
    pairs = decode(out, stride)
    assert len(pairs) == 200
    for producer in (0, 1):  # each producer's records arrive complete and in its order
        assert [i for p, i in pairs if p == producer] == list(range(100))
    least, greatest = pbm.priority_range()
    if least != greatest:  # calls are counted by stream class (focus = 0, peripheral = 1)
        info = [m for m in pbm.mailboxes() if m["name"] == "handoff_probe"]
        assert len(info) == 1 and tuple(info[0]["push_calls"]) == (4, 4)


def test_handle_wait_on_hands_a_pop_to_another_stream(stride):
    mb = pbm.Mailbox(64, stride)
    mb.push(make_records(10, stride))
    result = mb.pop_async(10)
    other = pbm.peripheral_stream()
    result.wait_on(other)  # `other` waits for the pop on the device
    with torch.cuda.stream(other):
        doubled = result.buffer.to(torch.int32) * 2
    torch.cuda.current_stream().wait_stream(other)
    assert result.wait() == 10
    assert torch.equal(doubled, result.buffer.to(torch.int32) * 2)


def test_concurrent_producer_threads(stride):
    mb = pbm.Mailbox(4096, stride)
    n_threads, per_thread = 4, 200
    errors = []

    def produce(producer):
        try:
            stream = pbm.peripheral_stream(index=producer)
            with torch.cuda.stream(stream):
                for k in range(per_thread // 20):
                    mb.push(make_records(20, stride, producer=producer, start=20 * k))
            stream.synchronize()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pairs = decode(mb.pop(4096), stride)
    assert len(pairs) == n_threads * per_thread
    for producer in range(n_threads):
        assert [i for p, i in pairs if p == producer] == list(range(per_thread))
