"""The embedded chain keeps no memory per transaction beyond what it must remember."""

from __future__ import annotations

import gc
import tracemalloc

from wattx.settlement.embedded import EmbeddedChain
from wattx.settlement.keys import new_signer
from wattx.settlement.port import ParticipantRole


def test_transient_storage_keeps_nothing_from_one_transaction_to_the_next() -> None:
    # py-evm journals every snapshot into the transient storage and forgets the journal
    # only at a persist, which transient storage never has: ~570 bytes a transaction
    # for as long as a service ran, before each block got a new store (EIP-1153).
    chain = EmbeddedChain()
    user = new_signer()
    chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    chain.mint_credit(user.address, 1)
    only_transient = [tracemalloc.Filter(True, "*/eth/vm/transient_storage.py", all_frames=True)]
    gc.collect()
    tracemalloc.start(5)  # the allocation is three frames below transient_storage.py
    try:
        before = tracemalloc.take_snapshot().filter_traces(only_transient)
        for amount in range(100):
            chain.mint_credit(user.address, amount + 2)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(only_transient)
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 100 * 20, f"{grown / 100:.0f} bytes kept per transaction"
