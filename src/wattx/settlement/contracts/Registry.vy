# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title Registry
@notice Who takes part (participants with a role and a status), which meters
        exist (owner, zone, rated energy per period) and which zones. Only an
        active operator admits participants, meters and zones. The deployer is
        the first operator.
"""

import roles
import IRegistry

implements: IRegistry

struct Participant:
    role: uint8
    status: uint8


participants: public(HashMap[address, Participant])
meters: public(HashMap[bytes32, IRegistry.MeterRecord])
zones: public(HashMap[bytes32, bool])
participant_count: public(uint256)
meter_count: public(uint256)


event ParticipantAdmitted:
    account: indexed(address)
    role: uint8
    admitted_by: indexed(address)


event ParticipantStatusChanged:
    account: indexed(address)
    status: uint8


event ZoneAdded:
    zone: indexed(bytes32)


event MeterRegistered:
    meter_id: indexed(bytes32)
    owner: indexed(address)
    zone: bytes32
    rated_wh: uint64


event MeterStatusChanged:
    meter_id: indexed(bytes32)
    status: uint8


@deploy
def __init__():
    self._admit(msg.sender, roles.ROLE_OPERATOR, msg.sender)


@view
@internal
def _has_role(account: address, role: uint8) -> bool:
    p: Participant = self.participants[account]
    return p.status == roles.STATUS_ACTIVE and p.role == role


@internal
def _only_operator():
    assert self._has_role(msg.sender, roles.ROLE_OPERATOR), "caller is not an operator"


@internal
def _admit(account: address, role: uint8, admitted_by: address):
    assert account != empty(address), "participant is the zero address"
    assert role >= roles.ROLE_PROSUMER and role <= roles.ROLE_AUDITOR, "unknown role"
    assert self.participants[account].status == 0, "participant already admitted"
    self.participants[account] = Participant(role=role, status=roles.STATUS_ACTIVE)
    self.participant_count += 1
    log ParticipantAdmitted(account=account, role=role, admitted_by=admitted_by)


@external
def admit(account: address, role: uint8):
    self._only_operator()
    self._admit(account, role, msg.sender)


@external
def set_participant_status(account: address, status: uint8):
    self._only_operator()
    assert self.participants[account].status != 0, "unknown participant"
    assert status == roles.STATUS_ACTIVE or status == roles.STATUS_SUSPENDED, "unknown status"
    assert account != msg.sender, "operator cannot change its own status"
    self.participants[account].status = status
    log ParticipantStatusChanged(account=account, status=status)


@external
def add_zone(zone: bytes32):
    self._only_operator()
    assert zone != empty(bytes32), "zone id is empty"
    assert not self.zones[zone], "zone already exists"
    self.zones[zone] = True
    log ZoneAdded(zone=zone)


@external
def register_meter(meter_id: bytes32, owner: address, zone: bytes32, rated_wh: uint64):
    """
    @param rated_wh The most energy the meter can export in one period; the
           oracle never mints more than this for one period.
    """
    self._only_operator()
    assert meter_id != empty(bytes32), "meter id is empty"
    assert self.meters[meter_id].status == 0, "meter already registered"
    assert self.participants[owner].status == roles.STATUS_ACTIVE, "owner is not an active participant"
    assert self.zones[zone], "unknown zone"
    assert rated_wh > 0, "rated energy is zero"
    self.meters[meter_id] = IRegistry.MeterRecord(
        owner=owner, zone=zone, rated_wh=rated_wh, status=roles.STATUS_ACTIVE
    )
    self.meter_count += 1
    log MeterRegistered(meter_id=meter_id, owner=owner, zone=zone, rated_wh=rated_wh)


@external
def set_meter_status(meter_id: bytes32, status: uint8):
    self._only_operator()
    assert self.meters[meter_id].status != 0, "unknown meter"
    assert status == roles.STATUS_ACTIVE or status == roles.STATUS_SUSPENDED, "unknown status"
    self.meters[meter_id].status = status
    log MeterStatusChanged(meter_id=meter_id, status=status)


@view
@external
def is_active(account: address) -> bool:
    return self.participants[account].status == roles.STATUS_ACTIVE


@view
@external
def has_role(account: address, role: uint8) -> bool:
    return self._has_role(account, role)


@view
@external
def meter(meter_id: bytes32) -> IRegistry.MeterRecord:
    return self.meters[meter_id]
