"""The clinical-review pause as a Chinese-reading participant sees it (issue 9, deliverable 4)."""

from tests.messaging.test_review_pause import _danger


def test_the_pause_speaks_plain_chinese_on_the_today_page_and_the_day_card(app, client, auth, session, world, clock):
    """Issue 9, deliverable 4: the wait instruction names 海曲泊帕, on every page that offers a dose."""
    _danger(app, session, world, clock)
    world.participants["pa"].language = "zh"
    session.add(world.participants["pa"])
    session.commit()
    auth.participant("pa")
    on_today = "在研究团队给您打电话之前，请先不要服用研究药片（海曲泊帕）。"
    on_card = "请等研究团队来电后，再服用研究药片（海曲泊帕）。"
    today = client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    card = client.get(f"/courses/{world.courses['pa'].id}/days/3",
                      headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert on_today in today and on_card in today  # the page's notice, and today's card
    assert on_card in card
    for html in (today, card):
        assert "任何药" not in html
        assert "我已服药</button>" not in html

