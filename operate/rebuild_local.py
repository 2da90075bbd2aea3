"""The local test host as a rebuild's platform (``scripts/rebuild-host local``): the VM is the server
(its disk and instance id), the state dir the cloud; the stages and decisions are operate/rebuild.py's."""

from __future__ import annotations

import json
from typing import Any

from operate.rebuild import Observed, Platform, verify_host


class LocalHost(Platform):
    """The local test host: the VM is the server (its disk and instance id), the state dir the cloud."""

    what = "VM"
    gone = "there was none: its disk was deleted"
    stack = "local"
    rerun = "scripts/rebuild-host local"

    def __init__(self, s: Any):
        self.s = s
        self.image = None

    def _prepare(self) -> None:
        """What the guest needs from this machine, started if it is not running (after `down`)."""
        from testhost import image, netns, services
        from testhost.util import ensure_host_packages

        ensure_host_packages()
        self.image = image.ensure_image(self.s)
        services.start_services(self.s)
        netns.ensure_netns(self.s)

    def observe(self) -> Observed:
        from testhost import vm

        self._prepare()
        info = vm.vm_info(self.s)
        if not self.s.overlay.exists() or not info.get("instance_id"):
            return Observed(None)  # deleted outright (its disk is gone)
        return Observed(info["instance_id"], info.get("rebuild_of"))

    def begin(self, replaces: str | None) -> None:
        pass  # recorded with the new VM (vm.json), by boot

    def _boot(self, replaces: str, fresh: bool) -> str:
        from testhost import lifecycle, vm
        from testhost.util import file_lock

        with file_lock(lifecycle.state_lock(self.s)):
            vm.boot(self.s, image=self.image, fresh=fresh, record={"rebuild_of": replaces})
        return vm.vm_info(self.s)["instance_id"]

    def replace(self, old: str, replaces: str) -> str:
        from testhost import vm

        vm.stop(self.s)
        return self._boot(replaces, fresh=True)

    def create(self, replaces: str) -> str:
        from testhost import vm

        vm.stop(self.s)  # a qemu left running on a deleted disk
        return self._boot(replaces, fresh=True)

    def resume(self, server: str) -> str:
        from testhost import vm

        if vm.is_running(self.s):
            vm.refresh_access_files(self.s)  # host data from the mirror as it is now, as `up` does
            return f"kept VM {server}: an earlier run of this rebuild made it"
        self._boot(vm.vm_info(self.s).get("rebuild_of") or "none", fresh=False)
        return f"kept VM {server} (started again): an earlier run of this rebuild made it"

    def finish(self) -> None:
        from testhost import vm
        from testhost.util import atomic_write

        info = vm.vm_info(self.s)
        info.pop("rebuild_of", None)
        atomic_write(self.s.vm_json, json.dumps(info, indent=2) + "\n")

    def wait_ssh(self) -> str:
        from testhost import vm

        vm.wait_for_ssh(self.s, timeout=900)
        return "SSH answers with the host's own key"

    def converge(self) -> str:
        from testhost import runner

        changed, _ops = runner.converge(json=True, s=self.s)
        return f"{changed} operations changed"

    def verify(self) -> str:
        from operate import targets

        return verify_host(targets.local(self.s).files(), "llm-local")
