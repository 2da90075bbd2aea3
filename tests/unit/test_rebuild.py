"""rebuild-host with the cloud faked at the Automation API's boundary (a stack whose state, refresh,
up and tags behave as Pulumi's would) and the local VM faked at qemu's: the decisions, the end state
after a kill at each stage and a rerun, and the one `next:` line of every exit."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from components import hostkeys
from operate import cli, rebuild, rebuild_local, remote

SERVER = (
    "urn:pulumi:prod::llm-platform::llm-platform:host:ModelHost$digitalocean:index/droplet:Droplet::llm-prod-server"
)
VOLUME = "urn:pulumi:prod::llm-platform::llm-platform:host:ModelHost$digitalocean:index/volume:Volume::llm-prod-data"
KEY = hostkeys.from_seed(b"prod host")
PUB = hostkeys.public_of(KEY)


class Killed(BaseException):
    """The process dies here (SIGKILL, a closed laptop, a cancelled CI job): nothing after runs."""


class FakeCloud:
    """The cloud and the Pulumi backend: servers that exist, the stack's state and its tags."""

    def __init__(self, in_state: bool = True, in_cloud: bool = True):
        self.cloud = {"1001"} if in_cloud else set()  # server ids that exist
        self.state_server = "1001" if in_state else None  # the id the stack's state holds
        self.tags: dict[str, str] = {}
        self.pending: list[dict] = []
        self.next_id = 1002
        self.made = 0  # servers created, all runs together
        self.kill_in_up = None  # "before" (nothing done) / "after-create" (server made, state not saved)
        self.locked = False


class FakeStack:
    """``pulumi.automation.Stack`` as operate.automation uses it, over a FakeCloud."""

    name = "prod"

    def __init__(self, cloud: FakeCloud, config: dict | None = None):
        self.c = cloud
        self.config = {
            "llm-platform:hostSshKey": KEY,
            "llm-platform:host": json.dumps({"provider": "digitalocean"}),
            **(config or {}),
        }

    def export_stack(self):
        res = [{"urn": VOLUME, "type": "digitalocean:index/volume:Volume", "id": "vol-1"}]
        if self.c.state_server:
            res.append({"urn": SERVER, "type": "digitalocean:index/droplet:Droplet", "id": self.c.state_server})
        return SimpleNamespace(deployment={"resources": res, "pending_operations": list(self.c.pending)})

    def refresh(self, target, **kw):
        assert target == [SERVER]
        if self.c.state_server not in self.c.cloud:
            self.c.state_server = None

    def _make(self) -> str:
        if self.c.locked:
            from pulumi.automation import CommandError

            raise CommandError("error: [409] Conflict: Another update is currently in progress.")
        if self.c.kill_in_up == "before":
            raise Killed()
        new = str(self.c.next_id)
        self.c.next_id += 1
        self.c.cloud.add(new)
        self.c.made += 1
        if self.c.kill_in_up == "after-create":
            self.c.pending.append({"resource": {"urn": SERVER, "id": new}, "type": "creating"})
            raise Killed()
        return new

    def up(self, target, target_dependents, replace=None, **kw):
        assert target == [SERVER] and target_dependents is True
        new = self._make()
        if replace:
            assert replace == [SERVER]
            self.c.cloud.discard(self.c.state_server)  # create-then-delete
        self.c.state_server = new

    def list_tags(self):
        return dict(self.c.tags)

    def set_tag(self, name, value):
        self.c.tags[name] = value

    def remove_tag(self, name):
        self.c.tags.pop(name, None)

    def get_all_config(self):
        return {k: SimpleNamespace(value=v) for k, v in self.config.items()}

    def outputs(self):
        return {
            "inventory": SimpleNamespace(
                value={
                    "hosts": [
                        {
                            "name": "llm-prod",
                            "ssh_hostname": "203.0.113.10",
                            "ssh_user": "llmadmin",
                            "host_key": PUB,
                            "data": {},
                        }
                    ]
                }
            )
        }


class ScriptedStages:
    """SSH, converge and verify scripted (the host's side): each runs ``_stage``, which is killed or
    fails where the test says."""

    kill_at = fail_at = None

    def _scripted(self, name):
        if self.kill_at == name:
            raise Killed()
        if self.fail_at == name:
            raise RuntimeError(f"{name} went wrong")

    def wait_ssh(self):
        return self._stage("ssh")

    def converge(self):
        return self._stage("converge")

    def verify(self):
        return self._stage("verify")


