def test_login_page_renders(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_dashboard_for_admin(signed_in, admin_user):
    response = signed_in(admin_user).get("/")
    assert response.status_code == 200
