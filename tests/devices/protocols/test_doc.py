"""docs/devices.md stays true for the protocols: the SunSpec point table, the error codes
and the OCPP actions match the code."""

from __future__ import annotations

from pathlib import Path

from wattx.devices.protocols import sunspec
from wattx.devices.protocols.ocpp_csms import StationLink
from wattx.devices.protocols.port import ERROR_CODES

DOC = (Path(__file__).resolve().parents[3] / "docs" / "devices.md").read_text(encoding="utf-8")


def table(marker: str) -> list[list[str]]:
    block = DOC.split(f"<!-- {marker} -->\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in block.splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


def test_the_sunspec_point_table_matches_the_adapter() -> None:
    documented = {
        (int(model.split()[0]), point.strip("`"), int(offset))
        for model, point, offset, _ in table("sunspec-points")
    }
    s = sunspec
    used = {
        (1, "Mn", s.COMMON_MN),
        (1, "Md", s.COMMON_MD),
        (1, "SN", s.COMMON_SN),
        (103, "W", s.INV_W),
        (103, "W_SF", s.INV_W_SF),
        (103, "St", s.INV_ST),
        (120, "WHRtg", s.NP_WHRTG),
        (120, "WHRtg_SF", s.NP_WHRTG_SF),
        (120, "MaxChaRte", s.NP_MAXCHA),
        (120, "MaxChaRte_SF", s.NP_MAXCHA_SF),
        (120, "MaxDisChaRte", s.NP_MAXDIS),
        (120, "MaxDisChaRte_SF", s.NP_MAXDIS_SF),
        (124, "WChaMax", s.ST_WCHAMAX),
        (124, "StorCtl_Mod", s.ST_MOD),
        (124, "ChaState", s.ST_CHASTATE),
        (124, "ChaSt", s.ST_CHAST),
        (124, "OutWRte", s.ST_OUTWRTE),
        (124, "InWRte", s.ST_INWRTE),
        (124, "InOutWRte_RvrtTms", s.ST_RVRT),
        (124, "WChaMax_SF", s.ST_WCHAMAX_SF),
        (124, "ChaState_SF", s.ST_CHASTATE_SF),
        (124, "InOutWRte_SF", s.ST_RTE_SF),
    }
    assert documented == used
    assert "at most 65 534" in DOC
    assert s.MAX_REVERT_S == 65_534
    assert s.SUNSPEC_BASES == (40_000, 0, 50_000)
    assert "40000, 0 or 50000" in DOC


def test_the_error_code_table_lists_every_code() -> None:
    assert {row[0].strip("`") for row in table("device-errors")} == ERROR_CODES


def test_the_ocpp_action_table_lists_what_the_csms_answers() -> None:
    documented = {row[0].strip("`") for row in table("ocpp-actions")}
    link = StationLink("doc", None, 1.0)
    assert documented == set(link.route_map)
