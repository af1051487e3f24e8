"""What every request pays before its view (issue 15): hooks that do not apply to the requester
are skipped, and those that do apply read the database as little as they can."""



def test_a_signed_in_phone_fetching_its_files_reads_no_database(client, auth, statements):
    # The service worker refreshes these in the background after every page: the staff idle
    # check used to load the participant (and their device session) for each of them.
    assert auth.participant("pa").status_code == 302
    statements.clear()
    for url in ("/static/app.css", "/static/app.js", "/static/offline.html"):
        assert client.get(url).status_code == 200
    assert statements == []


def test_the_signed_in_participant_and_their_device_session_are_read_in_one_statement(client, auth, statements):
    assert auth.participant("pa").status_code == 302
    statements.clear()
    assert client.get("/").status_code == 200
    who = [s for s in statements if "token_hash" in s]
    assert len(who) == 1 and "JOIN devicesession" in who[0]
