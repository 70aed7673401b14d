"""Top-level ``mailbox_ext``, as code written against the original extension imports it.

    import torch, mailbox_ext
    hdr, payload = mailbox_ext.pbm_alloc(capacity, stride)
    mailbox_ext.pbm_push_bytes_cuda(hdr, payload, rec)
    out = mailbox_ext.pbm_pop_bulk_cuda(hdr, payload, max_records, stride)

The compiled module lives in the pbm package (pbm/mailbox_ext*.so); this file sits next to the
package (CMake copies it to <build>/python, pip installs it beside pbm/) and replaces itself in
sys.modules with that very module object, so ``mailbox_ext is pbm.mailbox_ext``: one module, one
state (adopted mailboxes, completion pool, telemetry). Going through pbm._ext also loads torch and
shares its libstdc++ first, which the extension needs (see pbm/_ext.py).
"""

import sys

# Lets pbm._ext tell this shim from a compiled top-level mailbox_ext while this import is under way.
__pbm_shim__ = True

from pbm._ext import ext as _ext  # noqa: E402  (imports the pbm package first)

sys.modules[__name__] = _ext
