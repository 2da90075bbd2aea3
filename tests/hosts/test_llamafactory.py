from components.catalogue import SECRETS_DIR, service
from tests.hosts.helpers import listeners, stats, units


def test_llamafactory_matches_its_role(root, data):
    ui, api = service("llamafactory-webui").port, service("llamafactory-api").port
    socks = listeners(root)
    if "llamafactory" in data.roles:
        assert units(root, "llm-llamafactory")["llm-llamafactory"]["active"]
        assert {f"127.0.0.1:{ui}", f"127.0.0.1:{api}"} <= socks
        env = f"{SECRETS_DIR}/llamafactory.env"
        assert stats(root, env)[env]["mode"] == 0o600
    else:
        assert not units(root, "llm-llamafactory")["llm-llamafactory"]["active"]
    assert not {f"0.0.0.0:{ui}", f"0.0.0.0:{api}", f":::{ui}", f":::{api}"} & socks
