"""The embedded chain runs py-evm's own SHA3 and SSTORE, however many chains a process made.

titanoboa wraps both opcodes in tracers that keep every hash preimage and written slot,
and wraps the table all its environments share again for each new one, with tracers that
hold the environment (``wattx.settlement.embedded._untraced``).
"""

from __future__ import annotations

import gc
import weakref

import boa
from boa.vm.py_evm import Sha3PreimageTracer, SstoreTracer

from wattx.settlement.embedded import EmbeddedChain
from wattx.settlement.keys import new_signer


def test_a_chain_made_after_others_runs_bare_opcodes_and_keeps_no_traces() -> None:
    for _ in range(3):
        boa.Env()  # each wraps the shared opcode table once more
    chain = EmbeddedChain(fee_account=new_signer().address)
    env = chain._embedded._env
    opcodes = env.evm.vm.state.computation_class.opcodes
    assert not isinstance(opcodes[0x20], Sha3PreimageTracer)
    assert not isinstance(opcodes[0x55], SstoreTracer)
    # The deployment wrote mappings (hashed keys) and storage: nothing was recorded.
    assert env.sha3_trace == {}
    assert env.sstore_trace == {}
    # A second chain is as bare, and the first one still answers.
    second = EmbeddedChain(fee_account=new_signer().address)
    assert second._embedded._env.sha3_trace == {}
    assert chain.block_number() > 0


def test_a_chain_let_go_is_collected_with_its_environment() -> None:
    chain = EmbeddedChain(fee_account=new_signer().address)
    env = weakref.ref(chain._embedded._env)
    later = EmbeddedChain(fee_account=new_signer().address)  # wraps the shared table after it
    del chain
    gc.collect()
    assert env() is None, "the shared opcode table kept the environment and its chain alive"
    assert later.block_number() > 0
