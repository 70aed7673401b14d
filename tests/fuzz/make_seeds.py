#!/usr/bin/env python3
"""Writes the binary seed inputs of corpus/cupti_decoder and corpus/ring_header (the JSON seeds of
corpus/budget and corpus/report are written by hand). Each seed follows the byte layout its
harness reads (fuzz_cupti_decoder.cpp, fuzz_ring_header.cpp); struct layouts are CUDA 13.0's
cupti_activity.h (x86-64). Run from anywhere: python3 tests/fuzz/make_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# cupti_activity.h (CUDA 13.0)
KIND_MEMCPY, KIND_MEMSET, KIND_MARKER, KIND_CONCURRENT_KERNEL, KIND_SYNC = 1, 2, 12, 10, 38
MEM_PAGEABLE, MEM_PINNED, MEM_DEVICE = 1, 2, 3
COPY_HTOD, COPY_DTOH = 1, 2
FLAG_MEMCPY_ASYNC, FLAG_MARKER_START, FLAG_MARKER_END = 1, 2, 4
OBJECT_THREAD = 2
SYNC_STREAM, SYNC_CONTEXT = 3, 4


def s(text, max_len):  # Input::take_string: a length byte, then the bytes
    b = text.encode() if isinstance(text, str) else text
    assert len(b) <= max_len
    return bytes([len(b)]) + b


def memcpy(copy_kind, src, dst, nbytes, corr=0, rt_corr=0, flags=0, stream=13):
    r = struct.pack('<IBBBBQQQIIIII', KIND_MEMCPY, copy_kind, src, dst, flags, nbytes, 1000, 2500, 0, 1,
                    stream, corr, rt_corr)
    return bytes([0]) + r.ljust(96, b'\0')


def memset(nbytes, kind=MEM_DEVICE):
    r = struct.pack('<IIQQQIIIIHH', KIND_MEMSET, 0xab, nbytes, 10, 20, 0, 1, 3, 9, 1, kind)
    return bytes([1]) + r.ljust(88, b'\0')


def sync(sync_type, corr, stream=7):
    r = struct.pack('<IIQQIIII', KIND_SYNC, sync_type, 10, 20, corr, 1, stream, 0xffffffff)
    return bytes([2]) + r.ljust(56, b'\0') + struct.pack('<I', sync_type)


def marker(flags, marker_id, thread, name=None, domain=None):
    r = struct.pack('<IIQII', KIND_MARKER, flags, 123, marker_id, OBJECT_THREAD) + struct.pack('<II', 1000, thread)
    which = (1 if name is not None else 0) | (2 if domain is not None else 0)
    return (bytes([3]) + r.ljust(56, b'\0') + struct.pack('<III', flags, OBJECT_THREAD, 0)[:8] + bytes([which]) +
            s(name or '', 64) + s(domain or '', 16))


def other_kind(kind):
    return bytes([4]) + bytes(256) + struct.pack('<I', kind)


def api_call(runtime, spec_index, corr, stream=0, nested_corr=None):
    out = bytes([5, 1 if runtime else 0, spec_index, corr, stream])
    if runtime:
        out += bytes([0]) if nested_corr is None else bytes([1, nested_corr])
    return out


def copy_call(runtime, spec_index, params, corr=5):
    # decode_copy_call: a spec of the domain's callback list (selector byte & 7 != 0), 256 bytes of
    # parameters, then the correlation id given to the decoded copy.
    return bytes([8, 1 if runtime else 0, 1, spec_index]) + params.ljust(256, b'\0') + bytes([corr])


def memcpy_params(dst, src, count, kind):  # cudaMemcpy_v3020_params: dst, src, count, kind
    return struct.pack('<QQQi', dst, src, count, kind)


def push(name, domain='pbm'):
    return bytes([6]) + (bytes([1]) if domain == 'pbm' else bytes([0]) + s(domain, 8)) + s(name, 64)


def pop(index=0):
    return bytes([7, index])


def decoder_seed(cap, allow, *ops):
    head = bytes([cap, len(allow)]) + b''.join(s(a, 16) for a in allow)
    return head + b''.join(ops)


HEADER = struct.Struct('<IIIIQQ')  # magic, version, stride, reserved0, capacity, initial_position
MAGIC = 0x424D4250


def header_seed(magic=MAGIC, version=1, stride=16, capacity=8, origin=0, want_stride=16, want_capacity=8,
                want_origin=0):
    h = HEADER.pack(magic, version, stride, 0, capacity, origin).ljust(512, b'\0')
    return bytes([0]) + h + struct.pack('<IQQ', want_stride, want_capacity, want_origin)


def ring_seed(capacity, stride, origin_mode, origin_bytes, *ops):
    return bytes([1, capacity - 1, stride // 4 - 1, origin_mode]) + origin_bytes + bytes(ops)


def PUSH(n):  # push_n of n records
    return (n << 2) | 1


def TRY_PUSH():
    return (1 << 2) | 0


def POP(n):
    return (n << 2) | 3


SEEDS = {
    'cupti_decoder': {
        # cudaMemcpy inside "train_step": the call, then its record (runtime correlation id 7).
        'copy_in_a_range': decoder_seed(
            4, [], push('train_step', domain=''), api_call(True, 0, 7, nested_corr=8),
            memcpy(COPY_DTOH, MEM_DEVICE, MEM_PAGEABLE, 1 << 20, corr=8, rt_corr=7), pop(0),
            memcpy(COPY_HTOD, MEM_PINNED, MEM_DEVICE, 4096, flags=FLAG_MEMCPY_ASYNC)),
        # A stream sync seen at the callback, its record deduplicated; a device sync record alone.
        'syncs': decoder_seed(
            32, [], api_call(True, 40, 9, stream=3), sync(SYNC_STREAM, 9), sync(SYNC_CONTEXT, 10, stream=0xffffffff)),
        'markers_start_end': decoder_seed(
            8, [], marker(FLAG_MARKER_START, 42, 1001, 'push', 'pbm'), marker(FLAG_MARKER_START, 43, 1001, 'inner'),
            marker(FLAG_MARKER_END, 43, 1001), marker(FLAG_MARKER_END, 42, 77)),
        # cudaMemcpy(DtoH) decoded from its parameters: pointers classify as kind = value % 6.
        'copy_from_call_parameters': decoder_seed(
            4, [], push('step'), copy_call(True, 0, memcpy_params(0x1000 * 6, 0x1000 * 6 + 2, 4096, 2)), pop(0),
            copy_call(False, 3, memcpy_params(7, 8, 1, 0))),
        'memset_and_ignored_kind': decoder_seed(2, [], memset(256), other_kind(KIND_CONCURRENT_KERNEL), memset(1, 0)),
        # Range names past the cap fold into "other"; an allow-listed range makes copies expected.
        'cap_and_allow_list': decoder_seed(
            1, ['step', 'pbm:pop'], push('a'), api_call(False, 0, 1), push('step'), api_call(False, 1, 2),
            push('quote"back\\slash\nnewline'), api_call(False, 2, 3),
            memcpy(COPY_DTOH, MEM_DEVICE, MEM_PAGEABLE, 8, corr=1), memcpy(COPY_DTOH, MEM_DEVICE, MEM_PINNED, 8, corr=2),
            memcpy(COPY_DTOH, MEM_DEVICE, MEM_PAGEABLE, 8, corr=3), pop(2), pop(0), pop(0)),
    },
    'ring_header': {
        'valid_header': header_seed(),
        'valid_header_any_capacity': header_seed(capacity=1 << 31, want_capacity=0, origin=2**64 - 1,
                                                 want_origin=2**64 - 1),
        'bad_magic': header_seed(magic=0),
        'bad_version': header_seed(version=2),
        'stride_mismatch': header_seed(want_stride=32),
        'stride_not_multiple_of_4': header_seed(stride=6, want_stride=6),
        'capacity_zero': header_seed(capacity=0, want_capacity=0),
        'capacity_too_large': header_seed(capacity=(1 << 31) + 1, want_capacity=0),
        'origin_mismatch': header_seed(want_origin=5),
        'ring_fill_and_drain': ring_seed(8, 16, 0, bytes([0]), PUSH(3), POP(2), PUSH(10), POP(63), TRY_PUSH(), POP(1)),
        'ring_wraps_past_2_64': ring_seed(5, 12, 2, bytes([3]), *([PUSH(2), POP(1)] * 12), POP(63)),
        'ring_capacity_one': ring_seed(1, 4, 1, bytes([20]), TRY_PUSH(), TRY_PUSH(), POP(0), POP(5), TRY_PUSH()),
    },
}

for target, seeds in SEEDS.items():
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
    print(f'{target}: {len(seeds)} seeds in {os.path.relpath(d)}')
