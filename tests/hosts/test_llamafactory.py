from components.catalogue import SECRETS_DIR, service
from tests.hosts.helpers import listeners


def test_llamafactory_matches_its_role(root, data):
    ui, api = service("llamafactory-webui").port, service("llamafactory-api").port
    socks = listeners(root)
    if "llamafactory" in data.roles:
        assert root.service("llm-llamafactory").is_running
        assert {f"127.0.0.1:{ui}", f"127.0.0.1:{api}"} <= socks
        assert root.file(f"{SECRETS_DIR}/llamafactory.env").mode == 0o600
    else:
        assert not root.service("llm-llamafactory").is_running
    assert not {f"0.0.0.0:{ui}", f"0.0.0.0:{api}", f":::{ui}", f":::{api}"} & socks
