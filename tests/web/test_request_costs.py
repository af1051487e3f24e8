"""SQL statements per participant request: the today page and a check-off read each course once.

Issue 15 sets at most 5 statements for the today page and 8 for a check-off. The budgets are where
the code stands, below those: the today page reads the participant with their device session and
site (one statement) and their course records (one UNION); a check-off reads the participant, the
course's record, inserts the log (INSERT ... ON CONFLICT DO NOTHING RETURNING), locks the
participant's audit chain, reads its head and appends the event. The card it shows next is derived
from the record it wrote against. A change that reads a course twice again, or reads back what it
just wrote, fails here.
"""

import re

TODAY_BUDGET = 2
CHECKOFF_BUDGET = 6


def test_the_today_page_and_a_check_off_stay_within_their_statement_budgets(client, auth, world, statements):
    assert auth.participant("pa").status_code == 302
    statements.clear()
    html = client.get("/").get_data(as_text=True)
    today = len(statements)
    base = re.search(r'action="(/courses/\d+/days/\d+)/taken"', html).group(1)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)
    statements.clear()
    r = client.post(f"{base}/taken", data={"client_key": "budget-check-1", "csrf_token": token},
                    headers={"HX-Request": "true"})
    assert r.status_code == 200 and "You took it" in r.get_data(as_text=True)
    check_off = len(statements)
    assert today <= TODAY_BUDGET, f"today page: {today} statements"
    assert check_off <= CHECKOFF_BUDGET, f"check-off: {check_off} statements"
    # The course's facts are read once for a check-off: the card it shows after the write is the
    # record it acted on with the new log in it.
    decisions = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM dosedecision" in s]
    assert len(decisions) == 1