class Host(ScriptedStages, rebuild.CloudHost):
    """The real decisions and Pulumi calls; SSH, converge and verify scripted (the host's side)."""

    def __init__(self, cloud: FakeCloud, kill_at: str | None = None, fail_at: str | None = None, **stack_kw):
        super().__init__(FakeStack(cloud, **stack_kw), "llm-prod")
        self.kill_at, self.fail_at, self.ran = kill_at, fail_at, []

    def _stage(self, name):
        self.ran.append(name)
        self._scripted(name)
        return "ok"


def finished(cloud: FakeCloud) -> None:
    """The end state every path must reach: one server, in the state, no rebuild under way."""
    assert cloud.state_server in cloud.cloud and len(cloud.cloud) == 1
    assert cloud.tags == {} and cloud.pending == []


def replace_note(stages) -> str:
    return dict((n, note) for n, _, note in stages.timings)["replace"]


# --- the three starting points -------------------------------------------------------------------


def test_existing_server_is_replaced_once():
    cloud = FakeCloud()
    stages = rebuild.run_rebuild(Host(cloud))
    assert replace_note(stages) == "replaced server 1001 → 1002"
    assert [n for n, _, _ in stages.timings] == ["replace", "ssh", "converge", "verify"]
    assert cloud.made == 1 and cloud.state_server == "1002"
    finished(cloud)


def test_server_deleted_in_the_cloud_is_created():
    cloud = FakeCloud(in_cloud=False)  # the state still names 1001; a refresh finds it gone
    stages = rebuild.run_rebuild(Host(cloud))
    assert replace_note(stages).startswith("created server 1002")
    assert cloud.made == 1
    finished(cloud)


def test_server_missing_from_the_state_is_created_under_the_programs_urn():
    cloud = FakeCloud(in_state=False, in_cloud=False)  # deleted, then dropped by a refresh
    stages = rebuild.run_rebuild(Host(cloud))
    assert replace_note(stages).startswith("created server 1002")
    finished(cloud)


# --- a kill at each stage, then the same command again ---------------------------------------------


@pytest.mark.parametrize(
    "start",
    [dict(), dict(in_cloud=False), dict(in_state=False, in_cloud=False)],
    ids=["exists", "deleted-in-cloud", "missing-from-state"],
)
@pytest.mark.parametrize("kill", ["up-before", "ssh", "converge", "verify", "after-verify"])
def test_rerun_after_a_kill_reaches_the_same_end_state_with_one_new_server(start, kill):
    cloud = FakeCloud(**start)
    first = Host(cloud, kill_at=kill)
    if kill == "up-before":
        cloud.kill_in_up = "before"
    if kill == "after-verify":
        first.finish = lambda: (_ for _ in ()).throw(Killed())  # verified, but the record not yet dropped
    with pytest.raises(Killed):
        rebuild.run_rebuild(first)
    cloud.kill_in_up = None
    second = Host(cloud)
    stages = rebuild.run_rebuild(second)  # from another machine: nothing local carries over
    assert cloud.made == 1, "the rerun made another server"
    finished(cloud)
    if kill != "up-before":
        assert replace_note(stages).startswith("kept server 1002: an earlier run of this rebuild made it")
    assert second.ran == ["ssh", "converge", "verify"]


def test_after_a_complete_rebuild_the_command_rebuilds_again():
    cloud = FakeCloud()
    rebuild.run_rebuild(Host(cloud))
    rebuild.run_rebuild(Host(cloud))
    assert cloud.made == 2 and cloud.state_server == "1003"
    finished(cloud)


def test_kill_inside_pulumi_up_after_the_server_was_made_stops_with_the_refresh_step():
    cloud = FakeCloud()
    cloud.kill_in_up = "after-create"
    with pytest.raises(Killed):
        rebuild.run_rebuild(Host(cloud))
    cloud.kill_in_up = None
    with pytest.raises(rebuild.Stop) as stop:
        rebuild.run_rebuild(Host(cloud))
    assert "1 pending operation" in str(stop.value)
    assert (
        stop.value.next_step.startswith("`pulumi refresh -s prod`")
        and "rerun `scripts/rebuild-host prod llm-prod`" in stop.value.next_step
    )
    assert cloud.made == 1  # nothing more was created


# --- every exit: one next line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "stage,expect",
    [
        ("ssh", "check the new server on the provider's console"),
        ("converge", "it keeps this server: converge and verify only"),
        ("verify", "it keeps this server: converge and verify only"),
    ],
)
def test_failure_at_a_stage_names_the_next_step(stage, expect):
    cloud = FakeCloud()
    with pytest.raises(rebuild.Stop) as stop:
        rebuild.run_rebuild(Host(cloud, fail_at=stage))
    assert expect in stop.value.next_step and "rerun `scripts/rebuild-host prod llm-prod`" in stop.value.next_step
    assert cloud.tags  # the record stays: the rerun resumes


