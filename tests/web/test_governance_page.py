"""The governance page: parameters with values and limits, proposals with tallies,
quorum, deadlines and standing; a vote through the form; refused votes shown next to
their form and changing nothing; the operator's execute once the timelock has passed;
the roles that are refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from chain_service.flow import mint, record_export, set_up_market
from governance.test_governance_api import _generator, _proposal, _propose
from service.client import ApiClient
from service.conftest import ManualClock, in_process_app
from wattx.config import Settings
from wattx.domain.epochs import EpochSchedule
from wattx.services.principal import Role
from wattx.settlement.deploy import DeploySettings
from wattx.settlement.embedded import EmbeddedChain

from .helpers import browser_login, csrf, field_error

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

VOTING_PERIOD_S = 3_600
TIMELOCK_S = 600
QUORUM_WH = 4_000


@pytest.fixture
def chain() -> EmbeddedChain:
    return EmbeddedChain(
        settings=DeploySettings(
            voting_period_seconds=VOTING_PERIOD_S, timelock_seconds=TIMELOCK_S, quorum_wh=QUORUM_WH
        )
    )


@pytest.fixture
async def app(
    settings: Settings, clock: ManualClock, chain: EmbeddedChain
) -> AsyncIterator[FastAPI]:
    application = in_process_app(settings, clock=clock, run_epoch_clock=False, chain=chain)
    async with application.router.lifespan_context(application):
        yield application


def _row(html: str, proposal_id: int) -> str:
    found = re.search(rf'<tr data-proposal="{proposal_id}".*?</tr>', html, re.S)
    assert found is not None, html
    return found.group(0)


async def test_vote_through_the_form_refusals_and_execution(
    api: ApiClient, app: FastAPI, clock: ManualClock, chain: EmbeddedChain
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    op = market.operator
    await record_export(api.state, market.meter_id, {now_epoch - 2: (0, 3_000)})
    big = await _generator(api, op, "M-2", 5_000, now_epoch - 2)
    await mint(api, market)
    await _propose(api, market.seller, 40)

    async with browser_login(app, market.seller.email) as seller:
        shown = await seller.get("/governance")
        assert shown.status_code == 200
        assert '<tr data-parameter="market_fee_bps"><td><code>market_fee_bps</code></td>' in (
            shown.text
        )
        assert '<td data-value="25">25</td><td>0</td><td>1000</td><td>basis points</td>' in (
            shown.text
        )
        row = _row(shown.text, 1)
        assert 'data-status="voting"' in row
        assert "fund the feeder" in row
        assert 'data-for="0"' in row
        assert 'data-quorum="4000">4.0 <span>not reached</span>' in row
        assert 'action="/governance/proposals/1/votes"' in row
        assert "/execute" not in row

        voted = await seller.post(
            "/governance/proposals/1/votes", data={"support": "for", "csrf_token": csrf(seller)}
        )
        assert voted.status_code == 200, voted.text
        assert "counts 3\u202f000 Wh" in voted.text
        assert 'data-for="3000"' in _row(voted.text, 1)

        again = await seller.post(
            "/governance/proposals/1/votes",
            data={"support": "against", "csrf_token": csrf(seller)},
        )
        assert again.status_code == 409
        assert field_error(again.text, "vote-1") is not None
        assert field_error(again.text, "vote-1") == "you voted on this proposal already"

        blank = await seller.post(
            "/governance/proposals/1/votes", data={"support": "", "csrf_token": csrf(seller)}
        )
        assert blank.status_code == 422
        assert field_error(blank.text, "vote-1") == "Choose for or against."

        missing = await seller.post(
            "/governance/proposals/99/votes", data={"support": "for", "csrf_token": csrf(seller)}
        )
        assert missing.status_code == 404
        assert field_error(missing.text, "governance") is not None

        forged = await seller.post("/governance/proposals/1/votes", data={"support": "against"})
        assert forged.status_code == 403

    async with browser_login(app, market.buyer.email) as buyer:
        weightless = await buyer.post(
            "/governance/proposals/1/votes", data={"support": "against", "csrf_token": csrf(buyer)}
        )
        assert weightless.status_code == 403  # no_voting_weight
        assert "verified generation" in (field_error(weightless.text, "vote-1") or "")
        refused = await buyer.post(
            "/governance/proposals/1/execute", data={"csrf_token": csrf(buyer)}
        )
        assert refused.status_code == 403

    tally = await _proposal(api, op, 1)
    assert (tally["votes_for"], tally["votes_against"]) == (3_000, 0)

    async with browser_login(app, big.email) as voter:
        yes = await voter.post(
            "/governance/proposals/1/votes", data={"support": "for", "csrf_token": csrf(voter)}
        )
        assert yes.status_code == 200, yes.text

    async with browser_login(app, op.email) as operator:
        row = _row((await operator.get("/governance")).text, 1)
        assert '<span class="ok">reached</span>' in row
        assert 'data-for="8000"' in row
        assert "/votes" not in row  # the operator has no vote
        assert "/execute" not in row  # still voting
        chain.advance_time(VOTING_PERIOD_S)
        row = _row((await operator.get("/governance")).text, 1)
        assert 'data-status="timelocked"' in row
        assert "/execute" not in row
        chain.advance_time(TIMELOCK_S)
        row = _row((await operator.get("/governance")).text, 1)
        assert 'data-status="executable"' in row
        assert 'action="/governance/proposals/1/execute"' in row
        done = await operator.post(
            "/governance/proposals/1/execute", data={"csrf_token": csrf(operator)}
        )
        assert done.status_code == 200, done.text
        assert 'data-status="executed"' in _row(done.text, 1)
        assert '<td data-value="40">40</td>' in done.text
        twice = await operator.post(
            "/governance/proposals/1/execute", data={"csrf_token": csrf(operator)}
        )
        assert twice.status_code == 409
        assert field_error(twice.text, "execute-1") is not None

    auditor = await api.signup(Role.AUDITOR)
    async with browser_login(app, auditor.email) as reader:
        page = await reader.get("/governance")
        assert page.status_code == 200
        assert '<form method="post" action="/governance' not in page.text
        assert 'hx-get="/governance/live" hx-trigger="sse:proposal.updated' in page.text
        live = await reader.get("/governance/live")
        assert live.status_code == 200
        assert 'data-status="executed"' in live.text


async def test_signed_out_visitors_are_sent_to_log_in(api: ApiClient, app: FastAPI) -> None:
    async with browser_login(app, (await api.operator()).email) as browser:
        browser.cookies.clear()
        gone = await browser.get("/governance", follow_redirects=False)
        assert gone.status_code == 303
        assert gone.headers["location"].startswith("/login")


async def _proposal_count(api: ApiClient) -> int:
    listed = await api.http.get(
        "/api/v1/governance/proposals", headers=(await api.operator()).headers
    )
    assert listed.status_code == 200, listed.text
    total: int = listed.json()["total"]
    return total


async def test_propose_through_the_form_and_refusals_in_place(api: ApiClient, app: FastAPI) -> None:
    market = await set_up_market(api)
    async with browser_login(app, market.seller.email) as seller:
        shown = await seller.get("/governance")
        assert 'action="/governance/proposals" class="form" id="propose"' in shown.text
        assert '<option value="market_fee_bps">market_fee_bps (now 25, 0 to 1000 basis points)' in (
            shown.text
        )

        def form(**fields: str) -> dict[str, str]:
            base = {"parameter": "market_fee_bps", "value": "30", "rationale": "cheaper trades"}
            return {**base, **fields, "csrf_token": csrf(seller)}

        for fields, field, status, words in (
            ({"value": "1001"}, "value", 422, "(parameter_out_of_limits)"),
            ({"parameter": "no_such_fee"}, "parameter", 422, "(unknown_parameter)"),
            ({"value": "-3"}, "value", 422, "whole number"),
            ({"value": "2.5"}, "value", 422, "whole number"),
            ({"value": "9" * 79}, "value", 422, "whole number"),
            ({"parameter": ""}, "parameter", 422, "Choose a parameter."),
            ({"rationale": ""}, "rationale", 422, "rationale of 1 to 4000"),
            ({"rationale": "x" * 4_001}, "rationale", 422, "rationale of 1 to 4000"),
        ):
            refused = await seller.post("/governance/proposals", data=form(**fields))
            assert refused.status_code == status, (fields, refused.text)
            assert words in (field_error(refused.text, field) or ""), (fields, refused.text)
            assert 'aria-invalid="true"' in refused.text
            # What was typed stays in the form.
            assert "cheaper trades" in refused.text or fields.get("rationale") is not None
        assert await _proposal_count(api) == 0

        forged = await seller.post(
            "/governance/proposals",
            data={"parameter": "market_fee_bps", "value": "30", "rationale": "cheaper trades"},
        )
        assert forged.status_code == 403
        assert await _proposal_count(api) == 0

        made = await seller.post("/governance/proposals", data=form())
        assert made.status_code == 200, made.text
        assert "Proposal 1 made: voting is open." in made.text
        row = _row(made.text, 1)
        assert "<code>market_fee_bps</code></td><td>30</td><td>cheaper trades</td>" in row
        assert 'data-status="voting"' in row
    assert await _proposal_count(api) == 1

    async with browser_login(app, market.operator.email) as operator:
        made = await operator.post(
            "/governance/proposals",
            data={
                "parameter": "market_fee_bps",
                "value": "20",
                "rationale": "the operator's view",
                "csrf_token": csrf(operator),
            },
        )
        assert made.status_code == 200, made.text
        assert 'data-status="voting"' in _row(made.text, 2)

    auditor = await api.signup(Role.AUDITOR)
    async with browser_login(app, auditor.email) as reader:
        assert 'id="propose"' not in (await reader.get("/governance")).text
        refused = await reader.post(
            "/governance/proposals",
            data={
                "parameter": "market_fee_bps",
                "value": "20",
                "rationale": "not mine to make",
                "csrf_token": csrf(reader),
            },
        )
        assert refused.status_code == 403
    waiting = await api.signup(Role.CONSUMER, admit=False)
    async with browser_login(app, waiting.email) as newcomer:
        assert 'id="propose"' not in (await newcomer.get("/governance")).text
        refused = await newcomer.post(
            "/governance/proposals",
            data={
                "parameter": "market_fee_bps",
                "value": "20",
                "rationale": "before admission",
                "csrf_token": csrf(newcomer),
            },
        )
        assert refused.status_code == 403
    assert await _proposal_count(api) == 2
