# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title MeterOracle
@notice Turns verified net export into EnergyToken. Authorised submitters send
        batches of (meter, period, owner, Wh); per meter the periods strictly
        increase, the owner must be the meter's registered owner, and no period
        mints more than the meter's rated energy. It also keeps each owner's
        lifetime verified generation, which Governance uses as voting weight.
        A batch may carry the submitter's id (`submit_batch`): the oracle mints
        each id at most once and logs it, so a submitter that lost track of a
        batch (a crash after sending) finds it on chain instead of minting again.
"""

import roles
import IRegistry

interface IMintable:
    def mint(receiver: address, amount: uint256): nonpayable

struct MeterReading:
    meter_id: bytes32
    period: uint64
    owner: address
    wh: uint64


MAX_BATCH: constant(uint256) = 1024
BASE_UNITS_PER_WH: constant(uint256) = 10**6

registry: public(immutable(IRegistry))
energy_token: public(immutable(IMintable))
submitters: public(HashMap[address, bool])
last_period: public(HashMap[bytes32, uint64])
has_reading: public(HashMap[bytes32, bool])
minted_batches: public(HashMap[bytes32, bool])
generated_wh: public(HashMap[address, uint256])
total_generated_wh: public(uint256)


event SubmitterChanged:
    submitter: indexed(address)
    authorised: bool


event ReadingMinted:
    meter_id: indexed(bytes32)
    owner: indexed(address)
    period: uint64
    wh: uint64


event BatchMinted:
    batch_id: indexed(bytes32)
    readings: uint256
    total_wh: uint256


@deploy
def __init__(registry_address: address, energy_token_address: address):
    registry = IRegistry(registry_address)
    energy_token = IMintable(energy_token_address)


@external
def set_submitter(submitter: address, authorised: bool):
    assert staticcall registry.has_role(msg.sender, roles.ROLE_OPERATOR), "caller is not an operator"
    self.submitters[submitter] = authorised
    log SubmitterChanged(submitter=submitter, authorised=authorised)


@external
def submit(readings: DynArray[MeterReading, MAX_BATCH]):
    """
    @notice Mint energy tokens for a batch of verified readings, many meters at once.
    """
    self._submit(readings)


@external
def submit_batch(batch_id: bytes32, readings: DynArray[MeterReading, MAX_BATCH]):
    """
    @notice `submit` under the submitter's batch id: each id mints at most once,
            and `BatchMinted` ties the batch's `ReadingMinted` events to it.
    """
    assert batch_id != empty(bytes32), "batch id is empty"
    assert not self.minted_batches[batch_id], "batch already minted"
    self.minted_batches[batch_id] = True
    total: uint256 = self._submit(readings)
    log BatchMinted(batch_id=batch_id, readings=len(readings), total_wh=total)


@internal
def _submit(readings: DynArray[MeterReading, MAX_BATCH]) -> uint256:
    assert self.submitters[msg.sender], "caller is not an authorised submitter"
    total: uint256 = 0
    for r: MeterReading in readings:
        m: IRegistry.MeterRecord = staticcall registry.meter(r.meter_id)
        assert m.status == roles.STATUS_ACTIVE, "meter is not active"
        assert m.owner == r.owner, "owner does not own the meter"
        assert not self.has_reading[r.meter_id] or r.period > self.last_period[r.meter_id], "period not increasing"
        assert r.wh <= m.rated_wh, "reading above the meter's rated energy"
        self.last_period[r.meter_id] = r.period
        self.has_reading[r.meter_id] = True
        if r.wh > 0:
            self.generated_wh[r.owner] += convert(r.wh, uint256)
            self.total_generated_wh += convert(r.wh, uint256)
            total += convert(r.wh, uint256)
            extcall energy_token.mint(r.owner, convert(r.wh, uint256) * BASE_UNITS_PER_WH)
        log ReadingMinted(meter_id=r.meter_id, owner=r.owner, period=r.period, wh=r.wh)
    return total
