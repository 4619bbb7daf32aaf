from tests.factories import elder_body


async def test_create_and_read_elder(registry):
    r = await registry.post("/v1/elders", elder_body())
    assert r.status_code == 201, r.text
    elder = r.json()
    assert elder["id_number_masked"].startswith("3502") and "*" in elder["id_number_masked"]
    r = await registry.get(f"/v1/elders/{elder['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == elder["id"]
