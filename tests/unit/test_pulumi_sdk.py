"""The Pulumi SDK internals the offline plan uses (components/pulumi_sdk.py) still exist, with the
parameters it passes, at the pinned SDK version; and the program reads its config the way the
engine, an Automation API inline program and Pulumi's mock tests all provide it."""

import inspect

import pytest


@pytest.mark.parametrize("name", sorted(__import__("components.pulumi_sdk", fromlist=["USED"]).USED))
def test_sdk_internal_is_where_the_offline_plan_expects_it(name):
    from components import pulumi_sdk

    fn, params = pulumi_sdk.USED[name]
    have = list(inspect.signature(fn).parameters)
    assert have[: len(params)] == params, (
        f"{name} changed in this Pulumi SDK: parameters {have}, components/pulumi_sdk.py expects {params}; "
        "adapt components/pulumi_sdk.py (and only it) to the new SDK"
    )


def test_monitor_keeps_registrations_where_the_plan_reads_them():
    from components import offline, pulumi_sdk

    monitor = pulumi_sdk.MockMonitor(offline.OfflineMocks())
    assert isinstance(monitor.resources, dict), "MockMonitor no longer keeps .resources"
    import pulumi

    assert hasattr(pulumi.runtime.settings.ROOT, "set"), "pulumi.runtime.settings.ROOT is gone"
    assert hasattr(pulumi.runtime.config.CONFIG, "get"), "pulumi.runtime.config.CONFIG is gone"


def test_load_reads_config_set_through_the_runtime(monkeypatch):
    """``set_all_config`` (mock tests, inline programs) is enough: no PULUMI_CONFIG environment."""
    import pulumi

    from components import config, offline, stackfile

    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    raw, secure = stackfile.read_stack_file("dev", {"phase": 1})  # a fixture: dev's committed phase may change
    pulumi.runtime.set_mocks(offline.OfflineMocks(), project="llm-platform", stack="dev", preview=False)
    pulumi.runtime.set_all_config(raw, sorted(secure))
    loaded = config.load()
    assert loaded.phase == 1 and loaded.stack == "dev"
    assert loaded.secret("huggingfaceApiKey").reveal() == stackfile.placeholder("huggingfaceApiKey")
    # a secret given in plain text is refused on this path too
    pulumi.runtime.set_all_config(raw, sorted(secure - {"llm-platform:openaiApiKey"}))
    with pytest.raises(config.SettingsError, match="openaiApiKey: is stored in plain text"):
        config.load()