def test_locked_stack_names_pulumi_cancel():
    cloud = FakeCloud()
    cloud.locked = True
    with pytest.raises(rebuild.Stop) as stop:
        rebuild.run_rebuild(Host(cloud))
    assert "`pulumi cancel -s prod --yes`" in stop.value.next_step
    assert cloud.made == 0


def test_no_host_key_stops_before_anything_changes():
    cloud = FakeCloud()
    with pytest.raises(rebuild.Stop) as stop:
        rebuild.run_rebuild(Host(cloud, config={"llm-platform:hostSshKey": ""}))
    assert stop.value.next_step.startswith("`scripts/host-keys prod`") and stop.value.code == 2
    assert cloud.made == 0 and cloud.tags == {}


def test_main_prints_one_next_line_on_every_exit(monkeypatch, capsys):
    def fail(stack, host):
        raise rebuild.Stop(
            "converge: pyinfra exit 1", "fix the cause above, then rerun `scripts/rebuild-host prod llm-prod`"
        )

    monkeypatch.setattr(rebuild, "rebuild_cloud", fail)
    assert cli.main(["rebuild-host", "prod", "llm-prod"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [ln for ln in err if ln.startswith("next: ")] == [err[-1]] and len(err) == 2

    monkeypatch.setattr(rebuild, "rebuild_cloud", lambda stack, host: rebuild.Stages())
    assert cli.main(["rebuild-host", "prod", "llm-prod"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("next: nothing; the host answers with its usual host key")


def test_missing_credentials_exit_2_with_a_next_step(monkeypatch, capsys):
    monkeypatch.delenv("DIGITALOCEAN_TOKEN", raising=False)
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "x")
    monkeypatch.setenv("PATH", str(__import__("pathlib").Path(__file__).parent))  # no pulumi CLI here
    assert cli.main(["rebuild-host", "prod", "llm-prod"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("next: set what is missing") and "no Pulumi CLI" in err[0]


# --- SSH: only the host's own key ------------------------------------------------------------------


def test_ssh_waits_for_the_pinned_key_and_never_accepts_another():
    other = hostkeys.public_of(hostkeys.from_seed(b"someone else"))
    answers = iter([ConnectionRefusedError(), other, PUB])

    def probe(address, port):
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    note = remote.wait_for_ssh("203.0.113.10", PUB, timeout=5, interval=0, probe=probe)
    assert note == f"203.0.113.10:22 answers with its host key {hostkeys.fingerprint(PUB)}"
    with pytest.raises(remote.HostKeyMismatch, match=hostkeys.fingerprint(other).replace("+", r"\+")):
        remote.wait_for_ssh("203.0.113.10", PUB, timeout=0.05, interval=0.01, probe=lambda a, p: other)


def test_mismatch_next_step_says_not_to_trust_it():
    cloud = FakeCloud()
    host = Host(cloud)
    host.wait_ssh = lambda: (_ for _ in ()).throw(rebuild.HostKeyMismatch("203.0.113.10:22 answers with host key X"))
    with pytest.raises(rebuild.Stop) as stop:
        rebuild.run_rebuild(host)
    assert stop.value.next_step.startswith("do not trust it")


def test_server_host_key_reads_the_handshake_of_a_real_sshd_like_server():
    """paramiko's server side offers a key; the probe reads it without logging in."""
    import socket
    import threading

    import paramiko

    server_key = paramiko.Ed25519Key.from_private_key(__import__("io").StringIO(KEY))
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def serve():
        conn, _ = lsock.accept()
        t = paramiko.Transport(conn)
        t.add_server_key(server_key)
        try:
            t.start_server(server=paramiko.ServerInterface())
            t.join(timeout=15)  # until the client hangs up: closing first could cut its last kex message
        except Exception:  # noqa: BLE001 (however the client's hang-up ends the handshake: the test checks the client)
            pass
        finally:
            t.close()

    threading.Thread(target=serve, daemon=True).start()
    assert remote.server_host_key("127.0.0.1", lsock.getsockname()[1]) == PUB
    lsock.close()


# --- the local test host: the VM faked at qemu -----------------------------------------------------


@pytest.fixture
def local(tmp_path, monkeypatch):
    """A LocalHost on a state dir whose VM is faked: boot writes the disk and the VM's record as
    testhost.vm.boot does, stop stops; the host services are a set."""
    from testhost import vm
    from testhost.config import TestHostConfig

    s = TestHostConfig(
        repo_root=tmp_path,
        state_dir=tmp_path / "state",
        cache_dir=tmp_path / "cache",
        mirror="http://deb.example/debian",
        security_mirror="http://deb.example/debian-security",
    )
    s.state_dir.mkdir()
    world = SimpleNamespace(running=False, services=set(), boots=[], n=0)

    def boot(s_, image=None, fresh=True, record=None):
        if world.running:
            return False
        info = vm.vm_info(s_)
        if fresh or not s_.overlay.exists():
            world.n += 1
            s_.overlay.write_text(f"disk {world.n}")
            info = {"instance_id": f"llm-local-{world.n}"}
        s_.vm_json.write_text(json.dumps({"instance_id": info["instance_id"], **(record or {})}))
        world.running = True
        world.boots.append(("fresh" if fresh else "again", info["instance_id"]))
        return True

    monkeypatch.setattr(vm, "boot", boot)
    monkeypatch.setattr(vm, "stop", lambda s_, **kw: setattr(world, "running", False))
    monkeypatch.setattr(vm, "is_running", lambda s_=None: world.running)
    monkeypatch.setattr(vm, "refresh_access_files", lambda s_, image=None: world.boots.append(("refresh", "")))
    monkeypatch.setattr(
        rebuild_local.LocalHost, "_prepare", lambda self: world.services.update({"mirror", "pebble", "apt"})
    )

    class Local(ScriptedStages, rebuild_local.LocalHost):
        def _stage(self, name):
            if not world.services >= {"mirror", "pebble", "apt"}:
                raise RuntimeError("curl: (7) Failed to connect to 10.0.2.2 port 8099")
            self._scripted(name)
            return name

    def make(**kw):
        h = Local(s)
        h.__dict__.update(kw)
        return h

    world.make, world.s = make, s
    return world


def delete_vm_outright(world) -> None:
    """`scripts/local-host down` (services stopped too) and the VM's disk removed."""
    world.running = False
    world.services.clear()
    world.s.overlay.unlink(missing_ok=True)


def test_local_rebuild_of_a_deleted_vm_starts_the_services_and_creates_it(local):
    delete_vm_outright(local)
    stages = rebuild.run_rebuild(local.make())
    assert replace_note(stages).startswith("created VM llm-local-1")
    assert local.boots == [("fresh", "llm-local-1")] and "rebuild_of" not in json.loads(local.s.vm_json.read_text())


def test_local_rerun_after_a_failed_converge_keeps_the_vm(local):
    delete_vm_outright(local)
    with pytest.raises(rebuild.Stop) as stop:
        rebuild.run_rebuild(local.make(fail_at="converge"))
    assert stop.value.next_step == (
        "fix the cause above, then rerun `scripts/rebuild-host local` (it keeps this VM: converge and verify only)"
    )
    stages = rebuild.run_rebuild(local.make())
    assert replace_note(stages) == "kept VM llm-local-1: an earlier run of this rebuild made it"
    assert local.boots == [("fresh", "llm-local-1"), ("refresh", "")]  # host data as the mirror has it now


@pytest.mark.parametrize("kill", ["ssh", "converge", "verify"])
def test_local_rerun_after_a_kill_and_a_down_resumes_the_same_vm(local, kill):
    """Killed, then even the VM stopped (its disk kept): the rerun boots that VM again, not a new one."""
    rebuild.run_rebuild(local.make())  # a converged host: llm-local-1
    with pytest.raises(Killed):
        rebuild.run_rebuild(local.make(kill_at=kill))  # replaced by llm-local-2, then killed
    local.running = False
    local.services.clear()
    stages = rebuild.run_rebuild(local.make())
    assert replace_note(stages).startswith("kept VM llm-local-2 (started again)")
    assert local.boots == [("fresh", "llm-local-1"), ("fresh", "llm-local-2"), ("again", "llm-local-2")]
    assert "rebuild_of" not in json.loads(local.s.vm_json.read_text())


def test_local_rebuild_of_a_running_vm_replaces_it(local):
    rebuild.run_rebuild(local.make())
    stages = rebuild.run_rebuild(local.make())
    assert replace_note(stages) == "replaced VM llm-local-1 → llm-local-2"


def test_stage_summary_times_each_stage():
    stages = rebuild.Stages()
    stages.run("replace", lambda: "done")
    stages.run("ssh", lambda: None)
    text = stages.summary()
    assert "replace" in text and "ssh" in text and "total" in text
